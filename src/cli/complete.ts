/**
 * `bunbox completion bash|zsh|fish` and `bunbox man`: shell completions and
 * the man page, generated from the same command tree and option table as
 * the parser and --help (src/cli/args.ts, src/cli/options.ts), so they
 * cannot disagree with it. scripts/build.ts writes dist/bunbox.1 with
 * `bunbox man`.
 */
import pkg from "../../package.json" with { type: "json" };
import { type Command, defineCommand, loadCommand, type Option, type Options } from "./args.ts";
import { sections, spelling, usageTail, visibleCommands } from "./help.ts";
import { writeAll } from "./log.ts";
import { manSections } from "./man-text.ts";

interface Node {
  path: string[];
  cmd: Command;
}

/** Every command of the tree, parents first. */
async function walk(cmd: Command, path: string[] = ["bunbox"]): Promise<Node[]> {
  const out: Node[] = [{ path, cmd }];
  for (const name of visibleCommands(cmd)) out.push(...(await walk(await loadCommand(cmd.subCommands![name]!), [...path, name])));
  return out;
}

async function tree(): Promise<Node[]> {
  const { main } = await import("./main.ts");
  return walk(main);
}

const options = (cmd: Command) => Object.entries((cmd.args ?? {}) as Options).filter(([, d]) => d.type !== "positional");
const longNames = (name: string, d: Option) => [name, ...(d.aliases ?? [])];
const takesValue = (d: Option) => d.type === "string" || d.type === "enum";

// ---- bash ----

function bashValue(d: Option): string {
  if (d.options) return `COMPREPLY=($(compgen -W ${shq(d.options.join(" "))} -- "$cur"))`;
  if (d.complete === "file") return `COMPREPLY=($(compgen -f -- "$cur"))`;
  if (d.complete === "directory") return `COMPREPLY=($(compgen -d -- "$cur"))`;
  if (d.complete === "variable") return `COMPREPLY=($(compgen -v -- "$cur"))`;
  return "COMPREPLY=()";
}

const shq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

function bash(nodes: Node[]): string {
  const cases = nodes.map(({ path, cmd }) => {
    const key = path.slice(1).join(" ");
    const opts = options(cmd);
    const flags = opts.flatMap(([n, d]) => [...longNames(n, d).map((l) => `--${l}`), ...(d.alias ? [`-${d.alias}`] : [])]);
    const valued = opts.filter(([, d]) => takesValue(d));
    const prevCases = valued
      .map(([n, d]) => `        ${[...longNames(n, d).map((l) => `--${l}`), ...(d.alias ? [`-${d.alias}`] : [])].join("|")}) ${bashValue(d)}; return;;`)
      .join("\n");
    const words = [...flags, "--help", "--version"].join(" ");
    const subs = visibleCommands(cmd).join(" ");
    const rest = cmd.tail
      ? `      if [[ $cmdstart -gt 0 ]]; then COMPREPLY=($(compgen -c -- "$cur") $(compgen -f -- "$cur")); return; fi`
      : "";
    return [
      `    ${shq(key)})`,
      rest,
      valued.length ? `      case "$prev" in\n${prevCases}\n      esac` : "",
      `      if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W ${shq(words)} -- "$cur")); return; fi`,
      subs ? `      COMPREPLY=($(compgen -W ${shq(subs)} -- "$cur"))` : cmd.tail ? `      COMPREPLY=($(compgen -c -- "$cur"))` : `      COMPREPLY=($(compgen -f -- "$cur"))`,
      "      ;;",
    ].filter(Boolean).join("\n");
  });
  const paths = nodes.filter((n) => n.cmd.subCommands).map((n) => n.path.slice(1).join(" "));
  const valuedAll = [...new Set(nodes.flatMap(({ cmd }) => options(cmd).filter(([, d]) => takesValue(d)).flatMap(([n, d]) => [...longNames(n, d).map((l) => `--${l}`), ...(d.alias ? [`-${d.alias}`] : [])])))];
  return `# bash completion for bunbox ${pkg.version} (generated: bunbox completion bash)
_bunbox() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local path="" cmdstart=0 i w skip=0
  # The subcommand path so far; with run, where the sandboxed command starts.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if [[ $skip -eq 1 ]]; then skip=0; continue; fi
    case "$w" in
      --) [[ $path == run ]] && { cmdstart=$i; break; };;
      --*=*) ;;
      ${valuedAll.join("|")}) skip=1;;
      -*) ;;
      *)
        case " ${paths.map((p) => `${p}|`).join(" ")} " in
          *" $path|"*) path="\${path:+$path }$w";;
          *) [[ $path == run ]] && { cmdstart=$i; break; };;
        esac;;
    esac
  done
  case "$path" in
${cases.join("\n")}
  esac
}
complete -F _bunbox bunbox
`;
}

