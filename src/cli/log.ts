/**
 * bunbox's messages: a consola instance writing to stderr only (stdout
 * belongs to the sandboxee), one plain line per message: "bunbox: …".
 */
import { createConsola, type ConsolaInstance, type LogObject } from "consola";

function format(obj: LogObject): string {
  const text = obj.args.map((a) => (a instanceof Error ? a.message : String(a))).join(" ");
  const prefix = obj.type === "error" || obj.type === "fatal" ? "error: " : obj.type === "warn" ? "warning: " : "";
  return `bunbox: ${prefix}${text}`.replaceAll("\n", "\n  ").replaceAll("\n    ", "\n  ") + "\n";
}

export const log: ConsolaInstance = createConsola({
  level: 3,
  reporters: [{ log: (obj) => void process.stderr.write(format(obj)) }],
});

/** -q: only errors; -v: debug lines too. */
export function setVerbosity(v: "quiet" | "normal" | "verbose"): void {
  log.level = v === "quiet" ? 0 : v === "verbose" ? 4 : 3;
}
