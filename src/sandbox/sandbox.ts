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
 * runAsync() queues the run on its runtime (runtime.ts), which starts runs
 * a slice of time per turn of the event loop, so that hundreds of runAsync()
 * calls in a row never freeze timers and I/O; the shim's spawner threads
 * set the sandboxes up (~3 ms each, mostly waiting for the kernel) while the
 * event loop goes on. How a run starts is its launcher's business
 * (launch/: exec, sandbox me here, fork server), chosen by its executor.
 */
import type { Comms } from "../comms/comms.ts";
import type { ContainmentPlan, LimitNames } from "../containment/containment.ts";
import { BunboxError, UsageError } from "../errors.ts";
import { after } from "../timer.ts";
import { discard, type Spawned } from "../native/spawn.ts";
import { isProxyMode, type Policy } from "../policy/policy.ts";
import { Monitor, type MonitorHooks } from "../monitor/monitor.ts";
import type { DnsEvent } from "../net/dns-stub.ts";
import type { SandboxNetwork } from "../net/network.ts";
import type { NetEvent } from "../net/report.ts";
import type { Executor } from "./executor.ts";
import { ExecLauncher } from "./launch/exec.ts";
import { ForkExecutor, ForkLauncher } from "./launch/fork.ts";
import type { LaunchContext, Launcher, WatchOptions } from "./launch/launcher.ts";
import { MeHereLauncher } from "./launch/me-here.ts";
import { Result } from "./result.ts";
import { defaultRuntime, type Runtime } from "./runtime.ts";

export interface SandboxHooks extends MonitorHooks {
  /** Called once the sandboxee runs; returning false kills it (SETUP_ERROR). */
  onStart?(pid: number): boolean | void;
  onExit?(result: Result): void;
  /** --net proxy: a connection opened or ended, a DNS query answered (`bunbox run -v` prints each). */
  onNetwork?(event: NetEvent | DnsEvent): void;
}

export interface RunOptions {
  /**
   * Route violations through seccomp user notification: true always, false
   * never (a violation kills the process: SIGSYS); by default where the
   * kernel has it, unless the runtime forces the fallback.
   */
  notify?: boolean;
  /** The state this run shares with others (default: the default runtime, runtime.ts). */
  runtime?: Runtime;
  /**
   * Where no cgroup can bound the sandbox, run anyway with weaker limits: the
   * memory limit bounds each process's address space (RLIMIT_AS), the CPU
   * limit is not enforced. Without it such a run is a UsageError. A
   * relaxation: the Result's containment and `bunbox run -v` say what it gave away.
   */
  allowWeakerLimits?: boolean;
  /** Internal: how the run starts, when not as its executor says (a fork server's own run). */
  launcher?: Launcher;
}

/** The launcher for an executor's runs. */
function launcherFor(executor: Executor): Launcher {
  if (executor instanceof ForkExecutor) return new ForkLauncher(executor.server);
  return executor.sandboxBeforeExec ? new ExecLauncher() : new MeHereLauncher();
}