// ---- zsh ----

const zq = (s: string) => s.replaceAll("\\", "\\\\").replaceAll("'", "'\\''").replaceAll("[", "\\[").replaceAll("]", "\\]").replaceAll(":", "\\:");

function zshAction(d: Option): string {
  if (d.options) return `(${d.options.join(" ")})`;
  return d.complete === "file" ? "_files" : d.complete === "directory" ? "_files -/" : d.complete === "variable" ? "_parameters" : " ";
}

function zshFunction(name: string, { cmd }: Node): string {
  const specs = options(cmd).flatMap(([n, d]) => {
    const all = [...longNames(n, d).map((l) => `--${l}`), ...(d.alias ? [`-${d.alias}`] : [])];
    const excl = d.repeatable ? "*" : `(${all.join(" ")})`;
    return all.map((flag) => `'${excl}${flag}${takesValue(d) ? "=" : ""}[${zq(d.description)}]${takesValue(d) ? `:${zq(d.valueHint ?? "value")}:${zshAction(d)}` : ""}'`);
  });
  specs.push("'(- *)--help[Show help]'", "'(- *)--version[Show the version]'");
  const subs = visibleCommands(cmd);
  if (subs.length) {
    const described = subs.map((s) => `'${s}:${zq(describe(cmd, s))}'`).join(" ");
    return `${name}() {
  local curcontext="$curcontext" state line
  _arguments -C ${specs.join(" ")} '1: :->cmd' '*:: :->args'
  case $state in
    cmd) local -a cmds; cmds=(${described}); _describe command cmds ;;
    args) case $line[1] in
${subs.map((s) => `      ${s}) ${name}_${s.replace(/\W/g, "_")} ;;`).join("\n")}
    esac ;;
  esac
}`;
  }
  const positionals = Object.entries((cmd.args ?? {}) as Options).filter(([, d]) => d.type === "positional");
  const tail = cmd.tail ? ["'*::command:_normal'"] : positionals.map(([k, d], i) => `'${d.required === false ? ":" : ""}${i + 1}:${zq(k)}:_files'`);
  return `${name}() {\n  _arguments -S ${[...specs, ...tail].join(" ")}\n}`;
}

function describe(cmd: Command, sub: string): string {
  const c = cmd.subCommands![sub]!;
  return "load" in c ? c.description : c.meta.description;
}

function zsh(nodes: Node[]): string {
  const fns = nodes.map((n) => zshFunction(n.path.map((p) => p.replace(/\W/g, "_")).join("_").replace(/^bunbox/, "_bunbox"), n));
  return `#compdef bunbox
# zsh completion for bunbox ${pkg.version} (generated: bunbox completion zsh)
${fns.join("\n\n")}

_bunbox "$@"
`;
}

// ---- fish ----

const fq = (s: string) => `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;

function fish(nodes: Node[]): string {
  const lines = [`# fish completion for bunbox ${pkg.version} (generated: bunbox completion fish)`, "complete -c bunbox -f"];
  for (const { path, cmd } of nodes) {
    const below = path.slice(1);
    const all = nodes.filter((n) => n.cmd.subCommands).flatMap((n) => visibleCommands(n.cmd));
    const cond = below.length === 0
      ? `not __fish_seen_subcommand_from ${[...new Set(all)].join(" ")}`
      : below.map((b) => `__fish_seen_subcommand_from ${b}`).join("; and ");
    for (const s of visibleCommands(cmd)) {
      const c = below.length === 0 ? "__fish_use_subcommand" : `${cond}; and not __fish_seen_subcommand_from ${visibleCommands(cmd).join(" ")}`;
      lines.push(`complete -c bunbox -n ${fq(c)} -a ${s} -d ${fq(describe(cmd, s))}`);
    }
    for (const [n, d] of options(cmd)) {
      for (const l of longNames(n, d)) {
        const value = takesValue(d)
          ? d.complete === "file" || d.complete === "directory" ? " -r -F" : ` -x${d.options ? ` -a ${fq(d.options.join(" "))}` : d.complete === "variable" ? " -a '(set -n)'" : ""}`
          : "";
        lines.push(`complete -c bunbox -n ${fq(cond)} -l ${l}${l === n && d.alias ? ` -s ${d.alias}` : ""}${value} -d ${fq(d.description)}`);
      }
    }
    if (cmd.tail) lines.push(`complete -c bunbox -n ${fq(cond)} -a '(__fish_complete_subcommand --fcs-skip=2)'`);
    else if (Object.values((cmd.args ?? {}) as Options).some((d) => d.type === "positional")) lines.push(`complete -c bunbox -n ${fq(cond)} -F`);
  }
  return `${lines.join("\n")}\n`;
}

