#!/usr/bin/env bun
/**
 * The bunbox command line. `run` parses its own options strictly
 * (src/cli/options.ts); citty provides the command tree and the help.
 * Every failure ends as one message on stderr and a documented exit code:
 * 2 bad usage or policy, 125 bunbox's own failure; never a stack trace.
 */
import { defineCommand, renderUsage, runCommand as runCitty } from "citty";
import pkg from "../../package.json" with { type: "json" };
import { BunboxError, EXIT_SETUP, EXIT_USAGE, UsageError } from "../errors.ts";
import { log, writeAll } from "./log.ts";
import { RUN_ARGS } from "./options.ts";

/** Described here for --help; parsed by src/cli/options.ts, run by src/cli/run.ts. */
const runCommand = defineCommand({
  meta: { name: "run", description: "Run a command in a sandbox: bunbox run [OPTIONS] -- COMMAND [ARG...]" },
  args: RUN_ARGS,
});

const main = defineCommand({
  meta: { name: "bunbox", version: pkg.version, description: pkg.description },
  subCommands: {
    run: runCommand,
    policy: () => import("./policy.ts").then((m) => m.policyCommand),
    syscalls: () => import("./syscalls.ts").then((m) => m.syscallsCommand),
  },
});

async function usage(cmd: typeof main | typeof runCommand): Promise<void> {
  writeAll(1, `${await renderUsage(cmd as typeof main, cmd === main ? undefined : main)}\n`);
}

async function dispatch(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    await usage(main);
    return sub === undefined ? EXIT_USAGE : 0;
  }
  if (sub === "--version" || sub === "-V") {
    console.log(`bunbox ${pkg.version} (bun ${Bun.version}, ${process.arch})`);
    return 0;
  }
  if (sub === "run") {
    const cut = rest.indexOf("--");
    const opts = cut < 0 ? rest : rest.slice(0, cut);
    if (opts.includes("--help") || opts.includes("-h")) {
      await usage(runCommand);
      return 0;
    }
    // Loaded on demand: `bunbox --version` and `--help` stay cheap.
    const { runCommandLine } = await import("./run.ts");
    return runCommandLine(rest);
  }
  const known = Object.keys((main.subCommands ?? {}) as object);
  if (!known.includes(sub)) {
    throw new UsageError(sub, `unknown command (one of ${known.join(", ")}; see bunbox --help)`);
  }
  await runCitty(main, { rawArgs: argv });
  return 0;
}

export async function cli(argv: string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (e) {
    if (e instanceof BunboxError) {
      log.error(e.message);
      return e.exitCode;
    }
    log.error(`internal error: ${(e as Error)?.stack ?? e}`);
    return EXIT_SETUP;
  }
}

if (import.meta.main) {
  // No top-level await: the executable is built as bytecode, which needs CommonJS.
  void cli(process.argv.slice(2)).then((code) => process.exit(code));
}

export { EXIT_USAGE };
