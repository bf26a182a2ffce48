/**
 * bb_fail (csrc/shared.h): T, A and B share one failure slot in the spawn
 * arena, and T may fail (a timeout) while a child does. The slot is claimed
 * by compare-and-swap, so the stage, errno and detail read back are always
 * one caller's. Exercised in C (test/native/bb_fail.c), with the shim's own
 * header.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "../..");
const dir = mkdtempSync(join(tmpdir(), "bunbox-bbfail-"));
const bin = join(dir, "bb_fail");
const cc = Bun.spawnSync(["gcc", "-O2", "-pthread", "-o", bin, join(root, "test/native/bb_fail.c")], { stderr: "pipe" });
if (cc.exitCode !== 0) throw new Error(cc.stderr.toString());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("a slot another caller has claimed is left alone, even before its stage is published", () => {
  const r = Bun.spawnSync([bin, "claimed"]);
  expect(r.stdout.toString()).toBe("ok\n");
  expect(r.exitCode).toBe(0);
});

test("two callers at once: stage, errno and detail always come from the same one", () => {
  const r = Bun.spawnSync([bin, "race", "20000"]);
  expect(r.stdout.toString()).toBe("ok\n");
  expect(r.exitCode).toBe(0);
});
