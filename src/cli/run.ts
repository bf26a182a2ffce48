/**
 * `bunbox run [OPTIONS] -- COMMAND [ARG...]`
 *
 * Precedence: the policy comes from --policy FILE, else --profile NAME, else
 * the `default` profile; the filesystem options (src/cli/mounts.ts) add to
 * its filesystem (a later mount on the same destination replaces an earlier
 * one), and --net,
 * --hostname, --uid and --gid override it. Limits come from the options,
 * else Sandbox2's defaults (src/sandbox/limits.ts), but for the wall time:
 * none when stdin is a terminal (someone is typing there), unless given.
 *
 * stdin, stdout and stderr are the sandboxee's, or its own terminal's when
 * one of them is a terminal (src/cli/tty.ts); bunbox writes only to stderr:
 * one line when the run did not end OK (nothing with -q), the Result as
 * JSON with --json. The exit code is the sandboxee's, or README.md's "Exit
 * codes" for the rest. The signals a supervisor passes on (FORWARDED) go to
 * the sandboxee's process group through its init.
 */
import { closeSync, existsSync, openSync, statSync, writeFileSync } from "../native/fs.ts";
import type { ContainmentPlan, LimitNames } from "../containment/containment.ts";
import { BunboxError, UsageError } from "../errors.ts";
import { SIGNALS } from "../native/signals.ts";
import { preloadShim } from "../native/library.ts";
import { spawnOnCallingThread } from "../native/spawn.ts";
import { isProxyMode, type Policy } from "../policy/policy.ts";
import { profilePolicy } from "../policy/precompiled.ts";
import { Executor } from "../sandbox/executor.ts";
import { checkAddressSpace, checkCpus, checkMemory, checkOpenFiles, checkProcesses, DEFAULT_LIMITS, Limits } from "../sandbox/limits.ts";
import { checkDestination } from "../sandbox/mounts.ts";
import { Sandbox } from "../sandbox/sandbox.ts";
import { formatSize, parseCount, parseDuration, parseSize } from "../sandbox/units.ts";
import { jsonText, visible } from "../sandbox/visible.ts";
import type { Parsed } from "./args.ts";
import { log, setVerbosity, writeAll } from "./log.ts";
import { type PolicySource, resultHints } from "./result-hints.ts";
import { networkChanges } from "./network.ts";
import { applyMountOptions } from "./mounts.ts";
import type { RUN_ARGS } from "./options.ts";
import { buildEnv } from "./env.ts";
import { planTerminal, type TerminalPlan, TerminalRelay, terminalOptions } from "./tty.ts";
import { isTerminal as isatty } from "../native/tty.ts";
import type { Result } from "../sandbox/result.ts";

type RunOptions = Parsed<typeof RUN_ARGS>;
/** What -v and the reporting read of the options (`bunbox oci run` has these too). */
export type RunReporting = {
  flags: Pick<RunOptions["flags"], "quiet" | "verbose" | "json" | "no-tty"> & Partial<Pick<RunOptions["flags"], "allow-weaker-limits">>;
  strings: Pick<RunOptions["strings"], "result-file" | "time-limit">;
  /** What the limits are called in messages (default: bunbox run's options). */
  limitNames?: LimitNames;
};

/** The limits as this command line names them, in messages. */
export const LIMIT_NAMES: LimitNames = { memory: "--memory-limit", cpus: "--cpus", weaker: "--allow-weaker-limits" };

/**
 * How long the JavaScript thread may block right after the spawn, waiting
 * for the sandbox to end (src/native/spawn.ts spawnOnCallingThread): a
 * command that ends sooner is over without a reactor thread. The signals
 * bunbox forwards wait as long at most, and the wall-time limit: the wait
 * is never longer than the limit. None when a terminal is relayed or a
 * proxy serves the sandbox: they start once the monitor does.
 */
const FIRST_WAIT_MS = 50;

const netModule = () => require("../net/network.ts") as typeof import("../net/network.ts");

function idOption(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  const n = parseCount(text, option);
  if (n > 0xfffffffe) throw new UsageError(option, `${n} is not a valid id`);
  return n;
}

