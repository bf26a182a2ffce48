/**
 * Resource limits as rlimits set in the sandboxee before exec (and the wall
 * clock in the monitor): each limit bites at its value and is reported.
 */
import { describe, expect, test } from "bun:test";
import { probe } from "../helpers.ts";

describe("limits", () => {
  test("--address-space-limit bounds the address space", async () => {
    const small = await probe(["alloc", "256"], ["--address-space-limit", "128M"]);
    expect(small.stdout).toContain("malloc: -1 ENOMEM");
    const big = await probe(["alloc", "64"], ["--address-space-limit", "512M"]);
    expect(big.stdout).toContain("alloc: 64");
  });

  test("--max-file-size: writing past it fails with EFBIG", async () => {
    const r = await probe(["write-big", "/tmp/f", "3"], ["--max-file-size", "1M"]);
    expect(r.stdout).toMatch(/write-big: -1 EFBIG|write-big: 1048576/);
  });

  test("--max-files bounds open descriptors", async () => {
    const r = await probe(["open-many", "100"], ["--max-files", "20"]);
    expect(r.stdout.trim()).toBe("opened=17");
  });

  test("--max-procs bounds processes of the sandbox", async () => {
    const r = await probe(["fork-many", "50"], ["--max-procs", "8"]);
    const n = Number(/forked=(\d+)/.exec(r.stdout)?.[1]);
    expect(n).toBeLessThan(8);
    expect(n).toBeGreaterThan(0);
  });

  test("--cpu-limit: SIGXCPU, reported as the CPU limit", async () => {
    const r = await probe(["spin"], ["--cpu-limit", "1", "--json"]);
    expect([128 + 24, 128 + 9]).toContain(r.code);
    expect(r.stderr).toContain("CPU limit of 1 s");
  });

  test("core dumps are off by default", async () => {
    const r = await probe(["read", "/proc/self/limits"]);
    expect(r.stdout).toMatch(/^Max core file size\s+0\s+0/m);
    expect(r.stdout).toMatch(/^Max open files\s+1024\s+1024/m);
    expect(r.stdout).toMatch(/^Max cpu time\s+1024\s+1025/m);
  });
});
