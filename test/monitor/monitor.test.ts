/**
 * The monitor: pidfds and seccomp user-notification fds watched by one
 * reactor thread, results delivered on the event loop. Violations carry the
 * syscall, its arguments, the pid and the mapping of the instruction pointer
 * (read from /proc while the thread is blocked in the notification); TRACE
 * rules ask a hook; kill(), timeouts and CPU limits end runs with the right
 * Result; hundreds of runs leave no zombie and no fd behind and never stall
 * the event loop.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Executor } from "../../src/sandbox/executor.ts";
import { notifyMissing } from "../../src/sandbox/launch/exec.ts";
import { Sandbox } from "../../src/sandbox/sandbox.ts";
import type { Violation } from "../../src/sandbox/result.ts";
import { openWatches } from "../../src/native/reactor.ts";
import { ALLOW, arg32, jeq, KILL, TRACE } from "../../src/policy/rules.ts";
import { describeModes, DIR, eventually, expectViolation, HOST_ARCH, MODES, PROBE, PROBE_STATIC, runProbe, runProbeOutput, testPolicy } from "../helpers.ts";

const nr = (name: string) => String(HOST_ARCH.syscalls[name]);

describeModes("violations", (mode) => {
  test("ptrace: syscall, args, arch, pid 2, and the IP's mapping in libc", async () => {
    let seen: Violation | undefined;
    const r = await runProbe(["ptrace-args"], { hooks: { onViolation: (v) => (seen = v) } });
    expect(r.code).toBe(159);
    expect(seen).toEqual(r.violation!);
    if (expectViolation(mode, r, "ptrace")) {
      const v = r.violation!;
      expect(v.nr).toBe(HOST_ARCH.syscalls.ptrace!);
      expect(v.arch).toBe(HOST_ARCH.name);
      expect(v.args.slice(0, 4)).toEqual([0x4206n, 1n, 0xdeadn, 0xbeefn]);
      expect(v.pid).toBe(2);
      expect(v.hostPid).toBeGreaterThan(2);
      expect(v.ipMapping).toMatch(/^libc\.so\.6\+0x[0-9a-f]+$/);
      expect(r.toString()).toMatch(/^VIOLATION: ptrace\(0x4206, 1, 0xdead, 0xbeef\) \[\w+\] pid 2 at libc\.so\.6\+0x[0-9a-f]+ \(safety rule\)$/);
    } else {
      expect(r.toString()).toBe(`VIOLATION: unknown syscall [unknown] (${r.violation!.detailMissing})`);
    }
  });

  test("in a statically linked binary the IP maps into the binary itself", async () => {
    const r = await runProbe(["ptrace"], { static: true });
    if (expectViolation(mode, r, "ptrace")) expect(r.violation!.ipMapping).toMatch(/^probe-static\+0x[0-9a-f]+$/);
  });

  test("an argument rule: the offending argument is in the report", async () => {
    // kill() only with signal 0 (a liveness check).
    const policy = testPolicy("default", (b) => b.addPolicyOnSyscall("kill", [arg32(1), jeq(0, ALLOW), KILL]));
    const ok = await runProbe(["syscall", nr("kill"), "1", "0"], { policy });
    expect(ok.toString()).toBe("OK: exit code 0");
    const r = await runProbe(["syscall", nr("kill"), "1", "9"], { policy });
    if (expectViolation(mode, r, "kill")) {
      expect(r.violation!.args.slice(0, 2)).toEqual([1n, 9n]);
      expect(r.violation!.rule).toBe("policy");
      expect(r.toString()).toMatch(/^VIOLATION: kill\(1, SIGKILL\) \[\w+\] pid 2 at libc\.so\.6\+0x[0-9a-f]+$/);
    }
  });

  test("a violation in a second thread kills the whole sandbox", async () => {
    const r = await runProbe(["thread-ptrace"]);
    if (expectViolation(mode, r, "ptrace")) expect(r.violation!.pid).toBeGreaterThan(2); // the thread's own tid
  });
});

describe("violations, with user notification only", () => {
  // The fallback's SIGSYS kills only the offending process: its parent (here
  // pid 2) sees a child die and goes on, and the Result cannot tell. With
  // user notification the monitor kills the whole sandbox.
  test("a violation in a child process names the child's pid", async () => {
    const r = await runProbe(["child-ptrace"]);
    expect(r.status).toBe("VIOLATION");
    expect(r.violation!.syscall).toBe("ptrace");
    expect(r.violation!.pid).toBeGreaterThan(2);
  });

  test("notify: false asks for the fallback as BUNBOX_NOTIFY=off does", async () => {
    const r = await new Sandbox(new Executor(PROBE, [PROBE, "ptrace"]), testPolicy(), {}, { notify: false }).run();
    expect(r.code).toBe(159);
    expect(expectViolation(MODES[1], r, "ptrace")).toBe(false);
  });
});

describe("TRACE rules ask the onSyscall hook", () => {
  const policy = () => testPolicy("default", (b) => b.addPolicyOnSyscall("getppid", [TRACE]));

  // The probe prints what the syscall returned: getppid() is 1 (bunbox's init).
  test("allow: the syscall runs", async () => {
    const events: string[] = [];
    const { result: r, stdout } = await runProbeOutput(["syscall", nr("getppid")], {
      policy: policy(),
      hooks: { onSyscall: (e) => (events.push(`${e.syscall}:${e.pid}`), "allow") },
    });
    expect(r.status).toBe("OK");
    expect(stdout).toBe("syscall: 1\n");
    expect(events).toEqual(["getppid:2"]);
  });

  test("errno: the syscall fails with it", async () => {
    const { result: r, stdout } = await runProbeOutput(["syscall", nr("getppid")], { policy: policy(), hooks: { onSyscall: () => ({ errno: 13 }) } });
    expect(r.status).toBe("OK");
    expect(stdout).toBe("syscall: -1 EACCES\n");
  });

  test("deny: a violation", async () => {
    const r = await runProbe(["syscall", nr("getppid")], { policy: policy(), hooks: { onSyscall: () => "deny" } });
    expect(r.status).toBe("VIOLATION");
    expect(r.violation!.rule).toBe("trace hook");
  });

  test("an async hook works; no hook means deny", async () => {
    const { result: r, stdout } = await runProbeOutput(["syscall", nr("getppid")], {
      policy: policy(),
      hooks: { onSyscall: async () => (await Bun.sleep(20), "allow" as const) },
    });
    expect(r.status).toBe("OK");
    expect(stdout).toBe("syscall: 1\n");
    const none = await runProbe(["syscall", nr("getppid")], { policy: policy() });
    expect(none.status).toBe("VIOLATION");
  });
});

describe("ending a run", () => {
  test("kill() of a running sandbox ends it as EXTERNAL_KILL", async () => {
    const s = new Sandbox(new Executor(PROBE, [PROBE, "sleep", "30"]), testPolicy());
    s.runAsync();
    await s.ready();
    s.kill();
    const r = await s.awaitResult();
    expect(r.status).toBe("EXTERNAL_KILL");
    expect(r.reason).toBe("killed by the host");
    expect(r.code).toBe(137);
  });

  test("kill() before the spawn", async () => {
    const s = new Sandbox(new Executor(PROBE, [PROBE, "sleep", "30"]), testPolicy());
    s.runAsync();
    s.kill();
    expect((await s.awaitResult()).status).toBe("EXTERNAL_KILL");
  });

  // The spawn runs on a spawner thread: after the queue's turn, the run is
  // being set up and has no monitor yet. What comes then must not be lost.
  const setImmediateTurn = () => new Promise((r) => setImmediate(r));

  test("kill() while the sandbox is being set up", async () => {
    const s = new Sandbox(new Executor(PROBE, [PROBE, "sleep", "30"]), testPolicy());
    s.runAsync();
    await setImmediateTurn();
    expect(s["monitor"]).toBeUndefined();
    s.kill();
    const r = await s.awaitResult({ timeoutMs: 5000 });
    expect(r.status).toBe("EXTERNAL_KILL");
  });

  test("a signal sent while the sandbox is being set up reaches the sandboxee", async () => {
    const s = new Sandbox(new Executor(PROBE, [PROBE, "sleep", "30"]), testPolicy());
    s.runAsync();
    await setImmediateTurn();
    expect(s["monitor"]).toBeUndefined();
    s.signal(15);
    const r = await s.awaitResult({ timeoutMs: 5000 });
    expect(r.status).toBe("SIGNALED");
    expect(r.signal).toBe(15);
  });

  test("the wall-time limit fires, never before its time", async () => {
    const r = await runProbe(["sleep", "30"], { executor: { limits: { wallTimeMs: 1000 } } });
    expect(r.toString()).toBe("TIMEOUT: wall-time limit of 1 s reached");
    expect(r.signal).toBe(9);
    expect(r.wallTimeMs).toBeGreaterThanOrEqual(1000);
  });

  test("a wall-time limit past 24.8 days does not fire at once (setTimeout's own limit)", async () => {
    const r = await runProbe(["sleep", "1"], { executor: { limits: { wallTimeMs: 30 * 24 * 3600 * 1000 } } });
    expect(r.toString()).toBe("OK: exit code 0");
  });

  test("short of fds, runs wait for others to free theirs instead of failing (EMFILE)", async () => {
    // 150 runs in flight need ~450 fds; the host process may open 256.
    const script = join(DIR, "work", `fd-starved-${process.pid}.ts`);
    writeFileSync(script, `
      import { Executor, Sandbox } from ${JSON.stringify(join(import.meta.dir, "../../src/index.ts"))};
      import { profileBuilder } from ${JSON.stringify(join(import.meta.dir, "../../src/policy/profiles.ts"))};
      const policy = profileBuilder("default").build();
      const runs = Array.from({ length: 150 }, () => new Sandbox(new Executor("/bin/sleep", ["sleep", "1"]), policy).run());
      const statuses = new Set((await Promise.all(runs)).map((r) => r.toString()));
      console.log([...statuses].join(";"));
    `);
    await using proc = Bun.spawn(["sh", "-c", `ulimit -n 256 && exec "$0" "$1"`, process.execPath, script], { stdout: "pipe", stderr: "pipe" });
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect(err).toBe("");
    expect(out.trim()).toBe("OK: exit code 0");
  });

  test("a grace period sends SIGTERM first", async () => {
    // The probe says so on SIGTERM and exits: the run ends before the grace
    // period is over, so no SIGKILL was needed.
    const graceMs = 30_000;
    const { result: r, stdout } = await runProbeOutput(["trap-term"], { executor: { limits: { wallTimeMs: 1000, graceMs } } });
    expect(r.status).toBe("TIMEOUT");
    expect(stdout).toBe("SIGTERM\n");
    expect(r.wallTimeMs).toBeLessThan(graceMs);
  }, 60_000);

  test("the CPU limit: SIGNALED, and the reason says so", async () => {
    const r = await runProbe(["spin"], { executor: { limits: { cpuSeconds: 1, wallTimeMs: 10000 } } });
    expect(r.status).toBe("SIGNALED");
    expect([24, 9]).toContain(r.signal!);
    expect(r.reason).toContain("CPU limit of 1 s");
    // The rusage is tick-sampled (889 ms was seen under load): it spun for
    // about the second, not for nothing.
    expect(r.rusage.userMs + r.rusage.sysMs).toBeGreaterThan(500);
  });

  test("awaitResult({ timeoutMs }) rejects while the run goes on", async () => {
    const s = new Sandbox(new Executor(PROBE, [PROBE, "sleep", "30"]), testPolicy());
    s.runAsync();
    await expect(s.awaitResult({ timeoutMs: 100 })).rejects.toThrow("no Result within 100 ms");
    s.kill();
    expect((await s.awaitResult()).status).toBe("EXTERNAL_KILL");
  });

  test("onStart gets the sandboxee's pid; returning false aborts with SETUP_ERROR; onExit sees every Result", async () => {
    const exits: string[] = [];
    // Read while the hook runs (an expect in a hook would be swallowed: a
    // throwing hook is a refusal), checked after the run.
    let nsPids: string | undefined;
    const s = new Sandbox(new Executor(PROBE, [PROBE, "sleep", "30"]), testPolicy(), {
      onStart: (pid) => {
        nsPids = /^NSpid:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
        return false;
      },
      onExit: (r) => exits.push(r.status),
    });
    const result = s.run();
    await expect(s.ready()).rejects.toThrow("ended before it was ready");
    const r = await result;
    expect(r.status).toBe("SETUP_ERROR");
    expect(r.setup!.stage).toBe("onStart");
    expect(exits).toEqual(["SETUP_ERROR"]);
    // The host pid of pid 2 in the sandbox's pid namespace, not init's.
    expect(nsPids?.split(/\s+/)).toEqual([String(r.pid), "2"]);
  });

  test("a kill() during set-up wins over onStart, which is not asked", async () => {
    let asked = false;
    const s = new Sandbox(new Executor(PROBE, [PROBE, "sleep", "30"]), testPolicy(), {
      onStart: () => ((asked = true), false),
    });
    s.runAsync();
    await setImmediateTurn();
    s.kill();
    expect((await s.awaitResult({ timeoutMs: 5000 })).status).toBe("EXTERNAL_KILL");
    expect(asked).toBe(false);
  });
});

/** Zombie children of this process. */
function zombies(): number {
  let n = 0;
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z" && Number(fields[1]) === process.pid) n++;
    } catch {
      // gone
    }
  }
  return n;
}