export async function resolvePolicy(o: RunOptions): Promise<Policy> {
  // Before the options' own checks: `--symlink /t /l` is bwrap's spelling before it is a value without ":".
  if (o.tailAfter && o.tail[0] !== undefined) checkNotASecondValue(o.tail[0], ...o.tailAfter);
  const { policy: file, profile } = o.strings;
  if (file !== undefined && profile !== undefined) {
    throw new UsageError("--policy", "give --policy or --profile, not both (a policy file can name a profile)");
  }
  const base = file !== undefined
    ? await (await import("../policy/file.ts")).loadPolicyFile(file)
    : profilePolicy(profile ?? "default", process.cwd());

  const plan = base.mountPlan();
  const hostMounts = applyMountOptions(plan, o);
  if (o.flags["share-net"] && o.strings.net !== undefined && o.strings.net !== "host") {
    throw new UsageError("--share-net", `is --net host; not with --net ${o.strings.net}`);
  }
  const net = networkChanges(
    { net: o.flags["share-net"] ? "host" : o.strings.net, allow: o.lists["allow-host"], deny: o.lists["deny-host"], addHosts: o.lists["add-host"] },
    base,
  );
  const hostname = o.strings.hostname;
  if (hostname !== undefined && !/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(hostname)) {
    throw new UsageError("--hostname", `"${hostname}" is not a hostname (letters, digits, . and -, at most 63)`);
  }
  return base.derive({
    mounts: plan,
    hostMounts: new Set([...base.hostMounts, ...hostMounts]),
    ...net,
    ...(hostname !== undefined ? { hostname } : {}),
    ...(o.strings.uid !== undefined ? { uid: idOption(o.strings.uid, "--uid") } : {}),
    ...(o.strings.gid !== undefined ? { gid: idOption(o.strings.gid, "--gid") } : {}),
    ...(o.flags.audit ? { audit: true } : {}),
  });
}

function addressSpaceLimit(text: string): number {
  return checkAddressSpace(parseSize(text, "--address-space-limit"), "--address-space-limit", text);
}

function memoryLimit(text: string): number {
  return checkMemory(parseSize(text, "--memory-limit"), "--memory-limit", text);
}

function cpus(text: string): number {
  const n = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : NaN;
  if (!(n > 0)) throw new UsageError("--cpus", `"${text}" is not a number of CPUs above 0 (examples: 1, 0.5, 2.5)`);
  return checkCpus(n, "--cpus");
}

function openFiles(text: string): number {
  return checkOpenFiles(parseCount(text, "--max-files"), "--max-files");
}

function maxConnections(text: string): number {
  const n = parseCount(text, "--max-connections");
  if (n < 1 || n > 65536) throw new UsageError("--max-connections", `${n} is not in 1..65536`);
  return n;
}

/** An interactive run (stdin is a terminal) has no wall-time limit unless one is given. */
function interactive(): boolean {
  return isatty(0);
}

export function buildExecutor(o: RunOptions, policy: Policy, terminal: TerminalPlan | undefined): Executor {
  const [cmd, ...rest] = o.tail;
  if (cmd === undefined) throw new UsageError("run", "no command given: bunbox run [OPTIONS] -- COMMAND [ARG...]");
  checkNotAVolume(cmd);
  const s = o.strings;
  if (s.cwd !== undefined) checkDestination(s.cwd, "--cwd");
  const chosenCwd = s.cwd ?? policy.workdir;
  const env = buildEnv({
    keep: o.lists["keep-env"],
    files: o.lists["env-file"],
    set: o.lists.env,
    unset: o.lists.unsetenv,
    cwd: chosenCwd,
    terminal: terminal !== undefined,
  });
  const limits = new Limits({
    wallTimeMs: s["time-limit"] !== undefined ? parseDuration(s["time-limit"], "--time-limit") : interactive() ? 0 : DEFAULT_LIMITS.wallTimeMs,
    ...(s["cpu-limit"] !== undefined ? { cpuSeconds: parseDuration(s["cpu-limit"], "--cpu-limit") / 1000 } : {}),
    ...(s["memory-limit"] !== undefined ? { memory: memoryLimit(s["memory-limit"]) } : {}),
    ...(s.cpus !== undefined ? { cpus: cpus(s.cpus) } : {}),
    ...(s["address-space-limit"] !== undefined ? { addressSpace: addressSpaceLimit(s["address-space-limit"]) } : {}),
    ...(s["max-procs"] !== undefined ? { processes: checkProcesses(parseCount(s["max-procs"], "--max-procs"), "--max-procs") } : {}),
    ...(s["max-files"] !== undefined ? { openFiles: openFiles(s["max-files"]) } : {}),
    ...(s["max-file-size"] !== undefined ? { fileSize: parseSize(s["max-file-size"], "--max-file-size") } : {}),
    ...(s["max-connections"] !== undefined ? { net: { maxConcurrent: maxConnections(s["max-connections"]) } } : {}),
  });
  return new Executor(cmd, [cmd, ...rest], { env, cwd: chosenCwd ?? "/", limits, ...(terminal ? { tty: terminalOptions(terminal) } : {}) });
}

