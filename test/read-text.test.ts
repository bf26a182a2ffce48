/**
 * readText (src/read-text.ts): the cgroup and /proc files a run
 * reads, through one reused buffer instead of readFileSync's fresh one.
 * The text must be readFileSync's, whole, whatever the file's size (a /proc
 * file says it has none), with nothing of an earlier, longer file left in it.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readText } from "../src/read-text.ts";

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
