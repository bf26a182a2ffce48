/**
 * Sandbox: an executor and a policy, run and monitored.
 *
 *   const result = await new Sandbox(executor, policy).run();
 *
 *   const s = new Sandbox(executor, policy, { onViolation: (v) => log(v) });
 *   s.runAsync();            // returns at once
 *   …                        // talk to it, s.kill() if needed
 *   const result = await s.awaitResult({ timeoutMs: 5000 });
 *
 * runAsync() queues the run; the queue builds requests for at most
 * SPAWN_SLICE_MS per turn of the event loop, so that hundreds of runAsync()
 * calls in a row never freeze timers and I/O, and the shim's spawner threads
 * set the sandboxes up (~3 ms each, mostly waiting for the kernel) while the
 * event loop goes on.
 */
import { Comms } from "../comms/comms.ts";
import { BunboxError, UsageError } from "../errors.ts";
import { after } from "../timer.ts";
import { discard, isFailure, type SetupFailure, type Spawned, spawnAsync } from "../native/spawn.ts";
import { closeFd, pidfdPid } from "../native/sys.ts";
import type { Insn } from "../policy/bpf.ts";
import { withMagic } from "../policy/compiler.ts";
import type { Policy } from "../policy/policy.ts";
import { Monitor, type MonitorHooks, type MonitorOptions } from "../monitor/monitor.ts";
import { type ForkServer, forkChildPolicy } from "./fork-server.ts";
import { ME_HERE_STAGE, sandboxMeHereHandshake } from "./sandbox-me-here.ts";
import type { Executor } from "./executor.ts";
import { buildRequest } from "./request.ts";
import { Result } from "./result.ts";

export interface SandboxHooks extends MonitorHooks {
  /** Called once the sandboxee runs; returning false kills it (SETUP_ERROR). */
  onStart?(pid: number): boolean | void;
  onExit?(result: Result): void;
}

export interface RunOptions {
  /** Route violations through seccomp user notification (default: yes). */
  notify?: boolean;
  /** Internal: this run is a fork server (no filter, no handshake). */
  forkServer?: boolean;
}

const SPAWN_SLICE_MS = 8;

/** A spawn that failed for want of fds is tried again for this long. */
const SCARCE_WAIT_MS = 10_000;

/**
 * Out of fds (each run in flight holds ~3): runs in flight will free some.
 * Not out of processes (EAGAIN from clone): a process at its RLIMIT_NPROC
 * cannot start threads either, and Bun aborts when it cannot (seen here),
 * so such a run fails at once and frees the pressure.
 */
function scarce(f: SetupFailure): boolean {
  return f.errnoName === "EMFILE" || f.errnoName === "ENFILE";
}

/** Why seccomp user notification cannot be used here, once a spawn found out. */
let notifyUnavailable: string | undefined;

/**
 * Whether a setup failure means the kernel lacks user notification (before
 * Linux 5.0 seccomp refuses the listener flag; before 5.6 pidfd_getfd is
 * missing), and if so, the words for the Result.
 */
export function notifyMissing(f: SetupFailure): string | undefined {
  if (f.stage === "seccomp" && f.detail === "with user notification" && (f.errnoName === "EINVAL" || f.errnoName === "EOPNOTSUPP")) {
    return "this kernel has no seccomp user notification (Linux 5.0+)";
  }
  if (f.stage === "notify" && f.errnoName === "ENOSYS") {
    return "this kernel has no pidfd_getfd (Linux 5.6+) to take the seccomp listener";
  }
  return undefined;
}
const queue: Sandbox[] = [];
let draining = false;

function drain(): void {
  const start = performance.now();
  while (queue.length > 0 && performance.now() - start < SPAWN_SLICE_MS) {
    const s = queue.shift()!;
    // One run's failure must not stall the queue for every later run.
    s["start"]().catch((e: unknown) => s["crashed"](e));
  }
  if (queue.length > 0) setImmediate(drain);
  else draining = false;
}

export class Sandbox {
  private monitor: Monitor | undefined;
  private resultPromise: Promise<Result> | undefined;
  private settle!: (r: Result) => void;
  private killedBeforeStart = false;
  /** Signals sent while the sandbox was being set up, delivered once it runs. */
  private pendingSignals: number[] = [];
  private queuedAt = 0;
  private childComms: Comms | undefined;
  /** How long the shim's spawn took (ms), and its phases, for `bunbox run -v`. */
  spawnMs: number | undefined;
  spawnPhasesMs: Spawned["phasesMs"];
  private readyResolve!: () => void;
  private readyReject!: (e: Error) => void;
  private readyPromise!: Promise<void>;

  constructor(
    readonly executor: Executor,
    readonly policy: Policy,
    readonly hooks: SandboxHooks = {},
    readonly options: RunOptions = {},
  ) {}

