/**
 * The sandbox's init (csrc/init.c) and ptrace stops. wait4 reports a stopped
 * child to its tracer, and init becomes one whenever a child of its (pid 2,
 * or an orphan it inherited) calls PTRACE_TRACEME, which a policy with the
 * ptrace safety rule relaxed allows. Only an exit or a death of pid 2 ends the
 * run: a stop is not one (it used to read as "SIGNALED: signal 127"), and
 * init, no debugger, lets a stopped tracee go with the signal that stopped it.
 * The fixture is test/fixtures/tracee.c.
 */
import { describe, expect, test } from "bun:test";
import { closeSync, readSync } from "node:fs";
import { Executor } from "../../src/sandbox/executor.ts";
import { Sandbox } from "../../src/sandbox/sandbox.ts";
import { FX, testPolicy } from "../helpers.ts";

const TRACEE = `${FX}/tracee`;
const policy = testPolicy("default", (b) => b.allowSyscall("ptrace").dangerAllowUnsafe("ptrace"));

/** Reads a socket to EOF and closes it. */
function readAll(fd: number): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(4096);
  for (let n; (n = readSync(fd, buf)) > 0; ) chunks.push(Buffer.from(buf.subarray(0, n)));
  closeSync(fd);
  return Buffer.concat(chunks).toString();
}

async function tracee(mode: string, code: number) {
  const ex = new Executor(TRACEE, [TRACEE, mode, String(code)], { limits: { wallTimeMs: 3000 } });
  const out = ex.ipc.receiveFd(1);
  const result = await new Sandbox(ex, policy).run();
  return { result: result.toString(), stdout: readAll(out) };
}

describe("init and ptrace", () => {
  test("pid 2 traced by init (PTRACE_TRACEME) and stopped by a signal: the signal is delivered, the run ends with its exit code", async () => {
    expect(await tracee("traceme", 7)).toEqual({ result: "OK: exit code 7", stdout: "handled\n" });
  });

  test("an orphan traced by init is let go too, and the run goes on until pid 2 ends", async () => {
    expect(await tracee("orphan-traceme", 9)).toEqual({ result: "OK: exit code 9", stdout: "orphan handled\n" });
  });

  test("pid 2 tracing its own child through a stop", async () => {
    expect(await tracee("trace-child", 4)).toEqual({ result: "OK: exit code 4", stdout: "child stopped, then exited 3\n" });
  });
});
