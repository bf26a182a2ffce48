#!/usr/bin/env bun
/**
 * `bun run fuzz [SECONDS]`: builds test/fuzz/comms_fuzz.c with clang's
 * libFuzzer, AddressSanitizer and UBSan, and runs it (default 60 s) from a
 * small seed corpus of well-formed frames. Needs clang and its runtime
 * (Debian: `apt-get install clang-14 libclang-rt-14-dev`). Not part of the
 * test suite; a crash, leak or timeout leaves its input in the scratch
 * directory, which is printed.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
const seconds = Number(process.argv[2] ?? 60);
if (!Number.isFinite(seconds) || seconds <= 0) {
  console.error("usage: bun run fuzz [SECONDS]");
  process.exit(2);
}
const clang = ["clang", "clang-19", "clang-18", "clang-17", "clang-16", "clang-15", "clang-14"].map((c) => Bun.which(c)).find(Boolean);
if (!clang) {
  console.error("fuzz: clang is not installed (Debian: apt-get install clang-14 libclang-rt-14-dev)");
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), "bunbox-fuzz-"));
const bin = join(work, "comms_fuzz");
const build = Bun.spawnSync([clang, "-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=undefined",
  join(root, "test/fuzz/comms_fuzz.c"), "-o", bin], { stdout: "inherit", stderr: "inherit" });
if (build.exitCode !== 0) {
  console.error("fuzz: building the harness failed (is libclang-rt for this clang installed?)");
  process.exit(1);
}

/** A frame as csrc/client/bunbox_client.h describes it: u32 tag, u32 length, payload. */
function frame(tag: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, tag, true);
  v.setUint32(4, payload.length, true);
  out.set(payload, 8);
  return out;
}
const text = (s: string) => new TextEncoder().encode(s);
const seeds: Uint8Array[][] = [
  [Uint8Array.of(0), frame(1, Uint8Array.of(1))],
  [Uint8Array.of(0x55), frame(5, new Uint8Array(8).fill(0xff)), frame(10, text("hello"))],
  [Uint8Array.of(0xaa), frame(11, Uint8Array.of(0, 1, 2)), frame(12, text('{"a":1}'))],
  [Uint8Array.of(0xff), frame(0x80000001, text("user")), frame(6, Uint8Array.of(7))],
  [Uint8Array.of(0x12), frame(13, new Uint8Array(4))],
];
const corpus = join(work, "corpus");
mkdirSync(corpus);
seeds.forEach((parts, i) => writeFileSync(join(corpus, `seed${i}`), Buffer.concat(parts)));

console.error(`fuzz: ${seconds} s in ${work}`);
const run = Bun.spawnSync([bin, `-max_total_time=${seconds}`, "-timeout=5", "-rss_limit_mb=2048", `-artifact_prefix=${work}/`, corpus], {
  cwd: work,
  stdout: "inherit",
  stderr: "inherit",
});
process.exit(run.exitCode ?? 1);
