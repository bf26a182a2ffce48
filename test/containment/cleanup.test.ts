/**
 * No cgroup outlives its sandbox for long: a bunbox killed with SIGKILL
 * runs no cleanup, so the next bunbox to start removes what it left
 * (src/containment/owner.ts says how a leftover is told from the cgroup of
 * a bunbox still running), killing whatever still runs in it first.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { readLayout } from "../../src/containment/hierarchy.ts";
import { bunbox, IS_ROOT } from "../helpers.ts";
import { holding, json, sandboxeePid } from "./util.ts";

/** The host directories of the cgroups process `pid` is in, for the controllers the sandboxes use. */
function cgroupsOf(pid: number): string[] {
  const layout = readLayout();
  const out: string[] = [];
  for (const line of readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n")) {
    const [, list, path] = line.split(":");
    if (path === undefined) continue;
    if (list === "" && !layout.v1.has("memory")) out.push(`${layout.v2!.mount}${path}`);
    for (const c of ["memory", "pids"]) if (list!.split(",").includes(c)) out.push(`${layout.v1.get(c)!.mount}${path}`);
  }
  return out;
}

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 200 && existsSync(`/proc/${pid}`); i++) await Bun.sleep(10);
  return !existsSync(`/proc/${pid}`);
}

describe.if(IS_ROOT)("leftover cgroups", () => {
  test("after bunbox is killed (SIGKILL), the next bunbox removes its cgroups", async () => {
    const h = await holding(["fork-hold", "3"]);
    const sandboxee = sandboxeePid(h.proc.pid!);
    const dirs = cgroupsOf(sandboxee).filter((d) => d.includes("/bunbox/"));
    expect(dirs.length).toBeGreaterThan(0);
    h.proc.kill("SIGKILL");
    await h.proc.exited;
    expect(await gone(sandboxee)).toBe(true); // the sandbox died with bunbox (parent-death signal)
    for (const d of dirs) expect(existsSync(d)).toBe(true); // nothing ran to remove them
    const next = await bunbox(["run", "--", "/bin/true"], { bare: true });
    expect(next.code).toBe(0);
    for (const d of dirs) expect(existsSync(d)).toBe(false);
  });

  test("a leftover with a process still in it: the process is killed, the cgroup removed", async () => {
    // Where sandboxes' cgroups go, from one run's Result.
    const res = json((await bunbox(["run", "--json", "--", "/bin/true"], { bare: true })).stderr);
    const layout = readLayout();
    const bases = String(res.containment.cgroupPath).split(", ").map((p) => {
      const [c, rel] = p.includes(":") ? (p.split(":") as [string, string]) : ["", p];
      return dirname(`${c ? layout.v1.get(c)!.mount : layout.v2!.mount}${rel}`);
    });
    // A dead owner: a pid that exited, with a start time no process of it has.
    const dead = Bun.spawnSync(["true"]).pid;
    const ns = /\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/pid"))![1];
    const name = `${ns}-${dead}-1.1`;
    const orphan = Bun.spawn(["sleep", "1000"]);
    for (const b of bases) {
      mkdirSync(`${b}/${name}`);
      writeFileSync(`${b}/${name}/cgroup.procs`, String(orphan.pid));
    }
    const next = await bunbox(["run", "--", "/bin/true"], { bare: true });
    expect(next.code).toBe(0);
    expect(await orphan.exited).toBe(137);
    for (const b of bases) expect(existsSync(`${b}/${name}`)).toBe(false);
  });

  test("the cgroup of a bunbox still running is left alone", async () => {
    const h = await holding(["fork-hold", "0"]);
    try {
      const dirs = cgroupsOf(sandboxeePid(h.proc.pid!)).filter((d) => d.includes("/bunbox/"));
      expect((await bunbox(["run", "--", "/bin/true"], { bare: true })).code).toBe(0);
      for (const d of dirs) expect(existsSync(d)).toBe(true);
    } finally {
      await h.stop();
    }
  });
});
