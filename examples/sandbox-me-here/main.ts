#!/usr/bin/env bun
/**
 * Sandbox me here: runs redact.c, which starts without a seccomp filter,
 * reads its configuration and builds its table, and only then applies its
 * policy with bunbox_sandbox_me_here(). The policy has no open() at all, so
 * nothing of the start-up (ld.so, the config file) has to be allowed: it is
 * over before the filter goes in. See README.md.
 *
 *   bun examples/sandbox-me-here/main.ts [--reopen] [INPUT | -]
 *
 * INPUT (default: sample.txt beside this file; "-": this process's stdin) is
 * redacted to stdout with the words of redact.conf blanked out. With
 * --reopen the program opens its config again after the call, and the run
 * ends as a VIOLATION. The Result goes to stderr; the exit code is the
 * sandbox's (0, 159 for a violation, …), 2 for bad usage.
 */
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { Executor, PolicyBuilder, Sandbox } from "../../src/index.ts";
import { compileC, runMain, stageFile } from "../shared/compile.ts";

/** Where the config appears inside the sandbox. */
const CONFIG = "/config/redact.conf";

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const reopen = args[0] === "--reopen";
  if (reopen) args.shift();
  if (args.length > 1 || args[0]?.startsWith("--")) {
    process.stderr.write("usage: bun examples/sandbox-me-here/main.ts [--reopen] [INPUT | -]\n");
    return 2;
  }
  const input = args[0] ?? join(import.meta.dir, "sample.txt");

  const redact = compileC({ name: "redact", sources: [join(import.meta.dir, "redact.c")] });
  const policy = new PolicyBuilder()
    // Only what the filtering loop needs: no open, no stat, no socket, no exec.
    .allowRead()
    .allowWrite()
    .allowSystemMalloc()
    .allowExit()
    // The filesystem is still the sandbox's, start-up included: the default
    // view (/usr, /lib… read-only for the dynamic loader), the program, and
    // its config.
    .addFileAt(redact, "/example/redact")
    .addFileAt(stageFile(join(import.meta.dir, "redact.conf")), CONFIG)
    .build();

  const argv = ["redact", CONFIG, ...(reopen ? ["--reopen"] : [])];
  const executor = new Executor("/example/redact", argv, {
    sandboxBeforeExec: false,
    limits: { wallTimeMs: 10_000, addressSpace: 256 << 20 },
  });
  const inputFd = input === "-" ? 0 : openSync(input, "r");
  // The sandboxee's stdin is the input, its stdout ours: the redacted text
  // goes straight to whoever reads this script's output.
  executor.ipc.mapFd(inputFd, 0).mapFd(1, 1).mapFd(2, 2);
  const sandbox = new Sandbox(executor, policy);
  // The spawn happens on a later turn of the event loop: the input fd stays
  // open until the run is over.
  const result = await sandbox.run();
  if (inputFd !== 0) closeSync(inputFd);

  process.stderr.write(`redact: ${result.toString()}\n`);
  if (result.violation) {
    process.stderr.write(`redact tried ${result.violation.syscall}() after bunbox_sandbox_me_here(); the policy forbids it\n`);
  }
  return result.code;
}

if (import.meta.main) runMain("sandbox-me-here", main);
