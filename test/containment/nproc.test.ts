/**
 * RLIMIT_NPROC beside a pids cgroup. Before Linux 5.14 the kernel counts a
 * real uid's processes wherever they run, so for a sandbox run with the
 * caller's own uid a limit one above pids.max also counted the caller's
 * other processes: the VM rig's 5.10 boot (scripts/vm/guest/smoke.sh, its
 * user's `--max-procs 8` case) saw every fork refused by the rlimit, none by
 * the cgroup. There the cgroup alone bounds the processes.
 */
import { describe, expect, test } from "bun:test";
import { nprocPerUserNamespace } from "../../src/containment/containment.ts";
import { Limits, RLIMIT } from "../../src/sandbox/limits.ts";

const nproc = (opts: Parameters<Limits["rlimits"]>[0]) => new Limits({ processes: 8 }).rlimits(opts).find(([r]) => r === RLIMIT.NPROC)!.slice(1);

describe("RLIMIT_NPROC beside pids.max", () => {
  test("counted per user namespace from Linux 5.14 on", () => {
    expect(nprocPerUserNamespace("5.10.0-46-cloud-amd64")).toBe(false);
    expect(nprocPerUserNamespace("5.13.19")).toBe(false);
    expect(nprocPerUserNamespace("5.14.0")).toBe(true);
    expect(nprocPerUserNamespace("6.1.0-57-cloud-amd64")).toBe(true);
    expect(nprocPerUserNamespace("6.18.0")).toBe(true);
  });

  test("one above pids.max as a second line, unlimited where it would count processes outside the sandbox", () => {
    expect(nproc({ processesByCgroup: true })).toEqual([9n, 9n]);
    expect(nproc({ processesByCgroup: true, nprocCountsOthers: true })).toEqual([0xffffffffffffffffn, 0xffffffffffffffffn]);
    // Without the cgroup the rlimit is the only bound, wherever it counts.
    expect(nproc({ processesByCgroup: false, nprocCountsOthers: true })).toEqual([8n, 8n]);
  });
});
