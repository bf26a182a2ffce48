/**
 * The state that outlives one run, in one object: what a spawn found out
 * about the kernel, the queue that starts runs a slice at a time, and the
 * host's layout for the default mount view. Every Sandbox uses the default
 * runtime unless given another (`new Sandbox(…, { runtime })`), so a test or
 * an embedder can have state of its own that no other run changes.
 *
 *   const runtime = new Runtime({ notifyFallback: true });
 *   await new Sandbox(executor, policy, {}, { runtime }).run();
 *
 * The default runtime is made on first use and reads BUNBOX_NOTIFY then:
 * `off` forces the notify fallback (README.md, Environment).
 *
 * What stays process-wide, and why it cannot be per runtime:
 * - src/native/spawn.ts `inFlight`, `events`: the spawns handed to the shim's
 *   spawner threads and the watch on their eventfd. They mirror the C
 *   spawner's statics (below): one job list and one eventfd per process, so a
 *   second collector would take the first one's jobs.
 * - src/native/reactor.ts `handlers`, `nextToken`, `callback`, `keepAlive`:
 *   the one reactor thread's watches (csrc/monitor.c's epoll set).
 * - src/native/library.ts `lib`, src/comms/libc.ts `lib`, `errnoAt`: the
 *   loaded shim and libc (dlopen is per process).
 * - src/native/sys.ts `devNull`: one fd on /dev/null, never closed, that
 *   every run may hand out.
 * - C statics of the shim (csrc/), all per process:
 *   - csrc/spawner.c `lock`, `more`, `todo`, `done`, `started`, `done_fd`,
 *     `last_id`: the spawner threads' job lists, their eventfd and job ids.
 *     The threads never exit (a child's parent-death signal follows the
 *     thread that cloned it), so there is one pool for the process's life.
 *   - csrc/monitor.c `lock`, `epfd`, `ready`: the reactor thread's epoll
 *     set and its JavaScript callback (the thread is detached and lives as
 *     long as the process); one thread waits for every sandbox so none
 *     blocks another.
 *   - csrc/init_fd.c `init_once`, `init_fd`, `init_err`: the sealed memfd
 *     holding init, made once and exec'd by every spawn (the seals make it
 *     safe to share).
 *   (csrc/init.c's `done` and `report` are init's own, in each sandbox's
 *   pid 1, not in this process.)
 * - src/containment/owner.ts `ns`, `own` and src/containment/cgroup.ts
 *   `seq`: sandbox cgroups are named for the bunbox process that owns them
 *   (its pid namespace, pid, start time) and counted per process, so that a
 *   later bunbox can tell whose a leftover is; two runtimes of one process
 *   share one mark and must never reuse a name.
 * Module-level memos of pure functions of immutable values (launch/fork.ts
 * `forkChildPolicies`, policy/arch.ts `reverse`) change no run's behaviour
 * and stay where they are.
 */
import { Containment } from "../containment/containment.ts";
import { parseUidRange, type UidRange } from "../containment/uids.ts";
import { UsageError } from "../errors.ts";
import type { MountPlan } from "./mounts.ts";

export interface RuntimeOptions {
  /**
   * Never use seccomp user notification where a run could do without it:
   * a violation then kills the process (SIGSYS) and the Result says which
   * detail is missing, as on a kernel without it. For tests and debugging
   * of that fallback: it changes how a violation is reported, never whether
   * it is refused. Runs that need notification keep it (sandbox me here,
   * fork-server children, policies with TRACE rules, `notify: true`).
   */
  notifyFallback?: boolean;
  /**
   * false: sandboxes get no cgroup (no memory or CPU limit, no accounting,
   * no cleanup by cgroup). Default: one each where bunbox can make one
   * (README.md "Containment"); "v1" or "v2": only that version.
   */
  cgroups?: boolean | "v1" | "v2";
  /** The kernel uids of sandboxes started as root, one each (default 2113929216-2113994751; BUNBOX_UID_RANGE). */
  uidRange?: UidRange;
}

/** Runs started per turn of the event loop at most this long (ms), so hundreds of runAsync() never stall timers and I/O. */
const START_SLICE_MS = 8;

export class Runtime {
  readonly notifyFallback: boolean;
  /** Cgroups, kernel uids and user-namespace limits of this runtime's sandboxes. */
  readonly containment: Containment;
  /** Why seccomp user notification is not used, once forced or once a spawn found the kernel without it. */
  private notifyMissing: string | undefined;
  private readonly queue: (() => void)[] = [];
  private draining = false;
  /** The default mount view as the host laid it out, and when (MountPlan.defaultView). */
  defaultView: { at: number; plan: MountPlan } | undefined;

  constructor(options: RuntimeOptions = {}) {
    this.notifyFallback = options.notifyFallback ?? false;
    this.containment = new Containment({
      ...(options.cgroups !== undefined ? { cgroups: options.cgroups } : {}),
      ...(options.uidRange ? { uidRange: options.uidRange } : {}),
    });
    if (this.notifyFallback) this.notifyMissing = "seccomp user notification is turned off (notifyFallback, BUNBOX_NOTIFY=off)";
  }

  /**
   * A runtime set from the environment: BUNBOX_NOTIFY=off forces the notify
   * fallback; BUNBOX_UID_RANGE=FIRST-LAST sets the uid range.
   */
  static fromEnv(env: Record<string, string | undefined> = process.env): Runtime {
    const v = env.BUNBOX_NOTIFY;
    if (v !== undefined && v !== "" && v !== "off") {
      throw new UsageError("BUNBOX_NOTIFY", `"${v}" is not a setting: "off" forces the notify fallback; unset, bunbox uses notification where the kernel has it`);
    }
    const range = env.BUNBOX_UID_RANGE;
    return new Runtime({
      notifyFallback: v === "off",
      ...(range ? { uidRange: parseUidRange(range, "BUNBOX_UID_RANGE") } : {}),
    });
  }

  /** Why runs of this runtime do without user notification where they can; undefined: they use it. */
  get notifyUnavailable(): string | undefined {
    return this.notifyMissing;
  }

  /** A spawn found that this kernel lacks user notification: later runs do without it at once. */
  markNotifyUnavailable(why: string): void {
    this.notifyMissing ??= why;
  }

  /**
   * Queues `start`; the queue starts runs for at most START_SLICE_MS per
   * turn of the event loop (building a request is most of a run's cost in
   * JavaScript). `start` must not throw: one run's failure must not stall
   * the queue for every later run.
   */
  enqueue(start: () => void): void {
    this.queue.push(start);
    if (this.draining) return;
    this.draining = true;
    setImmediate(() => this.drain());
  }

  private drain(): void {
    const t0 = performance.now();
    while (this.queue.length > 0 && performance.now() - t0 < START_SLICE_MS) this.queue.shift()!();
    if (this.queue.length > 0) setImmediate(() => this.drain());
    else this.draining = false;
  }
}

let theDefault: Runtime | undefined;

/** The runtime of every Sandbox not given one; made, from the environment, on first use. */
export function defaultRuntime(): Runtime {
  theDefault ??= Runtime.fromEnv();
  return theDefault;
}

/**
 * Test hook: replaces the default runtime (undefined: made again from the
 * environment on next use). The suite runs its core cases under both
 * monitors in one process (test/helpers.ts describeModes), and the default
 * runtime reads BUNBOX_NOTIFY only once.
 */
export function _setDefaultRuntime(runtime: Runtime | undefined): void {
  theDefault = runtime;
}
