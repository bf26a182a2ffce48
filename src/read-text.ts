/**
 * The text of the small files a run reads (cgroup files, /proc),
 * without readFileSync's cost for them (README.md, "Start-up"); and the
 * files a person names to bunbox, read to a bound (readAtMost).
 */
import { closeSync, openSync, readToEnd } from "./native/fs.ts";

/** Where readText reads; grown for a longer file. */
let readBuffer: Uint8Array = new Uint8Array(4096);
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
    const bytes = readToEnd(fd, readBuffer)!;
    readBuffer = new Uint8Array(bytes.buffer); // grown for a longer file: kept for the next
    // ignoreBOM: a leading BOM stays in the text, as readFileSync leaves it.
    return (utf8 ??= new TextDecoder("utf-8", { ignoreBOM: true })).decode(bytes);
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
  return readToEnd(fd, new Uint8Array(Math.min(64 * 1024, max + 1)), max);
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
