/**
 * cgroup v2's mechanics (src/containment/cgroup-v2.ts, csrc/contain.c), on
 * whatever cgroup2 hierarchy this host has. Here it is the "unified" one of
 * a host whose controllers are all on v1: no memory or pids controller, but
 * CLONE_INTO_CGROUP, the cgroup namespace, cpu.stat, cgroup.kill and the
 * removal work as on a pure v2 host, where the VM rig runs the limits too
 * (test/containment/cgroups.test.ts picks v2 there by itself).
 */
import { describe, expect, test } from "bun:test";
import { closeSync, existsSync, mkdirSync, readFileSync, readlinkSync, readSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { readLayout } from "../../src/containment/hierarchy.ts";
import { Executor } from "../../src/sandbox/executor.ts";
import { Runtime } from "../../src/sandbox/runtime.ts";
import { Sandbox } from "../../src/sandbox/sandbox.ts";
import { IS_ROOT, testPolicy } from "../helpers.ts";

const layout = readLayout();
const v2 = layout.v2;

function run(argv: string[], runtime: Runtime, executor = new Executor(argv[0]!, argv)) {
  return new Sandbox(executor, testPolicy(), {}, { runtime });
}

/** What the sandboxee writes to a socket, until `until` is in it (blocking: the sandbox runs on its own). */
function readUntil(fd: number, until: string): string {
  let text = "";
  const buf = Buffer.alloc(65536);
  for (let n; !text.includes(until) && (n = readSync(fd, buf)) > 0; ) text += buf.subarray(0, n).toString();
  closeSync(fd);
  return text;
}

describe.if(IS_ROOT && v2 !== undefined)("cgroup v2", () => {
  test("the sandbox starts in its own cgroup (CLONE_INTO_CGROUP), sees it as /, is counted and removed", async () => {
    const runtime = new Runtime({ cgroups: "v2" });
    const executor = new Executor("/bin/sh", ["sh", "-c", "cat /proc/self/cgroup; exec sleep 100"]);
    const out = executor.ipc.receiveFd(1);
    const s = run([], runtime, executor);
    s.runAsync();
    await s.ready();
    const inside = readUntil(out, "0::");
    const host = readFileSync(`/proc/${s.pid}/cgroup`, "utf8").split("\n").find((l) => l.startsWith("0::"))!;
    expect(host).toMatch(/^0::.*\/bunbox\/\d+-\d+-\d+\.\d+$/);
    s.kill();
    const r = await s.awaitResult();
    expect(r.containment?.cgroup).toBe("v2");
    expect(`0::${r.containment?.cgroupPath}`).toBe(host);
    expect(existsSync(`${v2!.mount}${r.containment!.cgroupPath}`)).toBe(false);
    expect(inside.split("\n").find((l) => l.startsWith("0::"))).toBe("0::/");
  });

  test("CPU time comes from the cgroup's cpu.stat", async () => {
    const runtime = new Runtime({ cgroups: "v2" });
    const r = await run(["/bin/sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"], runtime).run();
    expect(r.ok).toBe(true);
    expect(r.rusage.userMs + r.rusage.sysMs).toBeGreaterThan(50);
  });

  test("a leftover of a dead bunbox is emptied with cgroup.kill and removed", async () => {
    // Where this runtime's sandboxes go.
    const probe = await run(["/bin/true"], new Runtime({ cgroups: "v2" })).run();
    const base = dirname(`${v2!.mount}${probe.containment!.cgroupPath}`);
    const ns = /\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/pid"))![1];
    const name = `${ns}-${Bun.spawnSync(["true"]).pid}-1.1`;
    mkdirSync(`${base}/${name}`);
    const orphan = Bun.spawn(["sleep", "1000"]);
    writeFileSync(`${base}/${name}/cgroup.procs`, String(orphan.pid));
    // A new runtime sweeps on its first run.
    await run(["/bin/true"], new Runtime({ cgroups: "v2" })).run();
    expect(await orphan.exited).toBe(137);
    expect(existsSync(`${base}/${name}`)).toBe(false);
  });
});
