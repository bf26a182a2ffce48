/**
 * Error paths keep no fd: the open fds of this process (/proc/self/fd) are
 * counted before and after provoking each failure of Ipc.receiveFd and
 * Ipc.comms, each way a fork server can fail to start, and after many runs
 * through a fork server, and must be equal.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { UsageError } from "../../src/errors.ts";
import { COMMS_FD, Executor } from "../../src/sandbox/executor.ts";
import { ForkServer } from "../../src/sandbox/fork-server.ts";
import { Sandbox } from "../../src/sandbox/sandbox.ts";
import { FX, testPolicy } from "../helpers.ts";

const MODES = `${FX}/modes`;

function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}


/** Runs `provoke` (which must throw) and checks that no fd stayed open. */
function noLeak(provoke: () => unknown, message: string): void {
  Bun.gc(true); // nothing of Bun's is closed by a collection in between
  const before = openFds();
  expect(provoke).toThrow(message);
  expect(openFds()).toBe(before);
}

/** Waits until the fd count is back to `before` (fds of ended runs close on later turns), or gives up. */
async function settled(before: number): Promise<number> {
  for (let i = 0; i < 100 && openFds() !== before; i++) await Bun.sleep(10);
  return openFds();
}

/**
 * The fd count once earlier tests (in this process) have closed theirs:
 * their runs' fds close on later turns, and Bun's own (a Bun.spawn's stdin
 * memfd) when collected.
 */
async function quiet(): Promise<number> {
  Bun.gc(true);
  for (let n = openFds(); ; ) {
    await Bun.sleep(50);
    const m = openFds();
    if (m === n) return m;
    n = m;
  }
}

describe("Ipc", () => {
  test("receiveFd refused (bad fd number, name taken, bad name): both ends of its socketpair are closed", () => {
    const ex = new Executor("/bin/true");
    ex.ipc.receiveFd(5, "out");
    noLeak(() => ex.ipc.receiveFd(1 << 20), "out of range");
    noLeak(() => ex.ipc.receiveFd(5), "fd 5 is already mapped");
    noLeak(() => ex.ipc.receiveFd(6, "out"), '"out" is already used');
    noLeak(() => ex.ipc.receiveFd(7, "no spaces"), "is not a name");
    expect(ex.ipc.fds.map((m) => m.targetFd)).toEqual([5]);
    ex.ipc.closePeerEnds();
  });

  test("comms refused (fd 1023 or the name taken): its socketpair and Comms are closed", () => {
    const ex = new Executor("/bin/true");
    ex.ipc.mapFd(0, COMMS_FD);
    noLeak(() => ex.ipc.comms(), `fd ${COMMS_FD} is already mapped`);
    const named = new Executor("/bin/true");
    named.ipc.mapFd(0, 3, "comms");
    noLeak(() => named.ipc.comms(), '"comms" is already used');
    expect(named.ipc.channel).toBeUndefined();
  });
});

describe("fork server", () => {
  test("after 60 runs and close(), every fd is closed (the server's and each child's)", async () => {
    // A first server and run open what bunbox keeps for good (the reactor, the spawners' eventfd, /dev/null).
    const warm = await ForkServer.start(new Executor(MODES, [MODES, "fork-server"]), testPolicy());
    const child = testPolicy("static", (b) => b.allowComms().allowGetPids());
    await new Sandbox(warm.executor(), child).run();
    warm.close();
    await warm.sandbox.awaitResult();
    const before = await quiet();
    const s = await ForkServer.start(new Executor(MODES, [MODES, "fork-server", "quick"]), testPolicy());
    for (let batch = 0; batch < 3; batch++) {
      const results = await Promise.all(Array.from({ length: 20 }, () => new Sandbox(s.executor(), child).run()));
      for (const r of results) expect(r.toString()).toBe("OK: exit code 42");
    }
    s.close();
    await s.sandbox.awaitResult();
    expect(await settled(before)).toBe(before);
  }, 60_000);

  test("a server that ends before it is ready: its comms is closed", async () => {
    const before = await quiet();
    const start = ForkServer.start(new Executor(MODES, [MODES, "me-here-skip"]), testPolicy());
    // Which the host sees first, the closed channel or the Result, is a race.
    await expect(start).rejects.toThrow(/ended before it was ready|the peer closed the channel/);
    expect(await settled(before)).toBe(before);
  });

  test("a server that says something else: killed, and its comms closed", async () => {
    const before = await quiet();
    const ex = new Executor(MODES, [MODES, "me-here", "ok"]);
    await expect(ForkServer.start(ex, testPolicy())).rejects.toThrow('expected {"op":"fork_server_ready"}');
    expect(await settled(before)).toBe(before);
  });

  test("a server that never says it is ready: killed at the timeout, and its comms closed", async () => {
    const before = await quiet();
    const ex = new Executor("/bin/sleep", ["sleep", "30"]);
    await expect(ForkServer.start(ex, testPolicy(), { timeoutMs: 300 })).rejects.toThrow("no message within 300 ms");
    expect(await settled(before)).toBe(before);
  });

  test("a server that breaks the protocol once ready is shut down (killed, its comms closed) without close()", async () => {
    const before = await quiet();
    // A "server" in bash: a ready message, then a frame that is not JSON (comms frames: u32 tag, u32 length, payload).
    const frame = (payload: string) => {
      const head = new DataView(new ArrayBuffer(8));
      head.setUint32(0, 12, true); // JSON
      head.setUint32(4, payload.length, true);
      const hex = [...new Uint8Array(head.buffer)].map((b) => `\\x${b.toString(16).padStart(2, "0")}`).join("");
      return hex + payload;
    };
    const script = `printf '${frame('{"op":"fork_server_ready","pid":2}')}${frame("not json")}' >&1023; sleep 30`;
    const s = await ForkServer.start(new Executor("/bin/bash", ["bash", "-c", script]), testPolicy());
    const r = await s.sandbox.awaitResult({ timeoutMs: 10_000 });
    expect(r.status).toBe("EXTERNAL_KILL");
    const child = await new Sandbox(s.executor(), testPolicy()).run();
    expect(child.status).toBe("SETUP_ERROR");
    expect(child.toString()).toContain("the fork server is closed");
    expect(await settled(before)).toBe(before);
  });

  test("fds refused to a fork-server child are not opened", async () => {
    const s = await ForkServer.start(new Executor(MODES, [MODES, "fork-server", "quick"]), testPolicy());
    try {
      const ex = s.executor();
      noLeak(() => ex.ipc.receiveFd(1), "ipc.receiveFd");
      noLeak(() => ex.ipc.comms(), "ipc.comms");
      expect(() => ex.ipc.mapFd(0, 3)).toThrow(UsageError);
    } finally {
      s.close();
    }
  });
});
