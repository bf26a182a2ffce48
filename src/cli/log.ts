/**
 * bunbox's messages on stderr only (stdout belongs to the sandboxee), one
 * plain line per message: "bunbox: …", and lines that continue it indented,
 * at three levels (-q: errors only; -v: debug lines too). consola's levels
 * and shape, without loading consola on every start (README.md, "Start-up").
 * Strings from the sandbox or the caller reach it through `visible()`
 * already (one line each); `inert()` here is the last guard: no control
 * character reaches the terminal raw.
 */
import { writeSync } from "node:fs";
import { inert } from "../sandbox/visible.ts";

const LEVEL = { quiet: 0, normal: 3, verbose: 4 } as const;

function emit(prefix: string, args: unknown[]): void {
  const text = inert(args.map((a) => (a instanceof Error ? a.message : String(a))).join(" "));
  writeAll(2, `bunbox: ${prefix}${text}`.replaceAll("\n", "\n  ").replaceAll("\n    ", "\n  ") + "\n");
}

export const log = {
  /** 0: errors only; 3: normal; 4: debug lines too. */
  level: LEVEL.normal as number,
  error(...args: unknown[]): void {
    emit("error: ", args);
  },
  warn(...args: unknown[]): void {
    if (this.level >= 1) emit("warning: ", args);
  },
  log(...args: unknown[]): void {
    if (this.level >= 2) emit("", args);
  },
  debug(...args: unknown[]): void {
    if (this.level >= 4) emit("", args);
  },
};

/** -q: only errors; -v: debug lines too. */
export function setVerbosity(v: keyof typeof LEVEL): void {
  log.level = LEVEL[v];
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