/** Every relaxation of the run: the policy's, and the command line's own (weaker limits among them). */
function relaxationsOf(o: RunReporting, policy: Policy, contained: ContainmentPlan | undefined): string[] {
  return [
    ...policy.relaxations,
    ...(contained?.weakened ?? []),
    ...(o.flags["no-tty"] ? ["--no-tty: the sandboxee gets bunbox's own std fds, a terminal among them (it can change its modes)"] : []),
  ];
}

/** -v: what the run gets. Paths and names may be a hostile caller's: each is made visible. */
function describe(o: RunReporting, policy: Policy, executor: Executor, contained: ContainmentPlan | undefined): void {
  const l = executor.limits;
  const t = executor.tty;
  const refusal = policy.onRefusal === "errno" ? "refusals fail with EPERM/ENOSYS and are listed (onRefusal errno)" : `default ${policy.defaultAction.kind}`;
  log.debug(`policy: ${visible(policy.origin)} (${policy.arch.name}, ${policy.rules.size} syscalls with rules, ${refusal})`);
  log.debug(`network: ${policy.net}; hostname: ${visible(policy.hostname)}; cwd: ${visible(executor.cwd)}`);
  if (policy.network) log.debug(`network rules:\n${policy.network.describe().map((l) => `  ${visible(l)}`).join("\n")}`);
  log.debug(`mounts:\n${policy.mountPlan().describe().map(visible).join("\n")}`);
  log.debug(
    `terminal: ${t ? `its own (std fds ${t.stdio.join(", ")}${t.cols ? `, ${t.cols}x${t.rows}` : ""})` : o.flags["no-tty"] ? "bunbox's (--no-tty)" : "none (no std fd is a terminal)"}`,
  );
  const why = o.strings["time-limit"] !== undefined ? "--time-limit" : interactive() ? "none by default: stdin is a terminal" : "the default for a run whose stdin is not a terminal";
  log.debug(`wall-time limit: ${l.wallTimeMs ? `${l.wallTimeMs / 1000} s` : "none"} (${why})`);
  log.debug(
    `limits: cpu ${l.cpuSeconds || "none"}s per process, memory ${formatSize(l.memory)}, cpus ${l.cpus || "unlimited"}, ` +
      `procs ${l.processes}, address space ${formatSize(l.addressSpace)}, files ${l.openFiles}, file size ${formatSize(l.fileSize)}`,
  );
  if (contained) {
    log.debug(contained.cgroup ? `cgroup: v${contained.cgroup.version}, under ${visible(contained.cgroup.where)}` : `cgroup: none (${visible(contained.noCgroup ?? "")})`);
    for (const [name, e] of Object.entries(contained.limits)) {
      if (e) log.debug(`  ${name} ${name === "processes" || name === "cpus" ? e.value : formatSize(e.value)}: ${e.by}`);
    }
  }
  const relaxations = relaxationsOf(o, policy, contained);
  if (relaxations.length === 0) log.debug("relaxations: none");
  for (const r of relaxations) log.debug(`relaxation: ${visible(r)}`);
}

/**
 * Opened before the run, so that a path that cannot be written is a usage
 * error before anything starts, not after the command has run.
 */
function openResultFile(path: string): number {
  try {
    return openSync(path, "w", 0o644);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError("--result-file", `${path}: cannot be written (${code})`);
  }
}

/**
 * The signals bunbox passes on to the sandboxee, as a supervisor should
 * (README.md, "Signals"); SIGWINCH reaches it through its terminal.
 */
export const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGCONT"] as const;

/**
 * A SIGTERM, or a SIGHUP that came with the caller's terminal hung up, means
 * the run is over (a supervisor stopping it; nobody left to type): a sandbox
 * still running this long after is killed, as `docker stop` does after its
 * grace. Without it, a sandboxee that ignores them (an interactive bash
 * ignores SIGTERM) would keep bunbox and itself alive for good where no
 * wall-time limit applies (stdin a terminal), unattended once the terminal
 * is gone. A SIGHUP with the terminal still there (or none) is only passed
 * on: a daemon's "reload".
 */
export const STOP_GRACE_S = 10;

