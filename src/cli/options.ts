/**
 * `bunbox run`'s options, declared once: citty renders --help from them,
 * src/cli/args.ts parses them strictly (repeatable options keep every value;
 * everything from the command on is the command's own, untouched:
 * `bunbox run -q -- sh -c 'echo --json'`), src/cli/run.ts checks the values.
 * A module of its own, so that `bunbox run --help` loads no sandbox code.
 */
import type { Options } from "./args.ts";

export const RUN_ARGS = {
  policy: { type: "string", description: "Policy file: JSON, or a .ts module exporting a policy", valueHint: "FILE" },
  profile: { type: "string", description: "Built-in profile: minimal, static, dynamic, shell, build, default", valueHint: "NAME" },
  ro: { type: "string", repeatable: true, description: "Bind a host path read-only (repeatable)", valueHint: "SRC[:DST]" },
  rw: { type: "string", repeatable: true, description: "Bind a host path writable (repeatable)", valueHint: "SRC[:DST]" },
  tmpfs: { type: "string", repeatable: true, description: "A fresh tmpfs (repeatable); SIZE like 64M", valueHint: "DST[:SIZE]" },
  net: { type: "string", description: "Network: none (default), loopback, host", valueHint: "MODE" },
  cwd: { type: "string", description: "Working directory inside the sandbox (default /)", valueHint: "DIR" },
  env: { type: "string", repeatable: true, description: "Set a variable in the sandboxee's environment (repeatable)", valueHint: "NAME=VALUE" },
  "keep-env": { type: "string", repeatable: true, description: "Pass a variable from bunbox's environment (repeatable)", valueHint: "NAME" },
  hostname: { type: "string", description: "Hostname inside (default bunbox)", valueHint: "NAME" },
  uid: { type: "string", description: "uid inside the sandbox", valueHint: "N" },
  gid: { type: "string", description: "gid inside the sandbox", valueHint: "N" },
  "time-limit": { type: "string", description: "Wall-clock limit (default 120; 0: none)", valueHint: "SECONDS" },
  "cpu-limit": { type: "string", description: "CPU time limit per process (default 1024; 0: none)", valueHint: "SECONDS" },
  "memory-limit": { type: "string", description: "Address-space limit per process, e.g. 512M, 2G (at least 1M; default unlimited)", valueHint: "SIZE" },
  "max-procs": { type: "string", description: "Processes and threads (default 4096; 0: no fork)", valueHint: "N" },
  "max-files": { type: "string", description: "Open files per process (default 1024; at least 4)", valueHint: "N" },
  "max-file-size": { type: "string", description: "Largest file a process may write (default 8G)", valueHint: "SIZE" },
  audit: { type: "boolean", description: "Audit mode: calls the policy refuses run anyway and are listed (a relaxation; safety rules still apply)" },
  json: { type: "boolean", description: "Print the Result as JSON on stderr" },
  "result-file": { type: "string", description: "Write the Result as JSON to FILE", valueHint: "FILE" },
  verbose: { type: "boolean", alias: "v", description: "Show the policy, mounts, limits and every relaxation" },
  quiet: { type: "boolean", alias: "q", description: "No message unless bunbox itself fails" },
} as const satisfies Options;

const { audit: _audit, ...RUN_SANDBOX_ARGS } = RUN_ARGS;

/**
 * `bunbox learn`'s: the sandbox of the learning run is described as for
 * `bunbox run` (but --audit: every call is let through already), then what
 * to write (src/cli/learn.ts).
 */
export const LEARN_ARGS = {
  ...RUN_SANDBOX_ARGS,
  output: { type: "string", alias: "o", description: "Write the learned policy to FILE (default: the --merge file)", valueHint: "FILE" },
  merge: { type: "string", repeatable: true, description: "Add to a policy bunbox learn wrote: its runs and this one (repeatable)", valueHint: "FILE" },
  verify: { type: "boolean", description: "Run the command again under the learned policy; fail (exit 3) if it does not run as it did" },
  format: { type: "enum", options: ["json", "ts"], description: "json (default; .ts FILE: ts) or ts: a PolicyBuilder module", valueHint: "FORMAT" },
  "on-refusal": { type: "enum", options: ["kill", "errno"], description: "What a call outside the learned policy gets: kill (default: a violation) or errno (EPERM, listed)", valueHint: "MODE" },
  filesystem: { type: "enum", options: ["learned", "default"], description: "learned (default): an empty root with what the run used; default: the default view", valueHint: "MODE" },
} as const satisfies Options;

