/**
 * Which reason a Result gets when several facts meet at the end of a run
 * (src/monitor/outcome.ts): bunbox's own reason for ending the run wins over
 * the signal its kill produced, the cgroup's OOM kill names the memory
 * limit, the CPU budget names the CPU limit. The real-kernel cases of each
 * are in test/sandbox/ and test/containment/; here the order of the rules.
 */
import { describe, expect, test } from "bun:test";
import type { ContainmentInfo } from "../../src/containment/containment.ts";
import { type EndCommon, type EndFacts, resultOf, usageOf } from "../../src/monitor/outcome.ts";
import type { Violation } from "../../src/sandbox/result.ts";

const KILLED = (sig: number) => ({ wstatus: sig, userUs: 0, sysUs: 0, maxRssKb: 0 });
const EXITED = (code: number) => ({ wstatus: code << 8, userUs: 0, sysUs: 0, maxRssKb: 0 });
const contained = (oomKills: number): ContainmentInfo => ({
  cgroup: "v2",
  uid: 0x7e000000,
  limits: { memory: { value: 64 << 20, by: "cgroup v2 memory.max" }, processes: { value: 4096, by: "cgroup v2 pids.max" } },
  oomKills,
  forksRefused: 0,
});
const violation: Violation = {
  kind: "SYSCALL", rule: "policy", syscall: "ptrace", nr: 101, arch: "x86_64", args: [], pid: 2, hostPid: 10, ip: 0n,
};

function facts(over: Partial<Omit<EndFacts, "common">> & { common?: Partial<EndCommon> } = {}): EndFacts {
  const { common, ...rest } = over;
  return {
    ending: undefined,
    pendingStage: undefined,
    report: EXITED(0),
    init: undefined,
    limits: { wallTimeMs: 2000, cpuSeconds: 0, notify: true },
    ...rest,
    common: { rusage: { userMs: 0, sysMs: 0, maxRssKb: null }, wallTimeMs: 5, pid: 10, refused: [], refusedOmitted: 0, ...common },
  };
}

describe("the outcome of a run", () => {
  test("an exit is OK with its code", () => {
    const r = resultOf(facts({ report: EXITED(3) }));
    expect([r.status, r.exitCode, r.reason]).toEqual(["OK", 3, "exit code 3"]);
  });

  test("bunbox's violation wins over the SIGKILL that ended the sandboxee", () => {
    const r = resultOf(facts({ ending: { status: "VIOLATION", violation }, report: KILLED(9) }));
    expect([r.status, r.violation?.syscall]).toEqual(["VIOLATION", "ptrace"]);
  });

  test("the wall-time limit wins over the SIGKILL, and names the limit", () => {
    const r = resultOf(facts({ ending: { status: "TIMEOUT" }, report: KILLED(9) }));
    expect([r.status, r.reason]).toEqual(["TIMEOUT", "wall-time limit of 2 s reached"]);
  });

  test("an external kill of a sandboxee that had already exited is its exit", () => {
    const r = resultOf(facts({ ending: { status: "EXTERNAL_KILL", reason: "killed by the host" }, report: EXITED(0) }));
    expect(r.status).toBe("OK");
    const k = resultOf(facts({ ending: { status: "EXTERNAL_KILL", reason: "killed by the host" }, report: KILLED(9) }));
    expect([k.status, k.reason]).toEqual(["EXTERNAL_KILL", "killed by the host"]);
  });

  test("an end before the filter was in place (sandbox me here) is a SETUP_ERROR at that stage", () => {
    const r = resultOf(facts({ pendingStage: "confirm", report: EXITED(0) }));
    expect([r.status, r.reason]).toEqual(["SETUP_ERROR", "confirm"]);
  });

  test("a SIGKILL after the cgroup's OOM killer acted names the memory limit; without one it is a plain SIGKILL", () => {
    const oom = resultOf(facts({ report: KILLED(9), common: { containment: contained(1) } }));
    expect([oom.status, oom.reason]).toEqual(["SIGNALED", "SIGKILL: memory limit of 64 MiB reached"]);
    const plain = resultOf(facts({ report: KILLED(9), common: { containment: contained(0) } }));
    expect(plain.reason).toBe("SIGKILL");
  });

  test("init killed with the whole group at the memory limit (v2 memory.oom.group) is the memory limit, not an external kill", () => {
    const init = { reaped: true, code: 2, status: 9, userUs: 0, sysUs: 0, maxRssKb: 0 };
    const oom = resultOf(facts({ report: undefined, init, common: { containment: contained(2) } }));
    expect([oom.status, oom.reason]).toEqual(["SIGNALED", "SIGKILL: memory limit of 64 MiB reached"]);
    const ext = resultOf(facts({ report: undefined, init }));
    expect(ext.status).toBe("EXTERNAL_KILL");
  });

  test("SIGXCPU, or a SIGKILL past the CPU budget, is the CPU limit; a SIGKILL below it is not", () => {
    const limits = { wallTimeMs: 0, cpuSeconds: 1, notify: true };
    expect(resultOf(facts({ limits, report: KILLED(24) })).reason).toBe("SIGXCPU: CPU limit of 1 s reached");
    const spent = { rusage: { userMs: 900, sysMs: 150, maxRssKb: null } };
    expect(resultOf(facts({ limits, report: KILLED(9), common: spent })).reason).toBe("SIGKILL: CPU limit of 1 s reached");
    expect(resultOf(facts({ limits, report: KILLED(9) })).reason).toBe("SIGKILL");
  });

  test("SIGSYS without user notification is a violation whose syscall is unknown, and says why", () => {
    const r = resultOf(facts({ report: KILLED(31), limits: { wallTimeMs: 0, cpuSeconds: 0, notify: false } }));
    expect(r.status).toBe("VIOLATION");
    expect(r.violation?.detailMissing).toContain("seccomp user notification is not in use");
    expect(resultOf(facts({ report: KILLED(31) })).status).toBe("SIGNALED");
  });

  test("a core dump is said", () => {
    expect(resultOf(facts({ report: KILLED(11 | 0x80) })).reason).toBe("SIGSEGV (core dumped)");
  });
});

describe("the usage a Result reports", () => {
  const init = { reaped: true, code: 1, status: 0, userUs: 2000, sysUs: 1000, maxRssKb: 32000 };
  test("the cgroup's peak and CPU replace the reaped figures; maxrss shared with bunbox is never reported", () => {
    expect(usageOf(init, undefined, false, undefined)).toEqual({ userMs: 2, sysMs: 1, maxRssKb: null });
    expect(usageOf(init, undefined, false, { memoryPeak: 3000, userMs: 5, sysMs: 6, oomKills: 0, forksRefused: 0 })).toEqual({
      userMs: 5, sysMs: 6, maxRssKb: 3,
    });
  });
  test("the fork server's exit report carries its own maxrss (the child never shared bunbox's memory)", () => {
    const report = { wstatus: 0, userUs: 1000, sysUs: 0, maxRssKb: 900 };
    expect(usageOf(undefined, report, true, undefined).maxRssKb).toBe(900);
    expect(usageOf(undefined, report, false, undefined).maxRssKb).toBeNull();
  });
});
