/**
 * How a run ended, as a Result: the monitor's facts at the end (why bunbox
 * ended it, if it did; init's report on the sandboxee; init's own wait
 * status; what the cgroup counted) weighed in one order. When bunbox killed
 * the sandbox itself (violation, timeout, kill()), that reason wins over the
 * status the kill produced; a SIGKILL after the cgroup's OOM killer acted is
 * the memory limit; a SIGKILL or SIGXCPU past the CPU budget is the CPU
 * limit. Pure: test/monitor/outcome.test.ts feeds it facts.
 */
import { type ContainmentInfo, memoryLimitReason } from "../containment/containment.ts";
import type { CgroupUsage } from "../containment/cgroup.ts";
import { type Report, type Waited, CLD_EXITED } from "../native/sys.ts";
import { signalName } from "../native/signals.ts";
import { type RefusedCall, Result, type Rusage, type Status, type Violation } from "../sandbox/result.ts";

const SIGKILL = 9;
const SIGXCPU = 24;
const SIGSYS = 31;

/** Why bunbox itself ended the run, when it did. */
export type Ending =
  | { status: "VIOLATION"; violation: Violation }
  | { status: "SETUP_ERROR"; stage: string; message: string }
  | { status: "TIMEOUT" }
  | { status: "EXTERNAL_KILL"; reason: string };

/** What every Result of the run carries, whatever the status. */
export interface EndCommon {
  rusage: Rusage;
  wallTimeMs: number;
  pid: number;
  containment?: ContainmentInfo;
  refused: RefusedCall[];
  refusedOmitted: number;
}

export interface EndFacts {
  ending: Ending | undefined;
  /** Sandbox me here: the filter was not in place yet when the sandboxee ended. */
  pendingStage: string | undefined;
  /** init's report on the sandboxee (its wait status), when init made one. */
  report: Report | undefined;
  /** init's own end, when bunbox reaped it (not in fork-server mode). */
  init: Waited | undefined;
  common: EndCommon;
  limits: { wallTimeMs: number; cpuSeconds: number; notify: boolean };
}

/**
 * CPU and peak memory: the cgroup's where it counted them; else CPU from
 * reaping init (it has reaped every process of the sandbox) or from the
 * report. The kernel's maxrss of a process that shared bunbox's memory
 * until its exec includes bunbox's: never reported (null).
 */
export function usageOf(init: Waited | undefined, report: Report | undefined, fromExitReport: boolean, counted: CgroupUsage | undefined): Rusage {
  const rusage: Rusage = init
    ? { userMs: init.userUs / 1000, sysMs: init.sysUs / 1000, maxRssKb: null }
    : report
      ? { userMs: report.userUs / 1000, sysMs: report.sysUs / 1000, maxRssKb: fromExitReport ? report.maxRssKb : null }
      : { userMs: 0, sysMs: 0, maxRssKb: null };
  if (counted) {
    if (counted.memoryPeak !== undefined) rusage.maxRssKb = Math.ceil(counted.memoryPeak / 1024);
    if (counted.userMs !== undefined && counted.sysMs !== undefined) {
      rusage.userMs = counted.userMs;
      rusage.sysMs = counted.sysMs;
    }
  }
  return rusage;
}

export function resultOf(f: EndFacts): Result {
  const { ending: e, report, init, common, limits } = f;
  const memoryLimit = memoryLimitReason(common.containment);
  if (e?.status === "VIOLATION") {
    return new Result({ status: "VIOLATION", reason: e.violation.kind, violation: e.violation, signal: SIGKILL, ...common });
  }
  if (f.pendingStage && e?.status !== "TIMEOUT" && e?.status !== "EXTERNAL_KILL") {
    const message = `the sandboxee ended before its policy was applied (${f.pendingStage})`;
    const setup = { stage: f.pendingStage, errno: 0, errnoName: "", detail: "", message };
    return new Result({ status: "SETUP_ERROR", reason: f.pendingStage, setup, ...common });
  }
  if (e?.status === "SETUP_ERROR") {
    const setup = { stage: e.stage, errno: 0, errnoName: "", detail: "", message: e.message };
    return new Result({ status: "SETUP_ERROR", reason: e.stage, setup, ...common });
  }
  if (e?.status === "TIMEOUT") {
    return new Result({ status: "TIMEOUT", reason: `wall-time limit of ${limits.wallTimeMs / 1000} s reached`, signal: SIGKILL, ...common });
  }
  if (e?.status === "EXTERNAL_KILL" && !(report && exited(report.wstatus))) {
    return new Result({ status: "EXTERNAL_KILL", reason: e.reason, signal: SIGKILL, ...common });
  }
  if (!report) {
    const sig = init && init.code !== CLD_EXITED ? init.status : undefined;
    // cgroup v2 kills the whole sandbox at its memory limit (memory.oom.group), init with it.
    if (sig === SIGKILL && memoryLimit) {
      return new Result({ status: "SIGNALED", reason: `SIGKILL: ${memoryLimit}`, signal: SIGKILL, ...common });
    }
    // init died without a report: someone outside bunbox killed it.
    const status: Status = sig !== undefined ? "EXTERNAL_KILL" : "INTERNAL_ERROR";
    const reason = sig !== undefined
      ? `the sandbox's init was killed by ${signalName(sig)} from outside bunbox`
      : `the sandbox's init exited (${init ? init.status : "unknown status"}) without reporting on the sandboxee`;
    return new Result({ status, reason, ...(sig !== undefined ? { signal: sig } : {}), ...common });
  }
  const ws = report.wstatus;
  if (exited(ws)) {
    const code = (ws >> 8) & 0xff;
    return new Result({ status: "OK", reason: `exit code ${code}`, exitCode: code, ...common });
  }
  const sig = ws & 0x7f;
  if (sig === SIGSYS && !limits.notify) {
    return new Result({
      status: "VIOLATION",
      reason: "SYSCALL",
      signal: sig,
      violation: {
        kind: "SYSCALL",
        rule: "policy",
        syscall: "unknown syscall",
        nr: -1,
        arch: "unknown",
        args: [],
        pid: 2,
        hostPid: common.pid,
        ip: 0n,
        detailMissing:
          "killed by SIGSYS; which syscall is unknown because seccomp user notification is not in use " +
          "(unavailable on this kernel, or turned off)",
      },
      ...common,
    });
  }
  const cpu = limits.cpuSeconds;
  const cpuUsed = (common.rusage.userMs + common.rusage.sysMs) / 1000;
  const cpuLimit = cpu > 0 && (sig === SIGXCPU || (sig === SIGKILL && cpuUsed >= cpu));
  const core = (ws & 0x80) !== 0 ? " (core dumped)" : "";
  const reason = cpuLimit
    ? `${signalName(sig)}: CPU limit of ${cpu} s reached`
    : sig === SIGKILL && memoryLimit
      ? `SIGKILL: ${memoryLimit}`
      : `${signalName(sig)}${core}`;
  return new Result({ status: "SIGNALED", reason, signal: sig, ...common });
}

function exited(wstatus: number): boolean {
  return (wstatus & 0x7f) === 0;
}
