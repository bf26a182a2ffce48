/**
 * Launch modes (src/sandbox/launch/): a fork-server child is forked, not
 * exec'd, so its Executor refuses what it could not honour (env, cwd,
 * sandboxBeforeExec, fds through ipc) with a usage error naming the option,
 * rather than run without it; runs that need seccomp user notification
 * refuse notify: false.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { UsageError } from "../../src/errors.ts";
import { Executor, type ExecutorOptions } from "../../src/sandbox/executor.ts";
import { ForkServer } from "../../src/sandbox/fork-server.ts";
import { Sandbox } from "../../src/sandbox/sandbox.ts";
import { FX, testPolicy } from "../helpers.ts";

const MODES = `${FX}/modes`;

describe("a fork-server child's Executor", () => {
  let server: ForkServer;
  beforeAll(async () => {
    const ex = new Executor(MODES, [MODES, "fork-server", "quick"], { env: { PATH: "/bin", MODE: "server" }, cwd: "/tmp" });
    server = await ForkServer.start(ex, testPolicy());
  });
  afterAll(() => server.close());

  const refused: [keyof ExecutorOptions | "bogus", unknown, string][] = [
    ["env", { A: "1" }, "env: a fork-server child keeps the server's environment"],
    ["cwd", "/tmp", "cwd: a fork-server child keeps the server's working directory"],
    ["sandboxBeforeExec", false, "sandboxBeforeExec: a fork-server child is forked under its policy"],
    ["bogus", 1, "bogus: not an option of a fork-server child (only limits)"],
  ];
  for (const [option, value, message] of refused) {
    test(`refuses ${option}, naming it`, () => {
      const make = () => server.executor({ [option]: value } as Pick<ExecutorOptions, "limits">);
      expect(make).toThrow(UsageError);
      expect(make).toThrow(message);
    });
  }

  test("refuses fds through ipc (mapFd, receiveFd, comms), naming the call", () => {
    const ex = server.executor();
    expect(() => ex.ipc.mapFd(0, 3)).toThrow("ipc.mapFd: a fork-server child gets no fds from the host");
    expect(() => ex.ipc.receiveFd(1)).toThrow("ipc.receiveFd: a fork-server child gets no fds from the host");
    expect(() => ex.ipc.comms()).toThrow("ipc.comms: a fork-server child gets no fds from the host");
    expect(ex.ipc.fds).toEqual([]);
  });

  test("says what the child really has: the server's program, environment and directory, its own limits", async () => {
    const ex = server.executor({ limits: { wallTimeMs: 5000 }, env: undefined } as Pick<ExecutorOptions, "limits">);
    expect(ex.path).toBe(MODES);
    expect(ex.env).toEqual({ PATH: "/bin", MODE: "server" });
    expect(ex.cwd).toBe("/tmp");
    expect(ex.limits.wallTimeMs).toBe(5000);
    const r = await new Sandbox(ex, testPolicy("static", (b) => b.allowComms())).run();
    expect(r.toString()).toBe("OK: exit code 42");
  });

  test("a child run refuses notify: false (it waits for bunbox to hold its listener)", () => {
    const s = new Sandbox(server.executor(), testPolicy(), {}, { notify: false });
    expect(() => s.runAsync()).toThrow("notify: a fork-server child needs seccomp user notification");
  });
});

test("a sandbox-me-here run refuses notify: false", () => {
  const s = new Sandbox(new Executor(MODES, [MODES, "me-here", "ok"], { sandboxBeforeExec: false }), testPolicy(), {}, { notify: false });
  expect(() => s.runAsync()).toThrow("notify: sandbox me here needs seccomp user notification");
});
