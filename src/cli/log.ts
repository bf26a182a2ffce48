/**
 * bunbox's messages: a consola instance on stderr (stdout belongs to the
 * sandboxee), as changelogen makes its own, at consola's levels (-q: errors
 * only, 0; normal, 3; -v: debug lines too, 4), one plain line per message:
 * "bunbox: …", and lines that continue it indented.
 *
 * consola is loaded on the first line there is to print, not at start: a run
 * that prints nothing (`bunbox run -- /bin/true`) never loads it (README.md,
 * "Start-up"; test/cli/startup.test.ts). Loaded with require(), not
 * import(): a message is written before log.error() returns, so it keeps its
 * place among the sandboxee's own lines on the same stderr, and none is lost
 * to the process.exit() that follows the last one. The bundler puts consola
 * in a chunk of its own, read at that call (scripts/build.ts).
 *
 * Strings from the sandbox or the caller reach it through `visible()`
 * already (one line each); `inert()` here is the last guard: no control
 * character reaches the terminal raw.
 */
import { writeSync } from "../native/fs.ts";
import type { ConsolaInstance, LogObject } from "consola/core";
import { inert } from "../sandbox/visible.ts";

const LEVEL = { quiet: 0, normal: 3, verbose: 4 } as const;

/** consola's log object as bunbox's line: "bunbox: error: …", continuation lines indented by two. */
function format(obj: LogObject): string {
  const text = inert(obj.args.map((a) => (a instanceof Error ? a.message : String(a))).join(" "));
  const prefix = obj.type === "error" || obj.type === "fatal" ? "error: " : obj.type === "warn" ? "warning: " : "";
  return `bunbox: ${prefix}${text}`.replaceAll("\n", "\n  ").replaceAll("\n    ", "\n  ") + "\n";
}

/** fd 2, written synchronously (writeAll), as consola's stderr stream. */
const stderr = { write: (text: string) => writeAll(2, text) } as unknown as NodeJS.WriteStream;

let level: number = LEVEL.normal;
let instance: ConsolaInstance | undefined;

function consola(): ConsolaInstance {
  if (!instance) {
    const { createConsola } = require("./consola.ts") as typeof import("./consola.ts");
    instance = createConsola({
      level,
      stderr,
      // Every line is printed: consola would fold repeated ones ("repeated 5 times") after a delay.
      throttle: 0,
      reporters: [{ log: (obj, ctx) => ctx.options.stderr!.write(format(obj)) }],
    });
  }
  return instance;
}

function emit(type: "error" | "warn" | "log" | "debug", args: unknown[]): void {
  (consola()[type] as (...a: unknown[]) => void)(...args);
}

/** The levels are checked here first, so that a line nobody will see loads nothing. */
export const log = {
  get level(): number {
    return level;
  },
  set level(v: number) {
    level = v;
    if (instance) instance.level = v;
  },
  error(...args: unknown[]): void {
    emit("error", args);
  },
  warn(...args: unknown[]): void {
    if (level >= 1) emit("warn", args);
  },
  log(...args: unknown[]): void {
    if (level >= 2) emit("log", args);
  },
  debug(...args: unknown[]): void {
    if (level >= 4) emit("debug", args);
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
