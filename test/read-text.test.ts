/**
 * readText (src/read-text.ts): the cgroup and /proc files a run
 * reads, through one reused buffer instead of readFileSync's fresh one.
 * The text must be readFileSync's, whole, whatever the file's size (a /proc
 * file says it has none), with nothing of an earlier, longer file left in it.
 */
import { describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readAtMost, readFileAtMost, readText } from "../src/read-text.ts";

describe("readText", () => {
  test("a /proc file (size 0) is read whole, as readFileSync reads it", () => {
    for (const p of ["/proc/self/limits", "/proc/sys/user/max_user_namespaces", "/proc/self/mountinfo"]) {
      expect(readText(p)).toBe(readFileSync(p, "utf8"));
    }
    // Longer than the first buffer (4 KiB): read on until the end.
    const maps = readText("/proc/self/smaps")!;
    expect(maps.length).toBeGreaterThan(4096);
    expect(maps.split("\n")[0]).toBe(readFileSync("/proc/self/smaps", "utf8").split("\n")[0]);
  });

  test("a long file with multi-byte characters across the buffer's end, then a short one: each exactly", () => {
    const dir = mkdtempSync(join(tmpdir(), "bunbox-readtext-"));
    try {
      const long = join(dir, "long");
      const short = join(dir, "short");
      const text = `${"x".repeat(4095)}é€😀${"y".repeat(9000)}\n`;
      writeFileSync(long, text);
      writeFileSync(short, "7\n");
      expect(readText(long)).toBe(text);
      expect(readText(short)).toBe("7\n");
      expect(readText(long)).toBe(text);
      // A leading BOM and bytes that are no UTF-8: what readFileSync gives.
      const odd = join(dir, "odd");
      writeFileSync(odd, new Uint8Array([0xef, 0xbb, 0xbf, 0x61, 0xff, 0xfe, 0x62, 0xc3]));
      expect(readText(odd)).toBe(readFileSync(odd, "utf8"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("undefined for what cannot be read: a missing file, a directory", () => {
    expect(readText("/proc/sys/user/no_such_limit")).toBeUndefined();
    expect(readText("/proc/self")).toBeUndefined();
  });
});

describe("readAtMost", () => {
  test("up to the limit, whole; one byte past it, undefined; an endless source stops at the limit", () => {
    const dir = mkdtempSync(join(tmpdir(), "bunbox-readatmost-"));
    try {
      const f = join(dir, "f");
      const bytes = Uint8Array.from({ length: 200_000 }, (_, i) => i % 251);
      writeFileSync(f, bytes);
      expect(readFileAtMost(f, 200_000)).toEqual(bytes);
      expect(readFileAtMost(f, 199_999)).toBeUndefined();
      expect(() => readFileAtMost(join(dir, "none"))).toThrow("ENOENT");
      writeFileSync(f, "");
      expect(readFileAtMost(f, 0)).toEqual(new Uint8Array(0));
    } finally {
      rmSync(dir, { recursive: true });
    }
    expect(readFileAtMost("/dev/zero", 1 << 20)).toBeUndefined();
    const fd = openSync("/dev/zero", "r");
    try {
      expect(readAtMost(fd, 1000)).toBeUndefined();
    } finally {
      closeSync(fd);
    }
  });
});
