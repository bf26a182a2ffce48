/**
 * Watches one running sandbox and produces its Result.
 *
 * Three sources, none polled: the pidfd of the sandbox's init (readable when
 * it exits), the seccomp listener (readable when a rule asks the monitor), and
 * a wall-clock timer. All three arrive as events on the JavaScript thread (the
 * fds through the reactor thread, src/native/reactor.ts), so any number of
 * sandboxes share one event loop and nothing blocks it: each handler does a
 * few non-blocking system calls.
 *
 * The sandboxee's own exit status comes from init's report (csrc/init.c);
 * CPU time and peak memory from the sandbox's cgroup where it has one
 * (src/containment/), else CPU time from reaping init, which has reaped
 * every process of the sandbox. How these facts make the Result (which
 * reason wins) is src/monitor/outcome.ts.
 */
import { after } from "../timer.ts";
import { describeErrno } from "../native/errno.ts";
import { type Notification, type Report, type Waited, closeFd, devNullFd, notifAddFd, notifSend, NOTIF_CONTINUE, pidfdSignal, readReport, waitPidfd } from "../native/sys.ts";
import { EPOLLIN, type ListenerWatch, type Watch, watch, watchListener } from "../native/reactor.ts";
import type { Insn } from "../policy/bpf.ts";
import type { Spawned } from "../native/spawn.ts";
import type { Result, Violation } from "../sandbox/result.ts";
import { type EndCommon, type Ending, resultOf, usageOf } from "./outcome.ts";
import { TaskMemory } from "./memory.ts";
import { errnoName, Refusals, refusalErrno } from "./refusals.ts";
import { classify, describeViolation } from "./violation.ts";
import type { ConnectAnswer } from "../net/transparent.ts";

const SIGKILL = 9;
const SIGTERM = 15;
const ECONNREFUSED = 111;

export type { Report } from "../native/sys.ts";
export type SyscallDecision = "allow" | "deny" | { errno: number };

/** A TRACE rule's syscall, for the onSyscall hook: a violation's details, minus the verdict. */
export type SyscallEvent = Pick<Violation, "syscall" | "nr" | "arch" | "args" | "pid" | "hostPid" | "ip" | "ipMapping" | "decoded">;

export interface MonitorHooks {
  onViolation?(v: Violation): void;
  onSyscall?(event: SyscallEvent): SyscallDecision | Promise<SyscallDecision>;
  /**
   * Learning (src/learn/): each TRACE notification as it comes, with the
   * waiting task's memory, before the call is let through. Takes the place
   * of onSyscall, without describing every call: a learning run makes
   * hundreds of thousands of them.
   */
  onRecord?(n: Notification, memory: TaskMemory): void;
}

export interface MonitorOptions {
  /**
   * Where the sandboxee's end comes from when it is not our child (fork
   * server): resolves with its status once its pidfd says it exited.
   */
  exitReport?: () => Promise<Report | undefined>;
  /**
   * The filter is not in place yet (sandbox me here): an exit before
   * attachListener() is a SETUP_ERROR at this stage.
   */
  pendingStage?: string;
  wallTimeMs: number;
  graceMs: number;
  cpuSeconds: number;
  /** execveat's number on the filter's arch (the confirmation of sandbox me here). */
  execveatNr?: number;
  /** The filter as loaded (with this run's exec magic), for classification. */
  filter: readonly Insn[] | undefined;
  notify: boolean;
  /**
   * Audit mode (a policy's `"audit": true`): a call the policy refuses runs
   * anyway and is recorded; a safety rule's refusal is still a violation.
   */
  audit?: boolean;
  startedAt: number;
  hooks: MonitorHooks;
  /**
   * --net proxy-transparent: the TRACE of syscall `nr` (connect) is answered
   * by `handle` (src/net/transparent.ts), not by the onSyscall hook.
   */
  intercept?: { nr: number; handle(n: Notification, listener: number): Promise<ConnectAnswer> };
}

