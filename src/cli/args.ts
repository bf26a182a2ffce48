/**
 * The command tree and its strict parser. Options are declared once, as
 * citty ArgDefs (citty renders --help from them); they are parsed here, not
 * by citty, because citty's parser is lenient (node's parseArgs with
 * strict: false): it ignores unknown options and extra arguments, turns
 * `--json=no` into true and a missing value into "". A sandbox CLI cannot
 * let a typo pass: an unknown option, a missing or empty value, a scalar
 * given twice, an argument too many or too few is a UsageError naming it.
 */
import type { ArgDef, CommandMeta } from "citty";
import { UsageError } from "../errors.ts";

/** An option as citty declares it; `repeatable` keeps every value (--ro A --ro B). */
export type Option = ArgDef & { repeatable?: true };
export type Options = Record<string, Option>;

type KeysWhere<A, P> = { [K in keyof A]: A[K] extends P ? K : never }[keyof A] & string;
type ListKeys<A> = KeysWhere<A, { repeatable: true }>;

export interface Parsed<A extends Options> {
  strings: Partial<Record<Exclude<KeysWhere<A, { type: "string" | "enum" }>, ListKeys<A>>, string>>;
  lists: Record<ListKeys<A>, string[]>;
  flags: Partial<Record<KeysWhere<A, { type: "boolean" }>, boolean>>;
  positionals: Record<KeysWhere<A, { type: "positional"; required: true }>, string> &
    Partial<Record<KeysWhere<A, { type: "positional" }>, string>>;
  /** With `tail`: the first argument that is not an option, and all after it, untouched. */
  tail: string[];
}

export interface Command<A extends Options = Options> {
  meta: CommandMeta & { name: string; description: string };
  args?: A;
  /** Set (to its description) when what follows the options is taken as is (`bunbox run … -- COMMAND [ARG...]`). */
  tail?: string;
  /** Each a command, or a loader of one (loaded only when named). */
  subCommands?: Record<string, Command | (() => Command | Promise<Command>)>;
  /** Returns the exit code (default 0). */
  run?(args: Parsed<A>): number | void | Promise<number | void>;
}

export function defineCommand<const A extends Options>(command: Command<A>): Command<A> {
  return command;
}

/** What the arguments asked for: a run, or a built-in. */
export type Request<A extends Options> = { kind: "run"; parsed: Parsed<A> } | { kind: "help" } | { kind: "version" };

const HELP = new Set(["--help", "-h"]);
const VERSION = new Set(["--version", "-V"]);

/**
 * Parses the arguments of a command with no subcommands. --help/-h and
 * --version/-V are every command's; the first one met ends the parse (so
 * `policy check --help` is help, not a missing FILE). `--` ends the options:
 * what follows is positional (or the tail).
 */
export function parseArgs<A extends Options>(cmd: Command<A>, raw: readonly string[], path: readonly string[]): Request<A> {
  const defs = (cmd.args ?? {}) as Options;
  const parsed = { strings: {}, lists: {}, flags: {}, positionals: {}, tail: [] } as unknown as Parsed<A>;
  const strings = parsed.strings as Record<string, string>;
  const lists = parsed.lists as Record<string, string[]>;
  const flags = parsed.flags as Record<string, boolean>;
  const free: string[] = [];
  const byAlias = new Map<string, string>();
  for (const [name, def] of Object.entries(defs)) {
    if ("alias" in def) for (const a of [def.alias ?? []].flat()) byAlias.set(a, name);
    if (def.repeatable) lists[name] = [];
  }
  const hint = `see ${path.join(" ")} --help`;
  const command = path.slice(1).join(" "); // "policy check": the subject of argument errors

  let i = 0;
  for (; i < raw.length; i++) {
    const a = raw[i]!;
    if (a === "--") {
      i++;
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      if (cmd.tail !== undefined) break; // the command starts here
      free.push(a);
      continue;
    }
    if (HELP.has(a)) return { kind: "help" };
    if (VERSION.has(a)) return { kind: "version" };
    let name: string;
    let value: string | undefined;
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      value = eq < 0 ? undefined : a.slice(eq + 1);
    } else {
      const long = a.length === 2 ? byAlias.get(a.slice(1)) : undefined;
      if (long === undefined) {
        throw new UsageError(a, `unknown option (${a.length > 2 ? "short options take one letter, one at a time; " : ""}${hint})`);
      }
      name = long;
    }
    const def = Object.hasOwn(defs, name) ? defs[name]! : undefined;
    if (def === undefined || def.type === "positional") throw new UsageError(`--${name}`, `unknown option (${hint})`);
    if (def.type === "boolean") {
      if (value !== undefined) throw new UsageError(`--${name}`, "takes no value");
      flags[name] = true;
      continue;
    }
    const what = def.valueHint ?? "a value";
    if (value === undefined) {
      value = raw[++i];
      if (value === undefined) throw new UsageError(`--${name}`, `needs a value (${what})`);
    }
    if (value === "") throw new UsageError(`--${name}`, `needs a value (${what}), not an empty string`);
    if (def.type === "enum" && !def.options?.includes(value)) {
      throw new UsageError(`--${name}`, `"${value}" is not one of ${def.options?.join(", ")}`);
    }
    if (def.repeatable) lists[name]!.push(value);
    else if (strings[name] !== undefined) throw new UsageError(`--${name}`, "given twice (it takes one value)");
    else strings[name] = value;
  }
  if (cmd.tail !== undefined) parsed.tail = raw.slice(i);
  else free.push(...raw.slice(i));

  const positionals = parsed.positionals as Record<string, string>;
  for (const [key, def] of Object.entries(defs)) {
    if (def.type !== "positional") continue;
    const value = free.shift();
    if (value === undefined) {
      if (def.required !== false) throw new UsageError(`${command} ${key.toUpperCase()}`, `missing (${hint})`);
      continue;
    }
    if (value === "") throw new UsageError(`${command} ${key.toUpperCase()}`, "an empty string");
    positionals[key] = value;
  }
  if (free.length > 0) throw new UsageError(command, `unexpected argument "${free[0]}" (${hint})`);
  return { kind: "run", parsed };
}
