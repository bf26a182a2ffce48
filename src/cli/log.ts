/**
 * bunbox's messages: a consola instance writing to stderr only (stdout
 * belongs to the sandboxee), one plain line per message: "bunbox: …", and
 * lines that continue it indented. Strings from the sandbox or the caller
 * reach it through `visible()` already (one line each); `inert()` here is
 * the last guard: no control character reaches the terminal raw.
 */
import { writeSync } from "node:fs";
import { createConsola, type ConsolaInstance, type LogObject } from "consola/core";
import { inert } from "../sandbox/visible.ts";

function format(obj: LogObject): string {
  const text = inert(obj.args.map((a) => (a instanceof Error ? a.message : String(a))).join(" "));
  const prefix = obj.type === "error" || obj.type === "fatal" ? "error: " : obj.type === "warn" ? "warning: " : "";
  return `bunbox: ${prefix}${text}`.replaceAll("\n", "\n  ").replaceAll("\n    ", "\n  ") + "\n";
}

export const log: ConsolaInstance = createConsola({
  level: 3,
  reporters: [{ log: (obj) => writeAll(2, format(obj)) }],
});

/** -q: only errors; -v: debug lines too. */
export function setVerbosity(v: "quiet" | "normal" | "verbose"): void {
  log.level = v === "quiet" ? 0 : v === "verbose" ? 4 : 3;
}

/**
 * Writes synchronously to fd 1 or 2. Not process.stdout/stderr: Bun sets up
 * a stream for them on first use (~25 ms here) and makes the shared file
 * description non-blocking, which the sandboxee would inherit.
 */
export function writeAll(fd: 1 | 2, text: string): void {
  const data = new TextEncoder().encode(text);
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(fd, data, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") return;
    }
  }
}