export class Monitor {
  readonly result: Promise<Result>;
  private resolve!: (r: Result) => void;
  private ending: Ending | undefined;
  private exitWatch: Watch | undefined;
  private notifyWatch: ListenerWatch | undefined;
  /** Cancel functions of the pending deadline and grace timers. */
  private timers: (() => void)[] = [];
  private done = false;
  private pendingStage: string | undefined;
  private confirm: { magic: bigint; theirFd: number; done: () => void } | undefined;
  /** Calls refused without ending the run (onRefusal "errno", audit mode). */
  private readonly refusals = new Refusals();

  constructor(
    readonly spawned: Spawned,
    private readonly opts: MonitorOptions,
  ) {
    this.result = new Promise((r) => (this.resolve = r));
    this.pendingStage = opts.pendingStage;
    if (!opts.exitReport) {
      // Over already (a command that ended during the first wait of a
      // one-shot run: src/native/spawn.ts spawnOnCallingThread): nothing to watch.
      const w = waitPidfd(spawned.pidfd);
      if (typeof w !== "number" && w.reaped) {
        this.finish(w);
        return;
      }
    }
    this.exitWatch = watch(spawned.pidfd, EPOLLIN, () => this.onExit());
    try {
      if (spawned.listener >= 0) this.notifyWatch = watchListener(spawned.listener, (ev) => this.onNotify(ev));
    } catch (e) {
      this.exitWatch.close(); // the caller discards the sandbox
      throw e;
    }
    if (opts.wallTimeMs > 0) {
      this.timers.push(after(opts.wallTimeMs, () => this.onDeadline()));
    }
  }

  get running(): boolean {
    return !this.done;
  }

  /** Sends a signal to the sandbox's init, which forwards it to the sandboxee. */
  signal(sig: number): void {
    if (!this.done) pidfdSignal(this.spawned.pidfd, sig);
  }

  /** Kills the whole sandbox; the Result says EXTERNAL_KILL with `reason`. */
  kill(reason = "killed by the host"): void {
    if (this.done) return;
    this.ending ??= { status: "EXTERNAL_KILL", reason };
    pidfdSignal(this.spawned.pidfd, SIGKILL);
  }

  /**
   * Starts watching a seccomp listener taken later (sandbox me here, fork
   * server). The setup ends when the sandboxee's execveat with
   * `confirmMagic` arrives on it. The sandboxee still holds its own copy of
   * the listener, at `theirFd`, with which it could answer its own
   * notifications: before the answer that lets it go on, that fd is replaced
   * with /dev/null (SECCOMP_IOCTL_NOTIF_ADDFD, Linux 5.9); if that fails the
   * sandbox is killed.
   */
  attachListener(fd: number, theirFd: number, confirmMagic: bigint, onConfirmed: () => void): void {
    if (this.done) {
      closeFd(fd);
      return;
    }
    (this.spawned as { listener: number }).listener = fd;
    this.confirm = { magic: confirmMagic, theirFd, done: onConfirmed };
    this.notifyWatch = watchListener(fd, (ev) => this.onNotify(ev));
  }

  /** Kills the sandbox as a failed setup (an onStart hook said no). */
  abort(stage: string, message: string): void {
    if (this.done) return;
    this.ending ??= { status: "SETUP_ERROR", stage, message };
    pidfdSignal(this.spawned.pidfd, SIGKILL);
  }

  private onDeadline(): void {
    if (this.done || this.ending) return;
    this.ending = { status: "TIMEOUT" };
    if (this.opts.graceMs > 0) {
      pidfdSignal(this.spawned.pidfd, SIGTERM);
      this.timers.push(after(this.opts.graceMs, () => this.signal(SIGKILL)));
    } else {
      pidfdSignal(this.spawned.pidfd, SIGKILL);
    }
  }