/** `fn`, with the FORWARDED signals to bunbox passed on to the sandboxee meanwhile (and STOP_GRACE_S after a stop, a kill). */
export async function forwardingSignals<T>(sandbox: { signal(sig: number): void; kill(reason: string): void }, fn: () => Promise<T>): Promise<T> {
  // A hung-up terminal answers no terminal ioctl (EIO): isatty turns false.
  const terminals = [0, 1, 2].filter((fd) => isatty(fd));
  const hungUp = () => terminals.length > 0 && !terminals.some((fd) => isatty(fd));
  let grace: ReturnType<typeof setTimeout> | undefined;
  const handlers = FORWARDED.map((name) => [name, () => {
    sandbox.signal(SIGNALS[name]!);
    if (name === "SIGTERM" || (name === "SIGHUP" && hungUp())) {
      const why = name === "SIGTERM" ? "SIGTERM" : "SIGHUP (its terminal hung up)";
      grace ??= setTimeout(() => sandbox.kill(`still running ${STOP_GRACE_S} s after bunbox got ${why}`), STOP_GRACE_S * 1000);
    }
  }] as const);
  for (const [n, h] of handlers) process.on(n, h);
  try {
    return await fn();
  } finally {
    clearTimeout(grace);
    for (const [n, h] of handlers) process.off(n, h);
  }
}

/** Where the run's policy came from, for the change a violation needs. */
function policySource(policy: Policy): PolicySource {
  // "profile default" for a profile; a file's path, with " (profile NAME)" when it names one.
  const profile = /^profile (\S+)$/.exec(policy.origin)?.[1];
  return profile !== undefined ? { profile } : { file: policy.origin.replace(/ \(profile [^)]*\)$/, "") };
}

/** `-v /a:/b cmd` as docker means it: here -v is --verbose and "/a:/b" became the command. */
const VOLUME_LIKE = /^[^:\s]*\/[^:\s]*:\/[^:\s]*(:[a-zA-Z,]+)?$/;

/**
 * Refused before anything starts: a command that looks like SRC:DST and is
 * no file on the host (one bound into the sandbox under such a name is a
 * stretch; its absolute path in the sandbox still runs it).
 */
function checkNotAVolume(cmd: string): void {
  if (!VOLUME_LIKE.test(cmd) || existsSync(cmd)) return;
  const [src, dst, mode] = cmd.split(":");
  throw new UsageError(
    "run",
    `"${cmd}" is not a command: -v is --verbose here, not docker's --volume; bind it with ${mode?.split(",").includes("ro") ? "--ro" : "--rw"} ${src}:${dst}`,
  );
}

/** bunbox's one-value spellings of bwrap's two-value options: the ones whose DST may be left out, and the ones that need it. */
const ONE_VALUE = new Map([
  ["--ro", false],
  ["--rw", false],
  ["--ro-try", false],
  ["--rw-try", false],
  ["--bind-try", false],
  ["--symlink", true],
  ["--file", true],
]);

/**
 * `--bind-try /a /b -- cmd`, `--symlink target /link`: bwrap's two values,
 * of which the second became the command (with DST optional, /a would be
 * bound on /a and "/b" run). Refused before anything starts when the value
 * has no ":" and the "command" is an absolute path that is not a file on
 * the host (nor, for the options that need a DST, whatever it is); `--`
 * before the command says it is one.
 */
function checkNotASecondValue(cmd: string, option: string, value: string): void {
  const needsDst = ONE_VALUE.get(option);
  if (needsDst === undefined || value.includes(":") || !cmd.startsWith("/")) return;
  if (!needsDst && existsSync(cmd) && statSync(cmd).isFile()) return;
  throw new UsageError(
    option,
    `takes one value, ${option === "--symlink" ? "TARGET" : "SRC"}:DST: bwrap's ${option} ${value} ${cmd} is ${option} ${value}:${cmd} here (or put -- before the command, if "${cmd}" is one)`,
  );
}

/**
 * How the run ended, on stderr: nothing for OK, nor (but with -v) for a
 * SIGPIPE death, the shell's normal case; then the change a violation needs
 * and the calls refused without ending the run (src/cli/result-hints.ts).
 */
function report(o: RunReporting, result: Result, policy: Policy): void {
  // A failure of bunbox itself is an error even with -q; how the command
  // ended is a plain line, which -q silences.
  const own = result.status === "INTERNAL_ERROR" ||
    (result.status === "SETUP_ERROR" && result.setup?.stage !== "lookup" && result.setup?.stage !== "exec");
  const hints = resultHints(result, policySource(policy), !!o.flags.verbose);
  if (own) log.error(result.toString());
  else if (result.status === "SIGNALED" && result.signal === SIGNALS.SIGPIPE) log.debug(result.toString());
  else if (result.status !== "OK" || result.limitHit) log.log([result.toString(), ...hints].join("\n"));
  if (!own && result.status === "OK" && !result.limitHit && hints.length) log.log(hints.join("\n"));
}

