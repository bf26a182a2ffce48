/**
 * `bunbox run`'s options: declared once as citty ArgDefs (for --help) and
 * parsed strictly here, because a sandbox CLI cannot let a typo pass: an
 * unknown option is an error naming it, repeatable options (--ro, --env…)
 * keep every value, and everything from the command on is the command's own,
 * untouched (`bunbox run -q -- sh -c 'echo --json'`).
 */
import type { ArgDef } from "citty";
import { UsageError } from "../errors.ts";

export const RUN_ARGS = {
  policy: { type: "string", description: "Policy file: JSON, or a .ts module exporting a policy", valueHint: "FILE" },
  profile: { type: "string", description: "Built-in profile: minimal, static, dynamic, shell, build, default", valueHint: "NAME" },
  ro: { type: "string", description: "Bind a host path read-only (repeatable)", valueHint: "SRC[:DST]" },
  rw: { type: "string", description: "Bind a host path writable (repeatable)", valueHint: "SRC[:DST]" },
  tmpfs: { type: "string", description: "A fresh tmpfs (repeatable); SIZE like 64M", valueHint: "DST[:SIZE]" },
  net: { type: "string", description: "Network: none (default), loopback, host", valueHint: "MODE" },
  cwd: { type: "string", description: "Working directory inside the sandbox (default /)", valueHint: "DIR" },
  env: { type: "string", description: "Set a variable in the sandboxee's environment (repeatable)", valueHint: "NAME=VALUE" },
  "keep-env": { type: "string", description: "Pass a variable from bunbox's environment (repeatable)", valueHint: "NAME" },
  hostname: { type: "string", description: "Hostname inside (default bunbox)", valueHint: "NAME" },
  uid: { type: "string", description: "uid inside the sandbox", valueHint: "N" },
  gid: { type: "string", description: "gid inside the sandbox", valueHint: "N" },
  "time-limit": { type: "string", description: "Wall-clock limit (default 120; 0: none)", valueHint: "SECONDS" },
  "cpu-limit": { type: "string", description: "CPU time limit per process (default 1024)", valueHint: "SECONDS" },
  "memory-limit": { type: "string", description: "Address-space limit per process, e.g. 512M, 2G", valueHint: "SIZE" },
  "max-procs": { type: "string", description: "Processes and threads (default 4096)", valueHint: "N" },
  "max-files": { type: "string", description: "Open files per process (default 1024)", valueHint: "N" },
  "max-file-size": { type: "string", description: "Largest file a process may write (default 8G)", valueHint: "SIZE" },
  json: { type: "boolean", description: "Print the Result as JSON on stderr" },
  "result-file": { type: "string", description: "Write the Result as JSON to FILE", valueHint: "FILE" },
  verbose: { type: "boolean", alias: "v", description: "Show the policy, mounts, limits and every relaxation" },
  quiet: { type: "boolean", alias: "q", description: "No message unless bunbox itself fails" },
} as const satisfies Record<string, ArgDef>;

type Name = keyof typeof RUN_ARGS;
const REPEATABLE = new Set<Name>(["ro", "rw", "tmpfs", "env", "keep-env"]);

export interface RunOptions {
  strings: Partial<Record<Name, string>>;
  lists: Record<"ro" | "rw" | "tmpfs" | "env" | "keep-env", string[]>;
  flags: Partial<Record<"json" | "verbose" | "quiet", boolean>>;
  command: string[];
}

const byAlias = new Map<string, Name>();
for (const [name, def] of Object.entries(RUN_ARGS)) {
  if ("alias" in def) byAlias.set(def.alias, name as Name);
}

export function parseRunArgs(raw: readonly string[]): RunOptions {
  const out: RunOptions = {
    strings: {},
    lists: { ro: [], rw: [], tmpfs: [], env: [], "keep-env": [] },
    flags: {},
    command: [],
  };
  let i = 0;
  for (; i < raw.length; i++) {
    const a = raw[i]!;
    if (a === "--") {
      i++;
      break;
    }
    if (!a.startsWith("-") || a === "-") break; // the command starts here
    let name: string;
    let value: string | undefined;
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      value = eq < 0 ? undefined : a.slice(eq + 1);
    } else {
      if (a.length !== 2) throw new UsageError(a, "unknown option (short options take one letter: -v, -q)");
      const long = byAlias.get(a.slice(1));
      if (!long) throw new UsageError(a, "unknown option (see bunbox run --help)");
      name = long;
    }
    if (!Object.hasOwn(RUN_ARGS, name)) throw new UsageError(`--${name}`, "unknown option (see bunbox run --help)");
    const key = name as Name;
    const def = RUN_ARGS[key];
    if (def.type === "boolean") {
      if (value !== undefined) throw new UsageError(`--${name}`, "takes no value");
      out.flags[key as "json" | "verbose" | "quiet"] = true;
      continue;
    }
    if (value === undefined) {
      value = raw[++i];
      if (value === undefined) throw new UsageError(`--${name}`, `needs a value (${def.valueHint})`);
    }
    if (REPEATABLE.has(key)) out.lists[key as keyof RunOptions["lists"]].push(value);
    else if (out.strings[key] !== undefined) throw new UsageError(`--${name}`, "given twice");
    else out.strings[key] = value;
  }
  out.command = raw.slice(i);
  return out;
}
