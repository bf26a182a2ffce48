/**
 * Error paths keep no fd: the open fds of this process (/proc/self/fd) are
 * counted before and after provoking each failure of Ipc.receiveFd and
 * Ipc.comms, and must be equal.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { COMMS_FD, Executor } from "../../src/sandbox/executor.ts";

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
