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
 * Spawning is synchronous (~1–4 ms in the shim); runAsync() queues it, and the
 * queue spawns for at most SPAWN_SLICE_MS per turn of the event loop, so that
 * hundreds of runAsync() calls in a row never freeze timers and I/O.
 */
import { BunboxError } from "../errors.ts";
import { isFailure, spawn } from "../native/spawn.ts";
import { withMagic } from "../policy/compiler.ts";
import type { Policy } from "../policy/policy.ts";
import { Monitor, type MonitorHooks } from "../monitor/monitor.ts";
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
}

const SPAWN_SLICE_MS = 8;
const queue: Sandbox[] = [];
let draining = false;

function drain(): void {
  const start = performance.now();
  while (queue.length > 0 && performance.now() - start < SPAWN_SLICE_MS) {
    queue.shift()!["start"]();
  }
  if (queue.length > 0) setImmediate(drain);
  else draining = false;
}

export class Sandbox {
  private monitor: Monitor | undefined;
  private resultPromise: Promise<Result> | undefined;
  private settle!: (r: Result) => void;
  private killedBeforeStart = false;
  private queuedAt = 0;

  constructor(
    readonly executor: Executor,
    readonly policy: Policy,
    readonly hooks: SandboxHooks = {},
    readonly options: RunOptions = {},
  ) {}

  /** Starts the run; returns at once. A second call is an error. */
  runAsync(): void {
    if (this.resultPromise) throw new BunboxError("sandbox", "this Sandbox has already been started");
    this.resultPromise = new Promise<Result>((r) => (this.settle = r)).then((r) => {
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
      const t = setTimeout(
        () => reject(new BunboxError("sandbox", `no Result within ${opts.timeoutMs} ms`)),
        opts.timeoutMs,
      );
      this.resultPromise!.then((r) => {
        clearTimeout(t);
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
    this.monitor?.signal(sig);
  }

  /** The sandboxee's pid as bunbox sees it, once started. */
  get pid(): number | undefined {
    const s = this.monitor?.spawned;
    return s ? (s.sandboxeePid > 0 ? s.sandboxeePid : s.pid) : undefined;
  }

  private start(): void {
    const startedAt = this.queuedAt;
    if (this.killedBeforeStart) {
      this.settle(new Result({ status: "EXTERNAL_KILL", reason: "killed before it started", wallTimeMs: 0 }));
      return;
    }
    const notify = this.options.notify ?? true;
    let request;
    try {
      request = buildRequest(this.executor, this.policy, { notify });
    } catch (e) {
      this.settle(new Result({ status: "INTERNAL_ERROR", reason: (e as Error).message, wallTimeMs: 0 }));
      return;
    }
    const spawned = spawn(request.bytes);
    if (isFailure(spawned)) {
      this.settle(Result.setupError(spawned, performance.now() - startedAt));
      return;
    }
    const limits = this.executor.limits;
    this.monitor = new Monitor(spawned, {
      wallTimeMs: limits.wallTimeMs,
      graceMs: limits.graceMs,
      cpuSeconds: limits.cpuSeconds,
      filter: withMagic(this.policy.filter(notify), request.magic),
      notify,
      startedAt,
      hooks: this.hooks,
    });
    this.monitor.result.then(this.settle);
    if (this.hooks.onStart) {
      let ok: boolean | void = true;
      try {
        ok = this.hooks.onStart(this.pid!);
      } catch {
        ok = false;
      }
      if (ok === false) this.monitor.abort("onStart", "the onStart hook refused the sandboxee");
    }
  }
}
