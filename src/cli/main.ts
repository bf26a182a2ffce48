#!/usr/bin/env bun
/**
 * The bunbox command line. Commands and their options are declared once
 * (src/cli/args.ts, src/cli/options.ts): that table gives the strict parser,
 * --help (src/cli/help.ts), the man page and the completions
 * (src/cli/complete.ts). Every failure ends here, in `errorReport`: one message on stderr
 * and a documented exit code (README.md "Exit codes"): 2 bad usage or policy,
 * 125 bunbox's own failure; never a stack trace (but with -v or BUNBOX_DEBUG).
 */
import pkg from "../../package.json" with { type: "json" };
import { BunboxError, EXIT_SETUP, ProblemsError, UsageError } from "../errors.ts";
import { visible } from "../sandbox/visible.ts";
import { checkArgsBytes } from "./bytes.ts";
import { type Command, defineCommand, describeCommand, loadCommand, parseArgs, UnknownOption } from "./args.ts";
import { log, writeAll } from "./log.ts";
import { LEARN_ARGS, RUN_ARGS } from "./options.ts";

export const main = defineCommand({
  meta: { name: "bunbox", version: pkg.version, description: pkg.description },
  subCommands: {
    // Described here, so that `bunbox run --help` loads no sandbox code.
    run: defineCommand({
      meta: { name: "run", description: "Run a command in a sandbox" },
      args: RUN_ARGS,
      tail: "The command and its arguments (after --, or from the first argument that is not an option)",
      hints: true,
      run: async (args) => (await import("./run.ts")).runCommandLine(args),
    }),
    learn: defineCommand({
      meta: { name: "learn", description: "Learn the tightest policy for a command: -o POLICY.json -- COMMAND [ARG...]" },
      args: LEARN_ARGS,
      tail: "The command to learn from and its arguments (after --, or from the first argument that is not an option)",
      hints: true,
      run: async (args) => (await import("./learn.ts")).learnCommandLine(args),
    }),
    policy: { description: "Check or explain a policy", load: () => import("./policy.ts").then((m) => m.policyCommand) },
    syscalls: { description: "List the syscall table (number, name, arguments)", load: () => import("./syscalls.ts").then((m) => m.syscallsCommand) },
    oci: { description: "Run an OCI runtime bundle (oci run BUNDLE), or write a starter one (oci spec)", load: () => import("./oci.ts").then((m) => m.ociCommand) },
    completion: { description: "Print a shell completion script: bash, zsh or fish", load: () => import("./complete.ts").then((m) => m.completionCommand) },
    man: { description: "Print the man page (roff): bunbox man | man -l -", load: () => import("./complete.ts").then((m) => m.manCommand) },
  },
});

async function help(cmd: Command, path: readonly string[]): Promise<void> {
  const { renderHelp, useColour } = await import("./help.ts");
  const subs = Object.fromEntries(Object.entries(cmd.subCommands ?? {}).map(([k, c]) => [k, describeCommand(c)]));
  writeAll(1, await renderHelp(cmd, path, pkg.version, subs, useColour(1)));
}

/** Walks the tree to the command named, then parses its arguments. */
async function dispatch(cmd: Command, argv: readonly string[], path: readonly string[]): Promise<number> {
  const usage = path.join(" ");
  if (cmd.subCommands) {
    const names = Object.keys(cmd.subCommands);
    const [first, ...rest] = argv;
    const choice = `one of ${names.join(", ")}; see ${usage} --help`;
    if (first === undefined) throw new UsageError([...path.slice(1), "COMMAND"].join(" "), `missing (${choice})`);
    if (first === "--") return dispatch(cmd, rest, path);
    if (first === "--help" || first === "-h") return help(cmd, path).then(() => 0);
    if (first === "--version" || first === "-V") return version();
    if (first === "help" && path.length === 1) return dispatch(cmd, [...rest, "--help"], path);
    if (first.startsWith("-")) throw new UsageError(first, `unknown option (give a command first: ${choice})`);
    if (!Object.hasOwn(cmd.subCommands, first)) throw new UsageError(first, `unknown command (${choice})`);
    return dispatch(await loadCommand(cmd.subCommands[first]!), rest, [...path, first]);
  }
  let request;
  try {
    request = parseArgs(cmd, argv, path);
  } catch (e) {
    // Another tool's spelling? The table of them is loaded only now.
    if (!(e instanceof UnknownOption && cmd.hints)) throw e;
    const hint = (await import("./hints.ts")).hintFor(e.arg, e.rest, cmd.args ?? {});
    throw hint ? new UsageError(e.spelled, `unknown option (${hint})`) : e;
  }
  if (request.kind === "help") return help(cmd, path).then(() => 0);
  if (request.kind === "version") return version();
  return (await cmd.run?.(request.parsed)) ?? 0;
}

function version(): number {
  writeAll(1, `bunbox ${pkg.version} (bun ${Bun.version}, ${process.arch})\n`);
  return 0;
}

/**
 * The one error path: bunbox's own errors are their message (an invalid
 * policy lists every problem), anything else is an internal error in one
 * line; its stack only when asked for. Every string is made visible: an
 * option's value, a path or a policy field may come from a hostile caller.
 */
export async function errorReport(e: unknown, debug: boolean): Promise<{ lines: string[]; code: number }> {
  if (e instanceof BunboxError) {
    // An invalid policy or bundle lists every problem, a line each.
    const lines = e instanceof ProblemsError
      ? [`${visible(e.headline)}:`, ...e.problems.map((p) => `  - ${visible(p)}`)]
      : [visible(e.message)];
    return { lines, code: e.exitCode };
  }
  const err = e instanceof Error ? e : new Error(String(e));
  const where = debug ? (err.stack ?? "").split("\n").filter((l) => /^\s+at /.test(l)).map((l) => `  ${visible(l.trim())}`) : [];
  const line = `internal error: ${visible(`${err.name}: ${err.message}`)}${debug ? "" : " (BUNBOX_DEBUG=1 shows where)"}`;
  return { lines: [line, ...where], code: EXIT_SETUP };
}

const debugging = () => log.level >= 4 || !["", "0", undefined].includes(process.env.BUNBOX_DEBUG);

async function fail(e: unknown): Promise<number> {
  const { lines, code } = await errorReport(e, debugging());
  log.error(lines.join("\n"));
  return code;
}

export async function cli(argv: string[]): Promise<number> {
  try {
    return await dispatch(main, argv, ["bunbox"]);
  } catch (e) {
    return fail(e);
  }
}

if (import.meta.main) {
  // bunbox's own exit, kept: a policy module's code runs with process.exit
  // refused (src/policy/module.ts withoutExit), and one whose await never
  // settles leaves it so when the event loop empties.
  const exit = process.exit.bind(process);
  // Thrown from a callback, not from cli(): the same one line, then the exit
  // (the sandbox dies with bunbox).
  const fatal = (e: unknown) => void fail(e).then((code) => exit(code));
  process.on("uncaughtException", fatal);
  process.on("unhandledRejection", fatal);
  // Every way through cli() ends in process.exit: an empty event loop before
  // that is an await that never settled (a policy module's top-level await),
  // which Bun would end with 0, as if the command had run and succeeded.
  process.on("beforeExit", () => fatal(new BunboxError("bunbox", "internal error: bunbox stopped before the run ended (an await that never settles: in a policy module?)")));
  const args = process.argv.slice(2);
  void Promise.resolve()
    .then(() => checkArgsBytes(args))
    .then(() => cli(args), fail)
    .then((code) => exit(code));
}