describe("many runs", () => {
  // How long the event loop stalls meanwhile is a figure, not a property:
  // the benchmark measures it (`bun run bench -- --only throughput`, "event-loop lag").
  test("200 concurrent runs each get their own Result; timers fire while they run", async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const policy = testPolicy();
    const runs = Array.from({ length: 200 }, (_, i) => new Sandbox(new Executor(PROBE, [PROBE, "exit", String(i % 256)]), policy).run());
    const results = await Promise.all(runs);
    const ticksWhileRunning = ticks;
    clearInterval(timer);
    results.forEach((r, i) => expect(`${i}:${r.status}:${r.exitCode}`).toBe(`${i}:OK:${i % 256}`));
    expect(ticksWhileRunning).toBeGreaterThan(0);
  }, 120_000);

  test("1000 runs leave no zombie and no fd behind", async () => {
    const policy = testPolicy("static");
    const fdsBefore = readdirSync("/proc/self/fd").length;
    const watchesBefore = openWatches();
    for (let batch = 0; batch < 20; batch++) {
      const results = await Promise.all(
        Array.from({ length: 50 }, () => new Sandbox(new Executor(PROBE_STATIC, [PROBE_STATIC, "exit", "0"]), policy).run()),
      );
      for (const r of results) if (r.status !== "OK") throw new Error(r.toString());
    }
    await eventually("no zombie children", () => zombies() === 0);
    expect(openWatches()).toBe(watchesBefore);
    expect(readdirSync("/proc/self/fd").length).toBeLessThanOrEqual(fdsBefore + 2);
  }, 180_000);
});

describe("kernels without seccomp user notification", () => {
  test("the failures that mean it is missing are recognised, others are not", () => {
    const f = (stage: string, errnoName: string, detail = "") => ({ stage, errno: 0, errnoName, detail, message: "" });
    expect(notifyMissing(f("seccomp", "EINVAL", "with user notification"))).toContain("Linux 5.0");
    expect(notifyMissing(f("notify", "ENOSYS", "pidfd_getfd(seccomp listener)"))).toContain("pidfd_getfd");
    expect(notifyMissing(f("seccomp", "EINVAL"))).toBeUndefined();
    expect(notifyMissing(f("mount", "EINVAL", "with user notification"))).toBeUndefined();
    expect(notifyMissing(f("notify", "EPERM"))).toBeUndefined();
  });
});
