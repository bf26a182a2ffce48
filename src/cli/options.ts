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
  root: { type: "string", description: "A host directory as the sandbox's / (read-only; /proc, /dev, /tmp added)", valueHint: "DIR" },
  "root-rw": { type: "boolean", description: "Make --root DIR writable (writes reach DIR)" },
  overlay: { type: "boolean", description: "A writable root over --root DIR whose changes are discarded (a tmpfs)" },
  "overlay-upper": { type: "string", description: "Keep the --overlay root's changes in DIR (DIR/upper; DIR/work is overlayfs's)", valueHint: "DIR" },
  "overlay-lower": { type: "string", repeatable: true, description: "Another lower layer of the --overlay root, over --root (repeatable)", valueHint: "DIR" },
  "overlay-size": { type: "string", description: "Size of the --overlay root's tmpfs upper layer (default 256M)", valueHint: "SIZE" },
  ro: { type: "string", repeatable: true, description: "Bind a host path read-only (repeatable)", valueHint: "SRC[:DST]" },
  rw: { type: "string", repeatable: true, description: "Bind a host path writable (repeatable)", valueHint: "SRC[:DST]" },
  "ro-try": { type: "string", repeatable: true, description: "As --ro, nothing if SRC is missing (repeatable)", valueHint: "SRC[:DST]" },
  "rw-try": { type: "string", repeatable: true, description: "As --rw, nothing if SRC is missing (repeatable)", valueHint: "SRC[:DST]" },
  "bind-try": { type: "string", repeatable: true, description: "bwrap's spelling of --rw-try (repeatable)", valueHint: "SRC[:DST]" },
  tmpfs: { type: "string", repeatable: true, description: "A fresh tmpfs (repeatable); SIZE like 64M", valueHint: "DST[:SIZE]" },
  dir: { type: "string", repeatable: true, description: "A directory inside (repeatable)", valueHint: "DST" },
  symlink: { type: "string", repeatable: true, description: "A symlink DST -> TARGET inside (repeatable)", valueHint: "TARGET:DST" },
  file: { type: "string", repeatable: true, description: "A read-only file at DST holding a copy of SRC (a path, or an fd number: read now) (repeatable)", valueHint: "SRC:DST" },
  proc: { type: "string", repeatable: true, description: "A fresh /proc at DST (repeatable)", valueHint: "DST" },
  dev: { type: "string", repeatable: true, description: "A minimal /dev at DST (repeatable)", valueHint: "DST" },
  mask: { type: "string", repeatable: true, description: "Hide DST: an empty directory or file over it (repeatable)", valueHint: "DST" },
  "remount-ro": { type: "string", repeatable: true, description: "Make DST (and what is under it) read-only (repeatable)", valueHint: "DST" },
  "danger-allow-host-mount": { type: "string", repeatable: true, description: "Let binds show the host's proc, sys or dev (a relaxation)", valueHint: "KIND" },
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
  json: { type: "boolean", description: "Print the Result as JSON on stderr" },
  "result-file": { type: "string", description: "Write the Result as JSON to FILE", valueHint: "FILE" },
  verbose: { type: "boolean", alias: "v", description: "Show the policy, mounts, limits and every relaxation" },
  quiet: { type: "boolean", alias: "q", description: "No message unless bunbox itself fails" },
} as const satisfies Options;

