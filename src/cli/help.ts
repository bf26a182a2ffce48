/**
 * --help: citty renders it from the option table (src/cli/args.ts Option),
 * whose spellings, sections and usage line the man page and the completions
 * share (src/cli/complete.ts). Colours only on a terminal, and never with
 * NO_COLOR (no-color.org: set and not empty) or TERM=dumb.
 */
import { isatty } from "node:tty";
import type { ArgsDef, CommandDef } from "citty";
import type { Command, Option, Options } from "./args.ts";

export function useColour(fd: number): boolean {
  return isatty(fd) && !process.env.NO_COLOR && process.env.TERM !== "dumb";
}

/** `--net MODE`, `-v, --verbose`: an option as a user types it. */
export function spelling(name: string, def: Option): string {
  const value = def.type === "boolean" ? "" : ` ${def.valueHint ?? "VALUE"}`;
  return `${def.alias ? `-${def.alias}, ` : ""}--${name}${value}`;
}

/** The usage line's words after the command's path. */
export function usageTail(cmd: Command): string {
  if (cmd.subCommands) return visibleCommands(cmd).join("|");
  const args = (cmd.args ?? {}) as Options;
  const positionals = Object.entries(args)
    .filter(([, d]) => d.type === "positional")
    .map(([k, d]) => (d.required === false ? `[${k.toUpperCase()}]` : `<${k.toUpperCase()}>`));
  // Every command has options: --help and --version at least.
  return ["[OPTIONS]", ...positionals, cmd.tail ? "-- COMMAND [ARG...]" : ""].filter(Boolean).join(" ");
}

export function visibleCommands(cmd: Command): string[] {
  return Object.keys(cmd.subCommands ?? {}).filter((k) => !hiddenNames.has(k));
}

/** Subcommands left out of help and completions (none has to be loaded to know it). */
export const hiddenNames = new Set<string>();

/** Options by section, in table order. */
export function sections(args: Options): [string, [string, Option][]][] {
  const out = new Map<string, [string, Option][]>();
  for (const [name, def] of Object.entries(args)) {
    if (def.type === "positional") continue;
    const key = def.section ?? "Options";
    out.set(key, [...(out.get(key) ?? []), [name, def]]);
  }
  return [...out];
}

/** citty's heading style (underline, bold), its text replaced: "\x1b[4m\x1b[1mOPTIONS\x1b[22m\x1b[24m" → the same around POLICY. */
const restyle = (heading: string, text: string) => heading.replace("OPTIONS", text);
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

/**
 * citty's view of a command: its positionals (and the tail, as citty shows
 * a positional), its subcommands by description (none is loaded), and its
 * options spelled as bwrap and the man page spell them (`--cwd DIR`: citty
 * would write `--cwd=<DIR>`), so the spelling goes in the name.
 */
function cittyCommand(cmd: Command, version: string, subDescriptions: Record<string, string>): CommandDef {
  const args: ArgsDef = {};
  for (const [name, def] of Object.entries((cmd.args ?? {}) as Options)) {
    if (def.type === "positional") {
      args[name] = { type: "positional", description: def.description, required: def.required !== false };
      continue;
    }
    // A long list of aliases (--unshare-*) is the description's to sum up.
    const more = def.aliases?.length && def.aliases.length <= 2 ? ` (also --${def.aliases.join(", --")})` : "";
    const value = def.type === "boolean" ? "" : ` ${def.valueHint ?? "VALUE"}`;
    args[`${name}${value}`] = { type: "boolean", description: `${def.description}${more}`, ...(def.alias ? { alias: def.alias } : {}) };
  }
  if (cmd.tail) args.command = { type: "positional", description: cmd.tail, required: true };
  const subCommands = Object.fromEntries(
    Object.keys(cmd.subCommands ?? {}).map((k) => [k, { meta: { description: subDescriptions[k] ?? "", hidden: hiddenNames.has(k) } }]),
  );
  return { meta: { name: cmd.meta.name, description: cmd.meta.description, version }, args, ...(cmd.subCommands ? { subCommands } : {}) };
}

/**
 * --help, rendered by citty, loaded only now (a run never loads it:
 * test/cli/startup.test.ts). citty lists every option under one OPTIONS
 * heading, in table order, one line each; they are split here into the
 * table's sections, under headings styled as citty's.
 */
export async function renderHelp(
  cmd: Command,
  path: readonly string[],
  version: string,
  subDescriptions: Record<string, string>,
  colour: boolean,
): Promise<string> {
  const { renderUsage } = await import("citty");
  const parent = path.length > 1 ? { meta: { name: path.slice(0, -1).join(" "), version } } : undefined;
  const lines = (await renderUsage(cittyCommand(cmd, version, subDescriptions), parent)).split("\n");
  const at = lines.findIndex((l) => plain(l) === "OPTIONS");
  if (at >= 0) {
    // The heading, a blank line, then one line per option in table order.
    const heading = lines[at]!;
    let next = at + 2;
    const blocks: string[] = [];
    for (const [section, opts] of sections((cmd.args ?? {}) as Options)) {
      blocks.push(restyle(heading, section.toUpperCase()), "", ...lines.slice(next, next + opts.length), "");
      next += opts.length;
    }
    lines.splice(at, next - at + 1, ...blocks);
  }
  // citty colours unless NO_COLOR=1 or TERM=dumb; off a terminal, or with any NO_COLOR, none.
  const text = colour ? lines : lines.map(plain);
  // citty pads every column, the last one too.
  return `${text.map((l) => l.trimEnd()).join("\n").trimEnd()}\n`;
}