export async function runCommandLine(o: RunOptions): Promise<number> {
  const t0 = performance.now();
  setVerbosity(o.flags.quiet ? "quiet" : o.flags.verbose ? "verbose" : "normal");
  if (o.flags.tty && o.flags["no-tty"]) throw new UsageError("--tty", "give --tty or --no-tty, not both");
  // Read through Bun.file() now, not through node:fs at its first use (README.md, "Start-up").
  await preloadShim();
  const policy = await resolvePolicy(o);
  const terminal = planTerminal(o.flags.tty ? "tty" : o.flags["no-tty"] ? "no-tty" : "auto");
  const executor = buildExecutor(o, policy, terminal);
  if (o.strings["max-connections"] !== undefined && !policy.network) {
    throw new UsageError("--max-connections", "limits the proxy's connections: it goes with --net proxy (or --allow-host)");
  }
  return runPrepared(o, policy, executor, terminal, t0);
}

/** Runs a policy and executor made from the command line (`bunbox run`, `bunbox oci run`); returns the exit code. */
export async function runPrepared(
  o: RunReporting,
  policy: Policy,
  executor: Executor,
  terminal: TerminalPlan | undefined,
  t0 = performance.now(),
): Promise<number> {
  setVerbosity(o.flags.quiet ? "quiet" : o.flags.verbose ? "verbose" : "normal");
  const tPolicy = performance.now();
  const relay = terminal ? new TerminalRelay(terminal) : undefined;
  // One sandbox in this process: set up on this thread (no spawner threads).
  // No first wait where the sandboxee needs bunbox at once: a terminal to
  // relay, a proxy to serve (both start with the monitor).
  const needsUs = terminal !== undefined || isProxyMode(policy.net);
  spawnOnCallingThread(needsUs ? 0 : Math.min(FIRST_WAIT_MS, executor.limits.wallTimeMs || FIRST_WAIT_MS));
  const sandbox = new Sandbox(
    executor,
    policy,
    {
      // Before the sandboxee's first output can fill its pty: as soon as it runs.
      onStart: () => {
        if (relay && sandbox.terminal !== undefined) relay.start(sandbox.terminal);
        // The set-up, code that runs once, is over: the JIT as usual for what
        // watches a long run (the executable starts with it held back:
        // scripts/build.ts). A Bun before 1.4 (from source) has no such call.
        Bun.unsafe.setJITPolicy?.(1);
      },
      // The proxy's code is read only by a run that has one (README.md, "Start-up").
      ...(o.flags.verbose ? { onNetwork: (e) => log.debug(visible(netModule().formatNetworkEvent(e))) } : {}),
    },
    { allowWeakerLimits: o.flags["allow-weaker-limits"] ?? false },
  );
  // A limit no cgroup can enforce is a usage error naming its option, before anything starts.
  const contained = sandbox.containmentPlan(o.limitNames ?? LIMIT_NAMES);
  if (o.flags.verbose) describe(o, policy, executor, contained);
  const resultFile = o.strings["result-file"] !== undefined ? openResultFile(o.strings["result-file"]) : undefined;

  let result;
  try {
    result = await forwardingSignals(sandbox, () => sandbox.run());
  } finally {
    await relay?.finish();
  }
  if (o.flags.verbose) {
    const ms = (x: number) => `${x.toFixed(1)} ms`;
    log.debug(
      `timing: bunbox started ${ms(t0)} after exec; policy and executor ${ms(tPolicy - t0)}; ` +
        `spawn ${ms(sandbox.spawnMs ?? 0)} (with the first wait for its end, at most ${FIRST_WAIT_MS} ms); run ${ms(result.wallTimeMs)}; ` +
        `total ${ms(performance.now())}`,
    );
    const phases = sandbox.spawnPhasesMs;
    if (phases) {
      // Where the kernel's part of the set-up went: ms since the clone at the end of each phase.
      const steps = Object.entries(phases).filter(([, t]) => t > 0).map(([name, t]) => `${name} ${t.toFixed(2)}`);
      log.debug(`set-up (ms since the clone, at the end of each phase): ${steps.join(", ")}`);
    }
  }
  report(o, result, policy);
  // The Result, and the relaxations it ran under (as -v lists them).
  const json = { ...result.toJSON(), relaxations: relaxationsOf(o, policy, contained) };
  if (o.flags.json) writeAll(2, `${jsonText(json)}\n`);
  if (resultFile !== undefined) {
    try {
      writeFileSync(resultFile, `${jsonText(json, 2)}\n`);
    } catch (e) {
      throw new BunboxError("result-file", `--result-file ${o.strings["result-file"]}: cannot write the Result (${(e as NodeJS.ErrnoException).code})`);
    } finally {
      closeSync(resultFile);
    }
  }
  return result.code;
}
