/**
 * The command tree and its strict parser. Options are declared once, in the
 * manner of citty's ArgDefs (src/cli/options.ts): that one table feeds this
 * parser, --help (src/cli/help.ts), the man page and the shell completions
 * (src/cli/complete.ts). Not citty's parser: it is lenient (node's
 * parseArgs with strict: false): it ignores unknown options and extra
 * arguments, turns `--json=no` into true and a missing value into "". A
 * sandbox CLI cannot let a typo pass: an unknown option, a missing or empty
 * value, a scalar given twice, an argument too many or too few is a
 * UsageError naming it (with the bunbox spelling, when the unknown option is
 * another tool's: src/cli/hints.ts).
 */
import { UsageError } from "../errors.ts";

/** One option or positional argument: everything the parser, help, man page and completions know of it. */
export interface Option {
  type: "string" | "boolean" | "enum" | "positional";
  description: string;
  /** The value's name in help (FILE, SRC[:DST]). */
  valueHint?: string;
  /** An enum's values. */
  options?: readonly string[];
  /** Keeps every value (--ro A --ro B). */
  repeatable?: true;
  /** A positional argument that may be left out: false. */
  required?: boolean;
  /** A one-letter spelling (-v). */
  alias?: string;
  /** Other long spellings, the same option (--chdir for --cwd). */
  aliases?: readonly string[];
  /** What a shell completes its value with. */
  complete?: "file" | "directory" | "variable";
  /** The heading it is listed under in --help and the man page. */
  section?: string;
}
export type Options = Record<string, Option>;

export interface CommandMeta {
  name: string;
  description: string;
  version?: string;
}

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
  /**
   * The option and value just before a tail that began without "--"
   * (`--ro-try /a /b`: ["--ro-try", "/a"]): what to suspect when the
   * "command" is another tool's second value.
   */
  tailAfter?: [string, string];
}

export interface Command<A extends Options = Options> {
  meta: CommandMeta;
  args?: A;
  /** Set (to its description) when what follows the options is taken as is (`bunbox run … -- COMMAND [ARG...]`). */
  tail?: string;
  /** An unknown option that is another tool's spelling gets the bunbox one (src/cli/hints.ts). */
  hints?: true;
  /** Each a command, or one loaded only when named (its description known without loading it). */
  subCommands?: Record<string, Command | LazyCommand>;
  /** Not listed in help or completions. */
  hidden?: true;
  /** Returns the exit code (default 0). */
  run?(args: Parsed<A>): number | void | Promise<number | void>;
}

export interface LazyCommand {
  description: string;
  load(): Promise<Command>;
}

export function isLazy(c: Command | LazyCommand): c is LazyCommand {
  return "load" in c;
}

/** A subcommand, loaded if need be. */
export async function loadCommand(c: Command | LazyCommand): Promise<Command> {
  return isLazy(c) ? c.load() : c;
}

export function describeCommand(c: Command | LazyCommand): string {
  return isLazy(c) ? c.description : c.meta.description;
}

export function defineCommand<const A extends Options>(command: Command<A>): Command<A> {
  return command;
}

/** What the arguments asked for: a run, or a built-in. */
export type Request<A extends Options> = { kind: "run"; parsed: Parsed<A> } | { kind: "help" } | { kind: "version" };

/** An option the command does not have; `arg` as given and what followed it, for a hint. */
export class UnknownOption extends UsageError {
  constructor(
    readonly spelled: string,
    readonly why: string,
    readonly arg: string,
    readonly rest: readonly string[],
  ) {
    super(spelled, `unknown option (${why})`);
  }
}

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
  const byLong = new Map<string, string>();
  for (const [name, def] of Object.entries(defs)) {
    if (def.alias !== undefined) byAlias.set(def.alias, name);
    if (def.type !== "positional") byLong.set(name, name);
    for (const a of def.aliases ?? []) byLong.set(a, name);
    if (def.repeatable) lists[name] = [];
  }
  const hint = `see ${path.join(" ")} --help`;
  const command = path.slice(1).join(" "); // "policy check": the subject of argument errors

  let i = 0;
  let last: [string, string] | undefined; // the last option and its value, for tailAfter
  for (; i < raw.length; i++) {
    const a = raw[i]!;
    if (a === "--") {
      i++;
      last = undefined;
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      if (cmd.tail !== undefined) break; // the command starts here
      free.push(a);
      continue;
    }
    if (HELP.has(a)) return { kind: "help" };
    if (VERSION.has(a)) return { kind: "version" };
    let name: string | undefined;
    let value: string | undefined;
    let spelled: string;
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      spelled = eq < 0 ? a : a.slice(0, eq);
      name = byLong.get(spelled.slice(2));
      value = eq < 0 ? undefined : a.slice(eq + 1);
    } else {
      spelled = a;
      name = a.length === 2 ? byAlias.get(a.slice(1)) : undefined;
    }
    if (name === undefined) {
      const why = a.startsWith("--") || a.length === 2 ? hint : `short options take one letter, one at a time; ${hint}`;
      throw new UnknownOption(spelled, why, a, raw.slice(i + 1));
    }
    const def = defs[name]!;
    if (def.type === "boolean") {
      if (value !== undefined) throw new UsageError(spelled, "takes no value");
      flags[name] = true;
      last = undefined;
      continue;
    }
    const what = def.valueHint ?? "a value";
    if (value === undefined) {
      value = raw[++i];
      // `--dir -- cmd`: the value was forgotten; "--" taken as it would be a path named "--" and the command's start lost.
      if (value === undefined || value === "--") throw new UsageError(spelled, `needs a value (${what})${value === "--" ? ', not "--"' : ""}`);
    }
    if (value === "") throw new UsageError(spelled, `needs a value (${what}), not an empty string`);
    if (def.type === "enum" && !def.options?.includes(value)) {
      throw new UsageError(spelled, `"${value}" is not one of ${def.options?.join(", ")}`);
    }
    last = a.includes("=") ? undefined : [spelled, value];
    if (def.repeatable) lists[name]!.push(value);
    else if (strings[name] !== undefined) throw new UsageError(spelled, "given twice (it takes one value)");
    else strings[name] = value;
  }
  if (cmd.tail !== undefined) {
    parsed.tail = raw.slice(i);
    if (last && parsed.tail.length) parsed.tailAfter = last;
  }
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