// ---- man ----

/** roff text: backslashes, leading dots and quotes made inert, hyphens as minus signs. */
export function roff(s: string): string {
  return s.replaceAll("\\", "\\e").replaceAll("-", "\\-").replace(/^([.'])/gm, "\\&$1");
}

const paragraphs = (text: string) => roff(text).replaceAll("\n\n", "\n.PP\n");

function man(nodes: Node[]): string {
  const date = process.env.SOURCE_DATE_EPOCH ? new Date(Number(process.env.SOURCE_DATE_EPOCH) * 1000) : new Date();
  const out = [
    `.TH BUNBOX 1 "${date.toISOString().slice(0, 10)}" "bunbox ${pkg.version}" "User Commands"`,
    ".SH NAME",
    `bunbox \\- ${roff(pkg.description)}`,
    ".SH SYNOPSIS",
    ...nodes.filter((n) => !n.cmd.subCommands).map((n) => `.B ${n.path.join(" ")}\n${roff(usageTail(n.cmd))}\n.br`),
  ];
  const [intro, ...rest] = manSections();
  out.push(".SH DESCRIPTION", paragraphs(intro!.text));
  for (const { path, cmd } of nodes) {
    if (cmd.subCommands) continue;
    out.push(`.SH ${roff(path.slice(1).join(" ").toUpperCase())}`, roff(cmd.meta.description));
    const positionals = Object.entries((cmd.args ?? {}) as Options).filter(([, d]) => d.type === "positional");
    for (const [k, d] of positionals) out.push(".TP", `.I ${k.toUpperCase()}`, roff(d.description));
    if (cmd.tail) out.push(".TP", ".I COMMAND [ARG...]", roff(cmd.tail));
    for (const [section, opts] of sections((cmd.args ?? {}) as Options)) {
      out.push(`.SS ${roff(section)}`);
      for (const [name, def] of opts) {
        const also = def.aliases?.length ? ` (also ${def.aliases.map((a) => `\\-\\-${roff(a)}`).join(", ")})` : "";
        out.push(".TP", `.B ${roff(spelling(name, def))}`, `${roff(def.description)}${also}`);
      }
    }
  }
  for (const s of rest) out.push(`.SH ${roff(s.title.toUpperCase())}`, paragraphs(s.text));
  return `${out.join("\n")}\n`;
}

const SHELLS = { bash, zsh, fish } as const;

export const completionCommand = defineCommand({
  meta: { name: "completion", description: "Print a shell completion script: bash, zsh or fish" },
  args: {
    shell: { type: "positional", description: "bash (source <(bunbox completion bash)), zsh (a _bunbox file in $fpath) or fish (~/.config/fish/completions/bunbox.fish)", required: true },
  },
  async run({ positionals }) {
    const gen = Object.hasOwn(SHELLS, positionals.shell) ? SHELLS[positionals.shell as keyof typeof SHELLS] : undefined;
    if (!gen) {
      const { UsageError } = await import("../errors.ts");
      throw new UsageError("completion SHELL", `"${positionals.shell}" is not one of bash, zsh, fish`);
    }
    writeAll(1, gen(await tree()));
  },
});

export const manCommand = defineCommand({
  meta: { name: "man", description: "Print the man page (roff): bunbox man | man -l -" },
  async run() {
    writeAll(1, man(await tree()));
  },
});