  /** Starts the run; returns at once. A second call is an error. */
  runAsync(): void {
    if (this.resultPromise) throw new BunboxError("sandbox", "this Sandbox has already been started");
    if (!this.executor.sandboxBeforeExec && this.options.notify === false) {
      // Without a listener the program would get the ALLOW-on-magic filter, and its magic.
      throw new UsageError("notify", "sandbox me here needs seccomp user notification; notify: false is not possible");
    }
    this.readyPromise = new Promise<void>((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.readyPromise.catch(() => {});
    this.resultPromise = new Promise<Result>((r) => (this.settle = r)).then((r) => {
      this.readyReject(new BunboxError("sandbox", `the run ended before it was ready: ${r.toString()}`));
      try {
        this.hooks.onExit?.(r);
      } catch {
        // a hook's error must not lose the Result
      }
      return r;
    });
    this.queuedAt = performance.now();
    queue.push(this);
    if (!draining) {
      draining = true;
      setImmediate(drain);
    }
  }

  /** The Result; with timeoutMs, rejects if the run is still going by then. */
  awaitResult(opts: { timeoutMs?: number } = {}): Promise<Result> {
    if (!this.resultPromise) throw new BunboxError("sandbox", "awaitResult() before runAsync()");
    if (opts.timeoutMs === undefined) return this.resultPromise;
    return new Promise((resolve, reject) => {
      const cancel = after(opts.timeoutMs!, () => reject(new BunboxError("sandbox", `no Result within ${opts.timeoutMs} ms`)));
      this.resultPromise!.then((r) => {
        cancel();
        resolve(r);
      });
    });
  }

  /** runAsync() then awaitResult(). */
  run(): Promise<Result> {
    this.runAsync();
    return this.awaitResult();
  }

  /** Kills the whole sandbox; its Result is EXTERNAL_KILL. */
  kill(): void {
    if (this.monitor) this.monitor.kill();
    else this.killedBeforeStart = true;
  }

  /** Sends `sig` to the sandboxee (through its init). */
  signal(sig: number): void {
    if (this.monitor) this.monitor.signal(sig);
    else this.pendingSignals.push(sig);
  }

  /** The sandboxee's pid as bunbox sees it, once started. */
  get pid(): number | undefined {
    const s = this.monitor?.spawned;
    return s ? (s.sandboxeePid > 0 ? s.sandboxeePid : s.pid) : undefined;
  }

  /**
   * Resolves once the sandboxee runs under its policy: at once after the
   * spawn; after the handshake in sandbox-me-here mode; after the fork in
   * fork-server mode. Rejects if the run ended first.
   */
  ready(): Promise<void> {
    if (!this.resultPromise) throw new BunboxError("sandbox", "ready() before runAsync()");
    return this.readyPromise;
  }

  /** The comms channel to the sandboxee (a fork-server child's own, once forked). */
  get comms(): Comms | undefined {
    return this.childComms ?? this.executor.ipc.channel;
  }

  private async start(): Promise<void> {
    if (this.killedBeforeStart) {
      this.executor.ipc.closePeerEnds();
      this.finishEarly(new Result({ status: "EXTERNAL_KILL", reason: "killed before it started", wallTimeMs: 0 }));
      return;
    }
    const server = (this.executor as { forkServer?: ForkServer }).forkServer;
    if (server) {
      return this.startForked(server);
    }
    const meHere = !this.executor.sandboxBeforeExec && !this.options.forkServer;
    // Violations reach the monitor through seccomp user notification unless
    // asked otherwise, or unless this kernel turned out not to have it: then
    // they kill the process (SIGSYS) and the Result says what is missing.
    const canFallBack = this.options.notify === undefined && !meHere && !this.policy.usesTrace();
    let notify = this.options.notify ?? !(canFallBack && (notifyUnavailable || process.env.BUNBOX_NOTIFY === "off"));
    if (meHere) this.executor.ipc.comms();
    let request;
    let spawned;
    const t0 = performance.now();
    let waitMs = 5;
    for (;;) {
      try {
        request = buildRequest(this.executor, this.policy, { notify, noSeccomp: meHere || !!this.options.forkServer });
      } catch (e) {
        this.executor.ipc.closePeerEnds();
        this.finishEarly(new Result({ status: "INTERNAL_ERROR", reason: (e as Error).message, wallTimeMs: 0 }));
        return;
      }
      spawned = await spawnAsync(request.bytes);
      // Rather than fail a run that could start a moment later, wait for
      // runs in flight to end and free what this one lacks.
      if (isFailure(spawned) && scarce(spawned) && !this.killedBeforeStart) {
        if (performance.now() - t0 < SCARCE_WAIT_MS) {
          await new Promise((r) => setTimeout(r, waitMs));
          waitMs = Math.min(waitMs * 2, 100);
          continue;
        }
        spawned.message += ` (after waiting ${SCARCE_WAIT_MS / 1000} s for runs in flight to free some)`;
      }
      const missing = isFailure(spawned) && notify && canFallBack ? notifyMissing(spawned) : undefined;
      if (!missing || this.killedBeforeStart) break;
      notifyUnavailable = missing;
      notify = false;
    }
    this.spawnMs = performance.now() - t0;
    if (!isFailure(spawned)) this.spawnPhasesMs = spawned.phasesMs;
    this.executor.ipc.closePeerEnds();
    if (isFailure(spawned)) {
      this.finishEarly(Result.setupError(spawned, performance.now() - this.queuedAt));
      return;
    }
    const filter = withMagic(this.policy.filter(notify), request.magic);
    try {
      if (!this.watch(spawned, filter, notify, meHere ? { pendingStage: ME_HERE_STAGE } : {})) return;
    } catch (e) {
      if (!this.monitor) discard(spawned); // unwatched, it must not run
      throw e;
    }
    if (meHere) {
      const limit = this.executor.limits.wallTimeMs || 10_000;
      sandboxMeHereHandshake(this.executor.ipc.channel!, spawned.sandboxeePidfd, filter, request.magic, limit).then(
        ({ listener, theirFd }) => this.monitor!.attachListener(listener, theirFd, request.magic, () => this.readyResolve()),
        (e: Error) => this.monitor!.abort(ME_HERE_STAGE, `sandbox me here: ${e.message}`),
      );
    } else {
      this.readyResolve();
    }
  }

  private async startForked(server: ForkServer): Promise<void> {
    const filter = forkChildPolicy(this.policy).filter(true);
    let forked;
    try {
      forked = await server.fork(filter, this.executor.limits);
    } catch (e) {
      const message = (e as Error).message;
      this.finishEarly(Result.setupError({ stage: "fork", errno: 0, errnoName: "", detail: "", message }, performance.now() - this.queuedAt));
      return;
    }
    this.childComms = new Comms(forked.commsFd);
    const spawned: Spawned = {
      pidfd: forked.pidfd,
      pid: pidfdPid(forked.pidfd),
      listener: -1,
      report: -1,
      sandboxeePid: forked.pid,
      sandboxeePidfd: -1,
    };
    let live;
    try {
      live = this.watch(spawned, withMagic(filter, forked.magic), true, {
        exitReport: () => server.exitReport(forked.pid),
        pendingStage: "fork",
      });
    } catch (e) {
      if (!this.monitor) {
        closeFd(forked.listener);
        discard(spawned);
      }
      throw e;
    }
    // The child may have answered just before it ended: keep that for the caller.
    this.monitor!.result.then(() => this.childComms?.finish());
    if (!live) return closeFd(forked.listener); // killed or refused: it dies in its confirming execveat
    // The child waits in its confirming execveat until we watch its listener.
    this.monitor!.attachListener(forked.listener, forked.theirListenerFd, forked.magic, () => this.readyResolve());
  }

  /** Starts the monitor; false if the run is already ending (killed during set-up, refused by onStart). */
  private watch(spawned: Spawned, filter: readonly Insn[], notify: boolean, extra: Partial<MonitorOptions>): boolean {
    const limits = this.executor.limits;
    this.monitor = new Monitor(spawned, {
      wallTimeMs: limits.wallTimeMs,
      graceMs: limits.graceMs,
      cpuSeconds: limits.cpuSeconds,
      filter,
      notify,
      startedAt: this.queuedAt,
      hooks: this.hooks,
      execveatNr: this.policy.arch.syscalls.execveat,
      ...extra,
    });
    this.monitor.result.then(this.settle);
    // A kill() that came while the sandbox was being set up wins over the hook.
    if (this.killedBeforeStart) {
      this.monitor.kill();
      return false;
    }
    if (this.hooks.onStart) {
      let ok: boolean | void = true;
      try {
        ok = this.hooks.onStart(this.pid!);
      } catch {
        ok = false;
      }
      if (ok === false) {
        this.monitor.abort("onStart", "the onStart hook refused the sandboxee");
        return false;
      }
    }
    for (const sig of this.pendingSignals.splice(0)) this.monitor.signal(sig);
    return true;
  }

  private finishEarly(r: Result): void {
    this.settle(r);
  }

  /** start() threw: kill whatever started and end with INTERNAL_ERROR. */
  private crashed(e: unknown): void {
    this.executor.ipc.closePeerEnds();
    if (this.monitor) this.monitor.kill(`bunbox failed while starting the run: ${(e as Error)?.message ?? e}`);
    else this.finishEarly(new Result({ status: "INTERNAL_ERROR", reason: (e as Error)?.message ?? String(e), wallTimeMs: 0 }));
  }
}