  private onNotify(events: number): void {
    if (this.done) return;
    if (!(events & EPOLLIN)) {
      // POLLHUP: no task uses the filter any more. Nothing to take.
      this.notifyWatch?.close();
      this.notifyWatch = undefined;
      return;
    }
    // The reactor thread received them already (and watches on): handle each in order.
    for (let n = this.notifyWatch?.take(); n && !this.done; n = this.notifyWatch?.take()) this.handle(n);
  }

  private handle(n: Notification): void {
    const listener = this.spawned.listener;
    const c = this.confirm;
    if (c && n.nr === this.opts.execveatNr && n.args[5] === c.magic) {
      this.confirm = undefined;
      const r = notifAddFd(listener, n.id, devNullFd(), c.theirFd);
      if (r < 0) {
        this.abort(this.pendingStage ?? "notify", `cannot take the seccomp listener away from the sandboxee (SECCOMP_IOCTL_NOTIF_ADDFD: ${describeErrno(-r)}; Linux 5.9+)`);
        return;
      }
      this.pendingStage = undefined;
      notifSend(listener, n.id, 0);
      c.done();
      return;
    }
    const verdict = this.opts.filter
      ? classify(this.opts.filter, n)
      : ({ kind: "violation", violationKind: "SYSCALL", rule: "policy" } as const);
    switch (verdict.kind) {
      case "allow":
        notifSend(listener, n.id, 0, NOTIF_CONTINUE);
        return;
      case "errno":
        notifSend(listener, n.id, -verdict.errno);
        return;
      case "trace":
        this.trace(n);
        return;
      case "refused":
        this.refuse(n, verdict.safety === true);
        return;
      case "violation":
        // Audit mode lets the policy's refusals through; never a safety rule's.
        if (this.opts.audit && verdict.rule === "policy") this.refuse(n);
        else this.violate(describeViolation(n, verdict, listener));
        return;
    }
  }

  /**
   * A call the policy refuses without ending the run: recorded (described
   * while the task waits), then answered with EPERM, or ENOSYS for a number
   * the arch does not name (libc falls back on ENOSYS only); in audit mode
   * let through instead. CONTINUE is safe here for the reason the kernel's
   * warning gives: no decision was taken on the task's memory.
   */
  private refuse(n: Notification, safety = false): void {
    const listener = this.spawned.listener;
    if (safety) {
      // A safety rule's refusal (set-user-ID bits): EPERM whatever the mode, audit included.
      this.refusals.add(n, "EPERM", listener, "safety rule");
      notifSend(listener, n.id, -1);
      return;
    }
    if (this.opts.audit) {
      this.refusals.add(n, "allowed (audit)", listener);
      notifSend(listener, n.id, 0, NOTIF_CONTINUE);
      return;
    }
    const e = refusalErrno(n);
    this.refusals.add(n, errnoName(e), listener);
    notifSend(listener, n.id, -e);
  }

  private violate(v: Violation): void {
    if (this.ending?.status !== "VIOLATION") this.ending = { status: "VIOLATION", violation: v };
    // No reply: the offending thread stays blocked in the notification until
    // the SIGKILL of the whole pid namespace reaches it; the syscall never
    // runs and the sandboxee never sees it fail.
    pidfdSignal(this.spawned.pidfd, SIGKILL);
    this.tellViolation(v);
  }

  private tellViolation(v: Violation): void {
    try {
      this.opts.hooks.onViolation?.(v);
    } catch {
      // a throwing hook must not keep the sandbox alive or lose its Result
    }
  }

