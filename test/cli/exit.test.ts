/**
 * How a run ends, as exit codes (README.md "Exit codes") and Result JSON:
 * the command's own code, 128+N for signal N, 124 wall-time limit, 125 setup
 * failure naming the stage, 126 not executable, 127 not found, 159 policy
 * violation. Signals to bunbox reach the sandboxee through its init; a
 * detached grandchild dies with the run; the sandbox dies with bunbox.
 */
import { describe, expect, test } from "bun:test";
import { BUNBOX, bunbox, describeModes, DIR, eventually, expectViolation, FX, json, probe, PROBE, processesMatching, readUntil } from "../helpers.ts";

describeModes("exit codes and Results", (mode) => {
  test("the command's exit code", async () => {
    const r = await probe(["exit", "42"], ["--json"]);
    expect(r.code).toBe(42);
    const res = json(r.stderr);
    expect(res).toMatchObject({ status: "OK", exitCode: 42, code: 42 });
    expect(res.rusage.maxRssKb).toBeGreaterThan(0);
    expect(res.wallTimeMs).toBeGreaterThan(0);
    expect(r.stderr).not.toContain("OK:"); // an OK run prints no line
  });

  test("killed by a signal: 128+N, SIGNALED", async () => {
    const r = await probe(["signal", "11"], ["--json"]);
    expect(r.code).toBe(139);
    expect(json(r.stderr)).toMatchObject({ status: "SIGNALED", signal: 11, signalName: "SIGSEGV" });
    expect(r.stderr).toContain("SIGNALED: SIGSEGV");
  });

  test("wall-time limit: 124, TIMEOUT, never before the limit", async () => {
    const r = await probe(["sleep", "30"], ["--time-limit", "0.5", "--json"]);
    expect(r.code).toBe(124);
    const res = json(r.stderr);
    expect(res).toMatchObject({ status: "TIMEOUT", reason: "wall-time limit of 0.5 s reached" });
    expect(res.wallTimeMs).toBeGreaterThanOrEqual(500);
  });

  test("setup failure: 125 with the stage and the path", async () => {
    const r = await probe(["ok"], ["--cwd", "/no/such/dir", "--json"]);
    expect(r.code).toBe(125);
    const res = json(r.stderr);
    expect(res).toMatchObject({ status: "SETUP_ERROR", setup: { stage: "cwd", errnoName: "ENOENT", detail: "/no/such/dir" } });
    expect(r.stderr).toContain("cwd /no/such/dir: ENOENT");
  });

  test("command not found: 127", async () => {
    const r = await bunbox(["run", "--json", "--", "no-such-command"], { bare: true });
    expect(r.code).toBe(127);
    expect(json(r.stderr)).toMatchObject({ status: "SETUP_ERROR", setup: { stage: "lookup", errnoName: "ENOENT" } });
    expect(r.stderr).toContain("no-such-command: command not found");
  });

  test("not executable: 126", async () => {
    const r = await bunbox(["run", "--", "/etc/passwd"], { bare: true });
    expect(r.code).toBe(126);
    expect(r.stderr).toContain("/etc/passwd: cannot execute");
    const d = await bunbox(["run", "--", "/usr"], { bare: true });
    expect(d.code).toBe(126);
  });

  test("a forbidden syscall: 159, VIOLATION naming it", async () => {
    const r = await probe(["ptrace"], ["--json"]);
    expect(r.code).toBe(159);
    const res = json(r.stderr);
    if (expectViolation(mode, res, "ptrace")) {
      expect(res.violation.pid).toBe(2);
      expect(r.stderr).toMatch(/VIOLATION: ptrace\(0, 0, 0, 0.*\) \[(x86_64|aarch64)\] pid 2/);
    } else {
      expect(r.stderr).toContain(`VIOLATION: unknown syscall [unknown] (${res.violation.detailMissing})`);
    }
  });

  test("-q silences the line, not the exit code", async () => {
    const r = await probe(["signal", "11"], ["-q"]);
    expect(r.code).toBe(139);
    expect(r.stderr).toBe("");
  });

  test("--result-file writes the Result", async () => {
    const file = `${DIR}/work/result-${process.pid}.json`;
    const r = await probe(["exit", "3"], ["--result-file", file]);
    expect(r.code).toBe(3);
    expect(JSON.parse(await Bun.file(file).text())).toMatchObject({ status: "OK", exitCode: 3 });
  });
});

describe("lifecycle", () => {
  test("a detached grandchild does not outlive the run", async () => {
    const marker = `bbx${process.pid % 100000}`;
    const r = await probe(["daemon", marker]);
    expect(r.stdout).toBe("daemon started\n");
    // No wait: init's exit, which ends the run, waits for the kernel to have
    // killed and reaped every process of its pid namespace.
    expect(processesMatching(marker)).toEqual([]);
  });

  test.each([["SIGTERM", 15], ["SIGINT", 2], ["SIGHUP", 1]] as const)(
    "%s to bunbox reaches the sandboxee",
    async (name, num) => {
      // The signal goes once the sandboxee runs (bunbox forwards from before
      // the spawn, but a signal during bunbox's own start-up would kill it).
      const proc = Bun.spawn([BUNBOX, "run", "--ro", `${DIR}:${FX}`, "--", "/bin/sh", "-c", `echo running; exec ${PROBE} sleep 30`], { stdio: ["ignore", "pipe", "pipe"] });
      await readUntil(proc.stdout, "running\n");
      proc.kill(name);
      const code = await proc.exited;
      expect(code).toBe(128 + num);
      expect(await new Response(proc.stderr).text()).toContain(`SIGNALED: ${name}`);
    },
  );

  test("if bunbox dies, the whole sandbox dies", async () => {
    const marker = `bbk${process.pid % 100000}`;
    const proc = Bun.spawn([BUNBOX, "run", "--ro", `${DIR}:${FX}`, "--", "/bin/sh", "-c", `${PROBE} daemon ${marker}; exec ${PROBE} sleep 30`], { stdio: ["ignore", "pipe", "pipe"] });
    await readUntil(proc.stdout, "daemon started\n");
    expect(processesMatching(marker).length).toBeGreaterThan(0);
    proc.kill("SIGKILL");
    await proc.exited;
    // The sandbox's init dies of its parent-death signal, a moment later.
    await eventually("the daemon and the sandboxee are gone", () =>
      processesMatching(marker).length === 0 && processesMatching(`${PROBE} sleep 30`).length === 0);
  });
});
