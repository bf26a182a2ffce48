/**
 * The runtime (src/sandbox/runtime.ts): the state runs share lives in one
 * object per runtime, so forcing the notify fallback (BUNBOX_NOTIFY=off, or
 * notifyFallback) in one runtime changes only its own runs, and the default
 * runtime reads the variable when it is made. Violations are refused either
 * way; only what the Result knows of them differs (the kernel kills the
 * process with SIGSYS instead of asking the monitor).
 */
import { describe, expect, test } from "bun:test";
import { UsageError } from "../../src/errors.ts";
import { Executor } from "../../src/sandbox/executor.ts";
import { MountPlan } from "../../src/sandbox/mounts.ts";
import type { Result } from "../../src/sandbox/result.ts";
import { Runtime } from "../../src/sandbox/runtime.ts";
import { Sandbox } from "../../src/sandbox/sandbox.ts";
import { probe, PROBE, testPolicy } from "../helpers.ts";

function ptrace(runtime: Runtime): Promise<Result> {
  return new Sandbox(new Executor(PROBE, [PROBE, "ptrace"]), testPolicy(), {}, { runtime }).run();
}

/** A violation reported through user notification: the monitor saw the call. */
function expectNotified(r: Result): void {
  expect(r.status).toBe("VIOLATION");
  expect(r.violation!.syscall).toBe("ptrace");
  expect(r.violation!.detailMissing).toBeUndefined();
  expect(r.signal).toBe(9);
}

/** The fallback: the kernel killed the process, the monitor never saw the call. */
function expectFallback(r: Result): void {
  expect(r.status).toBe("VIOLATION");
  expect(r.signal).toBe(31);
  expect(r.violation!.detailMissing).toContain("seccomp user notification is not in use");
  expect(r.code).toBe(159);
}

describe("runtimes", () => {
  test("forcing the notify fallback in one runtime does not affect another", async () => {
    const off = new Runtime({ notifyFallback: true });
    const on = new Runtime();
    expectFallback(await ptrace(off));
    expectNotified(await ptrace(on));
    expectFallback(await ptrace(off));
    const [a, b] = await Promise.all([ptrace(on), ptrace(off)]);
    expectNotified(a);
    expectFallback(b);
    expect(on.notifyUnavailable).toBeUndefined();
    expect(off.notifyUnavailable).toContain("turned off");
  });

  test("the fallback never lets through what the policy refuses, and allows what it allows", async () => {
    const runtime = new Runtime({ notifyFallback: true });
    const run = (mode: string[]) => new Sandbox(new Executor(PROBE, [PROBE, ...mode]), testPolicy(), {}, { runtime }).run();
    expect((await run(["exit", "3"])).toString()).toBe("OK: exit code 3");
    expect((await run(["ptrace"])).status).toBe("VIOLATION");
  });

  test("a run's notify option wins over its runtime", async () => {
    const off = new Runtime({ notifyFallback: true });
    const r = await new Sandbox(new Executor(PROBE, [PROBE, "ptrace"]), testPolicy(), {}, { runtime: off, notify: true }).run();
    expectNotified(r);
  });

  test("BUNBOX_NOTIFY: off forces the fallback, unset or empty does not, anything else is a usage error naming it", () => {
    expect(Runtime.fromEnv({ BUNBOX_NOTIFY: "off" }).notifyFallback).toBe(true);
    expect(Runtime.fromEnv({}).notifyFallback).toBe(false);
    expect(Runtime.fromEnv({ BUNBOX_NOTIFY: "" }).notifyFallback).toBe(false);
    expect(() => Runtime.fromEnv({ BUNBOX_NOTIFY: "of" })).toThrow(UsageError);
    expect(() => Runtime.fromEnv({ BUNBOX_NOTIFY: "of" })).toThrow('BUNBOX_NOTIFY: "of" is not a setting');
  });

  test("the default runtime honours BUNBOX_NOTIFY=off (bunbox run, a fresh process)", async () => {
    const off = await probe(["ptrace"], ["--json"], { env: { BUNBOX_NOTIFY: "off" } });
    expect(off.code).toBe(159);
    const j = JSON.parse(off.stderr.trim().split("\n").pop()!);
    expect(j.signal).toBe(31);
    expect(j.violation.detailMissing).toContain("seccomp user notification is not in use");
    const on = await probe(["ptrace"], ["--json"]);
    expect(on.code).toBe(159);
    const k = JSON.parse(on.stderr.trim().split("\n").pop()!);
    expect(k.violation.syscall).toBe("ptrace");
    expect(k.violation.detailMissing).toBeUndefined();
    const bad = await probe(["exit", "0"], [], { env: { BUNBOX_NOTIFY: "yes" } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("BUNBOX_NOTIFY");
  });

  test("each runtime keeps its own host layout for the default mount view", () => {
    const a = new Runtime();
    const b = new Runtime();
    const plan = MountPlan.defaultView(a);
    expect(plan.ops.some((o) => o.dst === "/proc")).toBe(true);
    expect(a.defaultView).toBeDefined();
    expect(b.defaultView).toBeUndefined();
    // Within its TTL the layout is reused, never handed out to be changed.
    const cached = a.defaultView!.plan;
    plan.add({ kind: "tmpfs", dst: "/extra" });
    expect(MountPlan.defaultView(a).ops.some((o) => o.dst === "/extra")).toBe(false);
    expect(a.defaultView!.plan).toBe(cached);
  });
});
