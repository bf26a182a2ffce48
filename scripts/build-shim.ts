#!/usr/bin/env bun
/**
 * Builds the native shim, in order:
 *   build/init          the sandbox's pid 1 (csrc/init.c, freestanding)
 *   build/abi.c         bb_abi_layout() from csrc/plan.h (scripts/gen-abi.ts),
 *                       after checking that src/native/abi.ts is current
 *   build/child.o       the code between clone and execve (csrc/child_a.c,
 *                       child_b.c, mounts.c, resolve.c, newfs.c, root.c,
 *                       points.c, clone.S), linked on its own and
 *                       refused if it calls anything outside itself
 *                       (scripts/check-child.ts)
 *   build/libbunbox.so  the rest, child.o, abi.c, and init embedded by .incbin
 * Skips the work when the outputs are newer than every source.
 * Usage: bun scripts/build-shim.ts [--force]
 */
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildChildObject, childObjectProblems } from "./check-child.ts";
import { checkAbiTs, generateC, PlanError, planAbi } from "./gen-abi.ts";

const root = resolve(import.meta.dir, "..");
const csrc = join(root, "csrc");

// No calls into libc from the CLONE_VM children: gcc must not turn loops into
// memset/strlen calls, and no PLT slot may be resolved lazily (by ld.so, in
// memory shared with Bun) while they run (-z now; the child check goes further).
const CFLAGS = [
  "-O2", "-g0", "-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-std=gnu11",
  "-fno-tree-loop-distribute-patterns",
];
export const CHILD_SOURCES = ["child_a.c", "child_b.c", "mounts.c", "resolve.c", "newfs.c", "root.c", "points.c", "clone.S"];
/** The functions the host side starts the children with. */
const CHILD_ENTRIES = ["bb_child_a", "bb_child_hold"];
const HOST_SOURCES = [
  "spawn.c", "handover.c", "contain.c", "idmap.c", "request.c", "init_fd.c", "monitor.c", "comms.c", "spawner.c", "relay.c",
  "net_socket.c", "net_relay.c", "probe.c", "net_intercept.c",
];

export interface ShimOptions {
  /** Rebuild even when up to date. */
  force?: boolean;
  /** Where the outputs go (default build/). */
  dir?: string;
  /** Extra compiler flags for every unit (tests build variants: -DBB_ABI_VERSION=…). */
  cflags?: string[];
}

export class BuildError extends Error {}

function newestSource(): number {
  return Math.max(
    ...readdirSync(csrc)
      .filter((f) => /\.[chS]$/.test(f))
      .map((f) => statSync(join(csrc, f)).mtimeMs),
    ...["build-shim.ts", "gen-abi.ts", "check-child.ts"].map((f) => statSync(join(import.meta.dir, f)).mtimeMs),
  );
}

function gcc(args: string[], what: string): void {
  const cc = process.env.CC ?? "gcc";
  const proc = Bun.spawnSync([cc, ...args], { cwd: root, stdout: "inherit", stderr: "inherit" });
  if (proc.exitCode !== 0) throw new BuildError(`building ${what} failed (${cc} exited ${proc.exitCode}); is gcc installed?`);
}

function build(dir: string, extra: string[]): string {
  const init = join(dir, "init");
  const shim = join(dir, "libbunbox.so");
  const child = join(dir, "child.o");
  const abiC = join(dir, "abi.c");
  const abi = planAbi();
  checkAbiTs(abi);
  mkdirSync(dir, { recursive: true });
  writeFileSync(abiC, generateC(abi));
  gcc(
    [
      ...CFLAGS, ...extra,
      "-Os", "-static", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-fno-asynchronous-unwind-tables",
      "-fno-pie", "-no-pie", "-Wl,--build-id=none",
      // init's globals (initialised to zero) in .data, not .bss: a writable
      // segment with nothing in the file (p_filesz 0) at an address that is
      // not page-aligned is mapped by older kernels' ELF loader from a file
      // page that may lie past the end of the file, and the exec then fails
      // past its point of no return: SIGSEGV (seen on 5.10, aarch64, where
      // 64 KiB segment alignment puts that page past init's few KiB).
      "-fno-zero-initialized-in-bss",
      "-o", init, join(csrc, "init.c"),
    ],
    `${init}`,
  );
  const cc = process.env.CC ?? "gcc";
  const failed = buildChildObject({ cc, cflags: [...CFLAGS, ...extra], sources: CHILD_SOURCES.map((f) => join(csrc, f)), out: child });
  if (failed) {
    process.stderr.write(failed);
    throw new BuildError(`building ${child} failed`);
  }
  const problems = childObjectProblems(child, CHILD_ENTRIES);
  if (problems.length) {
    throw new BuildError(
      `the code between clone and execve (${CHILD_SOURCES.map((f) => `csrc/${f}`).join(", ")}) must make raw system calls only:\n` +
        problems.map((p) => `  ${p}`).join("\n"),
    );
  }
  gcc(
    [
      ...CFLAGS, ...extra,
      "-fPIC", "-shared", "-fvisibility=hidden", "-Wl,-z,now", `-DBB_INIT_PATH="${init}"`, `-I${csrc}`,
      "-o", shim, ...HOST_SOURCES.map((f) => join(csrc, f)), abiC, child, "-lpthread",
    ],
    `${shim}`,
  );
  return shim;
}

/** Builds the shim (see above) into opts.dir and returns its path; throws on failure. */
export function buildShimIn(opts: ShimOptions = {}): string {
  const dir = opts.dir ?? join(root, "build");
  const shim = join(dir, "libbunbox.so");
  const outputs = [join(dir, "init"), shim];
  if (!opts.force && !opts.cflags?.length && outputs.every((f) => existsSync(f))) {
    const built = Math.min(...outputs.map((f) => statSync(f).mtimeMs));
    if (built >= newestSource()) {
      checkAbiTs();
      return shim;
    }
  }
  return build(dir, opts.cflags ?? []);
}

/** build/libbunbox.so, up to date; on failure, says why and exits 1. */
export function buildShim(force = false): string {
  try {
    return buildShimIn({ force });
  } catch (e) {
    if (!(e instanceof BuildError || e instanceof PlanError)) throw e;
    console.error(`bunbox: ${e.message}`);
    process.exit(1);
  }
}

if (import.meta.main) {
  const path = buildShim(process.argv.includes("--force"));
  console.log(`built ${path.replace(root + "/", "")}`);
}