  /**
   * A TRACE rule: the onSyscall hook decides. The arguments are a snapshot;
   * pointers in them refer to the sandboxee's memory, which it can change
   * after we look (TOCTOU): a decision that grants access must never depend
   * on memory read through them.
   */
  private trace(n: Notification): void {
    const icpt = this.opts.intercept;
    if (icpt && n.nr === icpt.nr) return this.intercepted(n, icpt.handle(n, this.spawned.listener));
    const record = this.opts.hooks.onRecord;
    if (record) {
      try {
        record(n, new TaskMemory(this.spawned.listener, n));
      } catch {
        // the recorder's own problem (it keeps its errors): never the run's
      }
      // The call runs whatever the recorder made of it: learning must not change what the program does.
      notifSend(this.spawned.listener, n.id, 0, NOTIF_CONTINUE);
      return;
    }
    const v = describeViolation(n, { violationKind: "SYSCALL", rule: "trace hook" }, this.spawned.listener);
    const hook = this.opts.hooks.onSyscall;
    const answer = (d: SyscallDecision) => {
      if (this.done) return;
      if (d === "allow") notifSend(this.spawned.listener, n.id, 0, NOTIF_CONTINUE);
      else if (d === "deny") this.violate(v);
      else notifSend(this.spawned.listener, n.id, -Math.abs(d.errno));
    };
    if (!hook) return answer("deny");
    const { kind: _kind, rule: _rule, ...event } = v;
    try {
      const d = hook(event);
      if (d instanceof Promise) d.then(answer, () => answer("deny"));
      else answer(d);
    } catch {
      answer("deny");
    }
  }

  /** The answer to an intercepted syscall, once it comes (the thread waits in its notification until then). */
  private intercepted(n: Notification, answer: Promise<ConnectAnswer>): void {
    const listener = this.spawned.listener;
    answer.then(
      (a) => {
        if (this.done) return;
        if ("continue" in a) notifSend(listener, n.id, 0, NOTIF_CONTINUE);
        else if ("errno" in a) notifSend(listener, n.id, -a.errno);
        else notifSend(listener, n.id, 0, 0, BigInt(a.returns));
      },
      () => this.done || notifSend(listener, n.id, -ECONNREFUSED),
    );
  }

  private onExit(): void {
    if (this.done) return;
    if (this.opts.exitReport) {
      this.exitWatch?.close();
      this.exitWatch = undefined;
      void this.opts.exitReport().then((report) => this.finish(undefined, report));
      return;
    }
    const w = waitPidfd(this.spawned.pidfd);
    if (typeof w !== "number" && !w.reaped) {
      this.exitWatch?.rearm();
      return;
    }
    this.finish(typeof w === "number" ? undefined : w);
  }

  private finish(init: Waited | undefined, reported?: Report): void {
    if (this.done) return;
    this.done = true;
    for (const cancel of this.timers) cancel();
    this.exitWatch?.close();
    this.notifyWatch?.close();
    const report = reported ?? (this.spawned.report >= 0 ? readReport(this.spawned.report) : undefined);
    closeFd(this.spawned.pidfd);
    closeFd(this.spawned.listener);
    closeFd(this.spawned.report);
    closeFd(this.spawned.sandboxeePidfd);

    const wallTimeMs = performance.now() - this.opts.startedAt;
    // Init is reaped, so its pid namespace, every process of the sandbox, is gone: the cgroup's figures are final.
    const contained = this.spawned.containment;
    const counted = contained?.collect();
    const common: EndCommon = {
      rusage: usageOf(init, report, !!this.opts.exitReport, counted?.usage),
      wallTimeMs,
      pid: this.spawned.sandboxeePid > 0 ? this.spawned.sandboxeePid : this.spawned.pid,
      ...(counted ? { containment: counted.info } : {}),
      refused: this.refusals.list,
      refusedOmitted: this.refusals.omittedCount,
    };
    try {
      const o = this.opts;
      const limits = { wallTimeMs: o.wallTimeMs, cpuSeconds: o.cpuSeconds, notify: o.notify };
      const result = resultOf({ ending: this.ending, pendingStage: this.pendingStage, report, init, common, limits });
      // Without user notification a violation is known only now, from SIGSYS.
      if (result.violation?.detailMissing) this.tellViolation(result.violation);
      this.resolve(result);
    } finally {
      contained?.release();
    }
  }
}
