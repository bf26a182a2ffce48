/**
 * `bunbox run`'s options, declared once: this table feeds the strict parser
 * (src/cli/args.ts: repeatable options keep every value; everything from
 * the command on is the command's own, untouched: `bunbox run -q -- sh -c
 * 'echo --json'`), --help (src/cli/help.ts), the man page and the shell
 * completions (src/cli/complete.ts); src/cli/run.ts checks the values.
 * Adding an option is one entry here (and its handling in run.ts).
 * A module of its own, so that `bunbox run --help` loads no sandbox code.
 */
import type { Options } from "./args.ts";

const POLICY = "Policy";
const FILES = "Filesystem";
const NET = "Network and identity";
const ENV = "Environment";
const TTY = "Terminal";
const LIMITS = "Limits";
const OUT = "Output";
const COMPAT = "Accepted for bwrap command lines (always so in bunbox)";

export const RUN_ARGS = {
  policy: { type: "string", section: POLICY, complete: "file", description: "Policy file: JSON, or a .ts/.js module exporting a policy", valueHint: "FILE" },
  profile: { type: "string", section: POLICY, options: ["minimal", "static", "dynamic", "shell", "build", "default", "python3", "node", "bun", "sh", "cc"], description: "Built-in profile (default: default; python3, node, bun, sh, cc are learned)", valueHint: "NAME" },
  audit: { type: "boolean", section: POLICY, description: "Audit mode: calls the policy refuses run anyway and are listed (a relaxation; the safety rules still refuse)" },
  ro: { type: "string", section: FILES, repeatable: true, complete: "file", description: "Bind a host path read-only (repeatable)", valueHint: "SRC[:DST]" },
  rw: { type: "string", section: FILES, repeatable: true, complete: "file", description: "Bind a host path writable (repeatable)", valueHint: "SRC[:DST]" },
  tmpfs: { type: "string", section: FILES, repeatable: true, description: "A fresh tmpfs (repeatable); SIZE like 64M (default 64M)", valueHint: "DST[:SIZE]" },
  "ro-try": { type: "string", section: FILES, repeatable: true, complete: "file", description: "As --ro, nothing if SRC is missing (repeatable)", valueHint: "SRC[:DST]" },
  "rw-try": { type: "string", section: FILES, repeatable: true, complete: "file", aliases: ["bind-try"], description: "As --rw, nothing if SRC is missing (repeatable)", valueHint: "SRC[:DST]" },
  dir: { type: "string", section: FILES, repeatable: true, description: "A directory inside (repeatable)", valueHint: "DST" },
  symlink: { type: "string", section: FILES, repeatable: true, description: "A symlink DST -> TARGET inside (repeatable)", valueHint: "TARGET:DST" },
  file: { type: "string", section: FILES, repeatable: true, complete: "file", description: "A read-only file at DST holding a copy of SRC, a path or an open fd's number, read when bunbox starts (repeatable)", valueHint: "SRC:DST" },
  proc: { type: "string", section: FILES, repeatable: true, description: "A fresh /proc at DST, besides /proc (repeatable)", valueHint: "DST" },
  dev: { type: "string", section: FILES, repeatable: true, description: "A minimal /dev at DST, besides /dev (repeatable)", valueHint: "DST" },
  mask: { type: "string", section: FILES, repeatable: true, description: "Hide DST: an empty directory or file over it (repeatable)", valueHint: "DST" },
  "remount-ro": { type: "string", section: FILES, repeatable: true, description: "Make DST and what is under it read-only (repeatable)", valueHint: "DST" },
  root: { type: "string", section: FILES, complete: "directory", description: "A host directory as the sandbox's / (read-only; /proc, /dev, /tmp mounted into it)", valueHint: "DIR" },
  "root-rw": { type: "boolean", section: FILES, description: "Make --root DIR writable (writes reach DIR)" },
  overlay: { type: "boolean", section: FILES, description: "A writable root over --root DIR whose writes vanish with the run (a tmpfs)" },
  "overlay-upper": { type: "string", section: FILES, complete: "directory", description: "Keep the --overlay root's changes in DIR/upper (DIR/work is overlayfs's)", valueHint: "DIR" },
  "overlay-lower": { type: "string", section: FILES, repeatable: true, complete: "directory", description: "Another layer over --root, the last on top (repeatable)", valueHint: "DIR" },
  "overlay-size": { type: "string", section: FILES, description: "The --overlay root's tmpfs upper layer (default 256M)", valueHint: "SIZE" },
  "danger-allow-host-mount": { type: "string", section: FILES, repeatable: true, options: ["proc", "sys", "dev"], description: "Let binds show the host's /proc, /sys or device nodes (a relaxation; repeatable)", valueHint: "KIND" },
  cwd: { type: "string", section: FILES, aliases: ["chdir"], description: "Working directory inside the sandbox (default /)", valueHint: "DIR" },
  net: {
    type: "enum",
    section: NET,
    options: ["none", "loopback", "host", "proxy", "proxy-transparent"],
    description:
      "none (default): a network of its own, only lo (up); loopback: the same; host: the host's network (a relaxation); " +
      "proxy: only the --allow-host hosts, through bunbox's proxy; proxy-transparent: the same, and connect() is taken through it too",
    valueHint: "MODE",
  },
  "allow-host": { type: "string", section: NET, repeatable: true, description: "Let the sandboxee reach HOST through the proxy: a name, *.suffix, an IP or CIDR, optional :PORT (repeatable; implies --net proxy)", valueHint: "PATTERN" },
  "deny-host": { type: "string", section: NET, repeatable: true, description: "Refuse HOST whatever --allow-host says (repeatable; implies --net proxy)", valueHint: "PATTERN" },
  "add-host": { type: "string", section: NET, repeatable: true, description: "Resolve NAME to IP for the proxy, like curl --resolve (repeatable; implies --net proxy)", valueHint: "NAME:IP" },
  "max-connections": { type: "string", section: NET, description: "Proxy connections open at once (default 256)", valueHint: "N" },
  "share-net": { type: "boolean", section: NET, description: "The host's network: --net host (a relaxation)" },
  hostname: { type: "string", section: NET, description: "Hostname inside (default bunbox)", valueHint: "NAME" },
  uid: { type: "string", section: NET, description: "uid inside the sandbox (the kernel's stays unprivileged)", valueHint: "N" },
  gid: { type: "string", section: NET, description: "gid inside the sandbox", valueHint: "N" },
  env: { type: "string", section: ENV, repeatable: true, description: "Set a variable (repeatable)", valueHint: "NAME=VALUE" },
  "env-file": { type: "string", section: ENV, repeatable: true, complete: "file", description: "Set the variables of FILE: NAME=VALUE lines, # comments, NAME alone passes bunbox's (repeatable)", valueHint: "FILE" },
  "keep-env": { type: "string", section: ENV, repeatable: true, complete: "variable", description: "Pass a variable from bunbox's environment (repeatable)", valueHint: "NAME" },
  unsetenv: { type: "string", section: ENV, repeatable: true, complete: "variable", description: "Remove a variable, even PATH or HOME (repeatable; after all the others)", valueHint: "NAME" },
  tty: { type: "boolean", section: TTY, description: "A terminal of its own even when no std fd is a terminal (stdout and stderr merged)" },
  "no-tty": { type: "boolean", section: TTY, description: "No terminal of its own: the sandboxee gets bunbox's std fds, terminals too (a relaxation)" },
  "time-limit": { type: "string", section: LIMITS, description: "Wall-clock limit (default 120; none when stdin is a terminal; 0: none)", valueHint: "SECONDS" },
  "cpu-limit": { type: "string", section: LIMITS, description: "CPU time limit per process (default 1024; 0: none)", valueHint: "SECONDS" },
  "memory-limit": { type: "string", section: LIMITS, description: "Memory of the whole sandbox, e.g. 512M, 2G (at least 4M; default unlimited; needs a cgroup)", valueHint: "SIZE" },
  cpus: { type: "string", section: LIMITS, description: "CPU time of the whole sandbox per second, in CPUs, e.g. 1.5 (default unlimited; needs a cgroup)", valueHint: "N" },
  "max-procs": { type: "string", section: LIMITS, description: "Processes and threads of the whole sandbox (default 4096; 0: no fork)", valueHint: "N" },
  "address-space-limit": { type: "string", section: LIMITS, description: "Address space per process (RLIMIT_AS), e.g. 4G (at least 1M; default unlimited)", valueHint: "SIZE" },
  "allow-weaker-limits": { type: "boolean", section: LIMITS, description: "Without a usable cgroup: the memory limit per process, the CPU limit not enforced (a relaxation)" },
  "max-files": { type: "string", section: LIMITS, description: "Open files per process (default 1024; at least 4)", valueHint: "N" },
  "max-file-size": { type: "string", section: LIMITS, description: "Largest file a process may write (default 8G)", valueHint: "SIZE" },
  json: { type: "boolean", section: OUT, description: "Print the Result as JSON on stderr" },
  "result-file": { type: "string", section: OUT, complete: "file", description: "Write the Result as JSON to FILE", valueHint: "FILE" },
  verbose: { type: "boolean", section: OUT, alias: "v", description: "Show the policy, mounts, limits, every relaxation, and where the time went" },
  quiet: { type: "boolean", section: OUT, alias: "q", description: "No message unless bunbox itself fails" },
  "unshare-all": {
    type: "boolean",
    section: COMPAT,
    aliases: ["unshare-user", "unshare-user-try", "unshare-pid", "unshare-ipc", "unshare-uts", "unshare-cgroup", "unshare-cgroup-try", "unshare-net"],
    description: "Every namespace is unshared (user, pid, mount, net, uts, ipc, cgroup); also --unshare-user, -pid, -ipc, -uts, -cgroup, -net",
  },
  "die-with-parent": { type: "boolean", section: COMPAT, description: "The sandbox dies with bunbox (a parent-death signal on its init)" },
  "new-session": { type: "boolean", section: COMPAT, description: "The sandboxee leads a session of its own (setsid)" },
} as const satisfies Options;

