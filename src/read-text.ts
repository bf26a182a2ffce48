/**
 * The text of the small files a run reads (cgroup files, /proc),
 * without readFileSync's cost for them (README.md, "Start-up").
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