export class Sandbox {
  private readonly runtime: Runtime;
  private readonly launcher: Launcher;
  private monitor: Monitor | undefined;
  private resultPromise: Promise<Result> | undefined;
  private settle!: (r: Result) => void;
  private killedBeforeStart = false;
  /** Signals sent while the sandbox was being set up, delivered once it runs. */
  private pendingSignals: number[] = [];
  private queuedAt = 0;
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
  ) {
    this.runtime = options.runtime ?? defaultRuntime();
    this.launcher = options.launcher ?? launcherFor(executor);
  }

  /**
   * How this run will be contained (its cgroup, how each limit is enforced);
   * a UsageError naming the limit (by `names`) that cannot be enforced. A
   * fork-server child has none of its own: it runs in its server's.
   */
  containmentPlan(names?: LimitNames): ContainmentPlan | undefined {
    if (this.executor instanceof ForkExecutor) return undefined;
    return this.runtime.containment.plan(this.executor.limits, this.options.allowWeakerLimits ?? false, names);
  }

  /** Starts the run; returns at once. A second call is an error. */
  runAsync(): void {
    if (this.resultPromise) throw new BunboxError("sandbox", "this Sandbox has already been started");
    this.launcher.check(this.options.notify);
    const containment = this.containmentPlan();
    if (this.policy.audit && this.options.notify === false) {
      // Without the monitor a refused call would kill: audit mode would silently be enforcement.
      throw new UsageError("notify", "audit mode needs seccomp user notification (notify: false turns it off)");
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
    // One run's failure must not stall the queue for every later run.
    this.runtime.enqueue(() => void this.start(containment).catch((e: unknown) => this.crashed(e)));
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

  /** Kills the whole sandbox; its Result is EXTERNAL_KILL (with `reason`, if given). */
  kill(reason?: string): void {
    if (this.monitor) this.monitor.kill(reason);
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

  /**
   * The master of the sandboxee's terminal (Executor `tty`), once the run
   * started: relay it, and close it once done (after the Result, when the
   * output left in it is read).
   */
  get terminal(): number | undefined {
    const fd = this.monitor?.spawned.ptyMaster;
    return fd !== undefined && fd >= 0 ? fd : undefined;
  }

  /** The comms channel to the sandboxee (a fork-server child's own, once forked). */
  get comms(): Comms | undefined {
    return this.launcher.comms ?? this.executor.ipc.channel;
  }

  private async start(containment: ContainmentPlan | undefined): Promise<void> {
    if (this.killedBeforeStart) {
      this.executor.ipc.closePeerEnds();
      this.settle(new Result({ status: "EXTERNAL_KILL", reason: "killed before it started", wallTimeMs: 0 }));
      return;
    }
    await this.launcher.launch(this.launchContext(containment));
  }

  /** What the launcher sees of this run. */
  private launchContext(containment: ContainmentPlan | undefined): LaunchContext {
    const self = this;
    return {
      executor: this.executor,
      policy: this.policy,
      runtime: this.runtime,
      containment,
      notify: this.options.notify,
      queuedAt: this.queuedAt,
      get killed() {
        return self.killedBeforeStart;
      },
      spawnTook: (ms, phases) => {
        this.spawnMs = ms;
        this.spawnPhasesMs = phases;
      },
      end: (r) => this.settle(r),
      watch: (spawned, options) => this.watch(spawned, options),
      ready: () => this.readyResolve(),
    };
  }

  /** Starts the monitor; not live if the run is already ending (killed during set-up, refused by onStart). */
  private watch(spawned: Spawned, options: WatchOptions): { monitor: Monitor; live: boolean } {
    const limits = this.executor.limits;
    const arch = this.policy.arch;
    const network = this.network(spawned);
    const intercept = network?.intercept;
    // The syscall table is read only where connect() is intercepted (src/policy/arch.ts).
    const connect = intercept ? arch.syscalls.connect : undefined;
    let monitor;
    try {
      monitor = new Monitor(spawned, {
        wallTimeMs: limits.wallTimeMs,
        graceMs: limits.graceMs,
        cpuSeconds: limits.cpuSeconds,
        startedAt: this.queuedAt,
        hooks: this.hooks,
        // A getter: read only where a confirmation is awaited (sandbox me here),
        // so that a run which needs no syscall table reads none (src/policy/arch.ts).
        get execveatNr() {
          return arch.syscalls.execveat;
        },
        audit: this.policy.audit,
        ...(intercept && connect !== undefined ? { intercept: { nr: connect, handle: intercept } } : {}),
        ...options,
      });
    } catch (e) {
      discard(spawned); // unwatched, it must not run
      throw e;
    }
    this.monitor = monitor;
    if (network) {
      try {
        network.serve();
      } catch (e) {
        monitor.abort("network", `cannot serve the sandbox's proxy: ${(e as Error).message}`);
      }
    }
    monitor.result.then(async (r) => {
      if (network) r = await network.close().then((report) => r.with({ network: report }), () => r);
      this.settle(r);
    });
    // A kill() that came while the sandbox was being set up wins over the hook.
    if (this.killedBeforeStart) {
      monitor.kill();
      return { monitor, live: false };
    }
    if (this.hooks.onStart) {
      let ok: boolean | void = true;
      try {
        ok = this.hooks.onStart(this.pid!);
      } catch {
        ok = false;
      }
      if (ok === false) {
        monitor.abort("onStart", "the onStart hook refused the sandboxee");
        return { monitor, live: false };
      }
    }
    for (const sig of this.pendingSignals.splice(0)) monitor.signal(sig);
    return { monitor, live: true };
  }

  /**
   * --net proxy: the sandbox's proxy and DNS stub, for the sockets its
   * spawn bound (docs/network.md); served once the monitor watches, closed
   * once the run ends, with their report in the Result.
   */
  private network(spawned: Spawned): SandboxNetwork | undefined {
    const { net: sockets } = spawned;
    const { network: rules, net: mode } = this.policy;
    // The spawn bound them because the policy is a proxy one (src/sandbox/request.ts).
    if (!sockets || !rules || !isProxyMode(mode)) return undefined;
    const hook = this.hooks.onNetwork;
    // The proxy's code (src/net/), read only by a run that has one (README.md, "Start-up").
    const { SandboxNetwork } = require("../net/network.ts") as typeof import("../net/network.ts");
    return new SandboxNetwork({
      mode,
      sockets,
      policy: rules,
      limits: this.executor.limits.net,
      ...(hook ? { onEvent: (e) => { try { hook(e); } catch { /* a hook's error must not end the network */ } } } : {}),
    });
  }

  /** start() threw: kill whatever started and end with INTERNAL_ERROR. */
  private crashed(e: unknown): void {
    this.executor.ipc.closePeerEnds();
    const message = (e as Error)?.message ?? String(e);
    if (this.monitor) this.monitor.kill(`bunbox failed while starting the run: ${message}`);
    else this.settle(new Result({ status: "INTERNAL_ERROR", reason: message, wallTimeMs: 0 }));
  }
}