// Not learn's: audit (every call is let through already) and the terminal (a learning run keeps bunbox's std fds).
const { audit: _audit, tty: _tty, "no-tty": _noTty, ...RUN_SANDBOX_ARGS } = RUN_ARGS;
const LEARN = "Learning";

/**
 * `bunbox learn`'s: the sandbox of the learning run is described as for
 * `bunbox run` (but for the two above), then what to write
 * (src/cli/learn.ts).
 */
export const LEARN_ARGS = {
  ...RUN_SANDBOX_ARGS,
  output: { type: "string", section: LEARN, alias: "o", complete: "file", description: "Write the learned policy to FILE, replacing it (default: the --merge file; not -: stdout is the command's)", valueHint: "FILE" },
  merge: { type: "string", section: LEARN, repeatable: true, complete: "file", description: "Add to a policy bunbox learn wrote: its runs and this one (repeatable)", valueHint: "FILE" },
  verify: { type: "boolean", section: LEARN, description: "Run the command again under the learned policy; fail (exit 3) if it does not run as it did" },
  format: { type: "enum", section: LEARN, options: ["json", "ts"], description: "json (default; a .ts FILE: ts) or ts: a PolicyBuilder module", valueHint: "FORMAT" },
  "on-refusal": { type: "enum", section: LEARN, options: ["kill", "errno"], description: "What a call outside the learned policy gets: kill (default: a violation) or errno (EPERM, listed)", valueHint: "MODE" },
  filesystem: { type: "enum", section: LEARN, options: ["learned", "default"], description: "learned (default): an empty root with what the run used; default: the default view", valueHint: "MODE" },
} as const satisfies Options;
