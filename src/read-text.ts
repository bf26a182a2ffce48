/**
 * The text of the small files a run reads (cgroup files, /proc),
 * without readFileSync's cost for them (README.md, "Start-up"); and the
 * files a person names to bunbox, read to a bound (readAtMost).
 */
import { closeSync, openSync, readSync } from "./native/fs.ts";

/** Where readText reads; grown for a longer file. */
let readBuffer = new Uint8Array(4096);
let utf8: TextDecoder | undefined;

/**
 * A cgroup or /proc file's text, or undefined when it cannot be read
 * (absent on this kernel). Read into one buffer kept for the next: these
 * files say their size is 0, for which readFileSync reads into a fresh
 * 256 KiB buffer, ~20 µs more per file, and a run reads some twenty of them
 * (README.md, "Start-up").
 */
export function readText(path: string): string | undefined {
  let fd;
  try {
    fd = openSync(path, "r");
    let n = 0;
    for (;;) {
      if (n === readBuffer.length) {
        const bigger = new Uint8Array(readBuffer.length * 2);
        bigger.set(readBuffer);
        readBuffer = bigger;
      }
      const got = readSync(fd, readBuffer, n, readBuffer.length - n, null);
      if (got === 0) break;
      n += got;
    }
    // ignoreBOM: a leading BOM stays in the text, as readFileSync leaves it.
    return (utf8 ??= new TextDecoder("utf-8", { ignoreBOM: true })).decode(readBuffer.subarray(0, n));
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * The files a person names to bunbox (a policy, an --env-file, a --file
 * source) are read to this size and no further: a source with no end
 * (/dev/zero, a stream on stdin) would otherwise grow bunbox's memory until
 * the host's ran out, before any check of the content could refuse it.
 */
export const MAX_INPUT = 16 * 1024 * 1024;

/** At most `max` bytes of `fd`, to its end; undefined when there are more. */
export function readAtMost(fd: number, max = MAX_INPUT): Uint8Array | undefined {
  let buf = new Uint8Array(Math.min(64 * 1024, max + 1));
  let n = 0;
  for (;;) {
    if (n === buf.length) {
      if (n > max) return undefined;
      const bigger = new Uint8Array(Math.min(buf.length * 2, max + 1));
      bigger.set(buf);
      buf = bigger;
    }
    const got = readSync(fd, buf, n, buf.length - n, null);
    if (got === 0) return buf.subarray(0, n);
    n += got;
  }
}

/** readAtMost of the file at `path` (its errors are openSync's and readSync's). */
export function readFileAtMost(path: string, max = MAX_INPUT): Uint8Array | undefined {
  const fd = openSync(path, "r");
  try {
    return readAtMost(fd, max);
  } finally {
    closeSync(fd);
  }
}
