/**
 * --help, rendered from the option table (src/cli/args.ts Option). Colours
 * only on a terminal, and never with NO_COLOR (no-color.org: set and not
 * empty) or TERM=dumb.
 */
import { isatty } from "node:tty";
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

export function renderHelp(
  cmd: Command,
  path: readonly string[],
  version: string,
  subDescriptions: Record<string, string>,
  colour: boolean,
): string {
  const bold = (s: string) => (colour ? `\x1b[1m${s}\x1b[22m` : s);
  const cyan = (s: string) => (colour ? `\x1b[36m${s}\x1b[39m` : s);
  const lines = [`${cmd.meta.description} (bunbox ${version})`, "", `${bold("USAGE")} ${cyan(`${path.join(" ")} ${usageTail(cmd)}`)}`];
  const args = (cmd.args ?? {}) as Options;
  const table = (rows: [string, string][]) => {
    const width = Math.min(34, Math.max(...rows.map(([l]) => l.length)) + 2);
    for (const [left, right] of rows) {
      lines.push(left.length + 2 > width ? `  ${cyan(left)}\n  ${" ".repeat(width)}${right}` : `  ${cyan(left.padEnd(width))}${right}`);
    }
  };
  const positionals = Object.entries(args).filter(([, d]) => d.type === "positional");
  if (positionals.length || cmd.tail) {
    lines.push("", bold("ARGUMENTS"));
    table([
      ...positionals.map(([k, d]): [string, string] => [k.toUpperCase(), d.description]),
      ...(cmd.tail ? [["COMMAND [ARG...]", cmd.tail] as [string, string]] : []),
    ]);
  }
  for (const [section, opts] of sections(args)) {
    lines.push("", bold(section.toUpperCase()));
    table(
      opts.map(([name, def]) => {
        // A long list of aliases (--unshare-*) is the description's to sum up.
        const more = def.aliases?.length && def.aliases.length <= 2 ? ` (also --${def.aliases.join(", --")})` : "";
        return [spelling(name, def), `${def.description}${more}`];
      }),
    );
  }
  const subs = visibleCommands(cmd);
  if (subs.length) {
    lines.push("", bold("COMMANDS"));
    table(subs.map((s) => [s, subDescriptions[s] ?? ""]));
    lines.push("", `Use ${cyan(`${path.join(" ")} COMMAND --help`)} for more information about a command.`);
  }
  return `${lines.join("\n")}\n`;
}
