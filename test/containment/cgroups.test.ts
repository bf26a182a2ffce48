/**
 * A cgroup per sandbox (src/containment/): limits that bound the whole
 * sandbox, the Result's account of what it used and which limit ended it,
 * and no cgroup left behind. The repros: --memory-limit was RLIMIT_AS per
 * process, so four processes of 150 MB passed a 200M limit and a memfd held
 * 1 GiB under 64M; the pids limit and the OOM kill were invisible; maxRssKb
 * of /bin/true was ~32 000 (bunbox's own memory, which the sandbox's first
 * processes share until their exec). Version-agnostic: cgroup v1 here, v2
 * in the VM rig; the v2 mechanics on this host's controller-less unified
 * hierarchy are in cgroup-v2.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { readLayout } from "../../src/containment/hierarchy.ts";
import { ForkExecutor } from "../../src/sandbox/launch/fork.ts";
import { Limits } from "../../src/sandbox/limits.ts";
import { bunbox, IS_ROOT, PROBE } from "../helpers.ts";
import { HOG, holding, json, sandboxeePid } from "./util.ts";

const MiB = 1024 * 1024;

/** The host directories of a Result's cgroupPath ("memory:/a/b, pids:/c" on v1; "/a/b" on v2). */
function cgroupDirs(path: string): string[] {
  const layout = readLayout();
  if (!path.includes(":")) return [`${layout.v2!.mount}${path}`];
  return path.split(", ").map((p) => {
    const [c, rel] = p.split(":") as [string, string];
    return `${layout.v1.get(c)!.mount}${rel}`;
  });
}

describe.if(IS_ROOT)("as root: a cgroup per sandbox", () => {
  test("four processes of 150 MB do not pass --memory-limit 200M together", async () => {
    const r = await bunbox(["run", "--memory-limit", "200M", "--json", "--", HOG, "alloc-procs", "4", "150"]);
    const res = json(r.stderr);
    const held = Number(/held=(\d+)/.exec(r.stdout)?.[1] ?? 0);
    expect(held).toBeLessThan(4);
    expect(res.containment.oomKills).toBeGreaterThan(0);
    expect(res.containment.memoryPeakBytes).toBeLessThanOrEqual(200 * MiB);
    expect(res.containment.limits.memory.value).toBe(200 * MiB);
    // The sandboxee itself lived on: bunbox's line still says what the limit did.
    expect(r.stderr).toMatch(/\(the memory limit of 200 MiB killed \d+ process(es)?\)/);
  });

  test("a memfd cannot hold more than --memory-limit 64M", async () => {
    const r = await bunbox(["run", "--memory-limit", "64M", "--json", "--", HOG, "memfd", "1024"]);
    const res = json(r.stderr);
    const wrote = Number(/memfd: (\d+) MiB/.exec(r.stdout)?.[1] ?? 0);
    expect(wrote).toBeLessThan(64);
    expect(res.containment.memoryPeakBytes).toBeLessThanOrEqual(64 * MiB);
  });

  test("the memory limit's kill is the Result's reason: SIGNALED, SIGKILL, memory limit of 256 MiB reached", async () => {
    const r = await bunbox(["run", "--memory-limit", "256M", "--json", "--", HOG, "alloc", "512"]);
    expect(r.code).toBe(137);
    expect(r.stderr).toContain("bunbox: SIGNALED: SIGKILL: memory limit of 256 MiB reached");
    const res = json(r.stderr);
    expect(res).toMatchObject({ status: "SIGNALED", signal: 9, reason: "SIGKILL: memory limit of 256 MiB reached" });
  });

  test("the process limit's refusals are in the Result, and in the line bunbox prints", async () => {
    const r = await bunbox(["run", "--max-procs", "8", "--json", "--", PROBE, "fork-many", "50"]);
    const res = json(r.stderr);
    expect(Number(/forked=(\d+)/.exec(r.stdout)?.[1])).toBeLessThan(8);
    expect(res.containment.forksRefused).toBeGreaterThan(0);
    expect(res.containment.limits.processes).toMatchObject({ value: 8 });
    expect(r.stderr).toMatch(/the process limit of 8 refused \d+ forks?\)/);
  });

  // pids.max is 2 for 0 and 1 (init and the sandboxee), and RLIMIT_NPROC was
  // one above the asked-for limit, not above pids.max: it refused the fork
  // first, and the Result said forksRefused 0 with no word from bunbox.
  test("--max-procs 0 and 1: the refused fork is in the Result too", async () => {
    for (const n of ["0", "1"]) {
      const r = await bunbox(["run", "--max-procs", n, "--json", "--", PROBE, "fork-many", "3"]);
      expect([n, Number(/forked=(\d+)/.exec(r.stdout)?.[1]), json(r.stderr).containment.forksRefused > 0]).toEqual([n, 0, true]);
      expect(r.stderr).toMatch(new RegExp(`the process limit of ${n} refused \\d+ forks?\\)`));
    }
  });

  test("all sandboxes together have at most half the host's pids: their parent cgroup's pids.max", async () => {
    const r = await bunbox(["run", "--json", "--", "/bin/true"]);
    const res = json(r.stderr);
    const base = cgroupDirs(res.containment.cgroupPath).map(dirname).find((d) => existsSync(`${d}/pids.max`));
    expect(base).toMatch(/\/bunbox$/);
    const cap = Number(readFileSync(`${base}/pids.max`, "utf8"));
    const host = Math.min(Number(readFileSync("/proc/sys/kernel/pid_max", "utf8")), Number(readFileSync("/proc/sys/kernel/threads-max", "utf8")));
    expect(cap).toBe(Math.floor(host / 2));
  });

  test("the smallest --memory-limit bunbox accepts (4M) runs a shell", async () => {
    const r = await bunbox(["run", "--memory-limit", "4M", "--", "/bin/sh", "-c", "echo hi"], { bare: true });
    expect([r.code, r.stdout]).toEqual([0, "hi\n"]);
  });

  test("maxRssKb is the sandbox's own: /bin/true under 4 MiB", async () => {
    const res = json((await bunbox(["run", "--json", "--", "/bin/true"], { bare: true })).stderr);
    expect(res.rusage.maxRssKb).toBeGreaterThan(0);
    expect(res.rusage.maxRssKb).toBeLessThan(4096);
    expect(res.containment.memoryPeakBytes).toBe(res.rusage.maxRssKb * 1024);
  });

  test("--cpus bounds the whole sandbox's CPU time", async () => {
    const r = await bunbox(["run", "--cpus", "0.2", "--time-limit", "1", "--json", "--", PROBE, "spin"]);
    const res = json(r.stderr);
    expect(res.status).toBe("TIMEOUT");
    expect(res.containment.limits.cpus.value).toBe(0.2);
    // 0.2 CPU for 1 s: ~200 ms, throttled each 100 ms; unthrottled it would be ~1000.
    expect(res.rusage.userMs + res.rusage.sysMs).toBeLessThan(600);
  });

  test("the sandboxee is in its own cgroup under bunbox's, and sees it as /", async () => {
    const controllers = readLayout().v1.has("memory") ? ["memory", "pids"] : [""]; // v1 here, v2 in the VM rig
    const line = (text: string, c: string) => text.split("\n").find((l) => l.split(":")[1] === c)?.split(":")[2];
    const own = readFileSync("/proc/self/cgroup", "utf8");
    const h = await holding(["fork-hold", "0"]);
    try {
      const host = readFileSync(`/proc/${sandboxeePid(h.proc.pid!)}/cgroup`, "utf8");
      for (const c of controllers) {
        const mine = line(own, c)!;
        expect(line(host, c)).toMatch(new RegExp(`^${mine === "/" ? "" : mine}/bunbox/\\d+-\\d+-\\d+\\.\\d+$`));
      }
    } finally {
      await h.stop();
    }
    const inside = (await bunbox(["run", "--", "/bin/cat", "/proc/self/cgroup"], { bare: true })).stdout;
    for (const c of controllers) expect(line(inside, c)).toBe("/");
  });

  test("-v says where the cgroup is and how each limit is enforced", async () => {
    const r = await bunbox(["run", "-v", "--memory-limit", "64M", "--max-procs", "100", "--", "/bin/true"], { bare: true });
    expect(r.stderr).toMatch(/cgroup: v[12], under \S+\/bunbox/);
    expect(r.stderr).toMatch(/memory 64M: cgroup v[12] memory\.(limit_in_bytes|max)/);
    expect(r.stderr).toMatch(/processes 100: cgroup v[12] pids\.max and RLIMIT_NPROC/);
  });

  test("each run's cgroup is gone once bunbox has its Result", async () => {
    const res = json((await bunbox(["run", "--json", "--", "/bin/true"], { bare: true })).stderr);
    const dirs = cgroupDirs(res.containment.cgroupPath);
    expect(dirs.length).toBeGreaterThan(0);
    for (const d of dirs) expect(existsSync(d)).toBe(false);
  });
});

describe.if(IS_ROOT)("as user nobody (no cgroup of its own here)", () => {
  const opts = { nobody: true };

  test("a memory limit that cannot be enforced is a usage error naming the option, why and what to do", async () => {
    const r = await bunbox(["run", "--memory-limit", "64M", "--", "/bin/true"], { ...opts, bare: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--memory-limit: a memory limit for the whole sandbox (64M) cannot be enforced:");
    expect(r.stderr).toContain("--allow-weaker-limits");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    const c = await bunbox(["run", "--cpus", "1", "--", "/bin/true"], { ...opts, bare: true });
    expect(c.code).toBe(2);
    expect(c.stderr).toContain("--cpus: a CPU limit (1) cannot be enforced");
  });

  test("--allow-weaker-limits runs it with a per-process address-space limit, and says so", async () => {
    const r = await bunbox(["run", "-v", "--allow-weaker-limits", "--memory-limit", "64M", "--json", "--", HOG, "alloc", "128"], opts);
    expect(r.stdout).toContain("alloc: -1 ENOMEM");
    expect(r.stderr).toMatch(/relaxation: --allow-weaker-limits: .*bounds each process's address space/);
    const res = json(r.stderr);
    expect(res.containment.limits.memory).toEqual({ value: 64 * MiB, by: "RLIMIT_AS per process (weaker limits accepted)" });
  });

  test("without a cgroup, peak memory is unknown (null), never bunbox's own", async () => {
    const res = json((await bunbox(["run", "--json", "--", "/bin/true"], { ...opts, bare: true })).stderr);
    expect(res.rusage.maxRssKb).toBeNull();
    expect(res.containment.cgroup).toBe("none");
    expect(res.containment.noCgroup).toContain("not writable by uid 65534");
  });

  test("--max-procs still bounds the sandbox (RLIMIT_NPROC, counted in its own user namespace)", async () => {
    const r = await bunbox(["run", "--max-procs", "8", "--json", "--", PROBE, "fork-many", "50"], opts);
    expect(Number(/forked=(\d+)/.exec(r.stdout)?.[1])).toBeLessThan(8);
    expect(json(r.stderr).containment.limits.processes.by).toBe("RLIMIT_NPROC in the sandbox's user namespace");
  });
});

describe("a fork-server child", () => {
  test("has no cgroup of its own: whole-sandbox limits go to the server's Executor", () => {
    const server = {} as ConstructorParameters<typeof ForkExecutor>[0];
    expect(() => new ForkExecutor(server, { limits: { memory: 64 * MiB } })).toThrow("limits.memory: a fork-server child runs in its server's cgroup");
    expect(() => new ForkExecutor(server, { limits: { cpus: 1 } })).toThrow("limits.cpus: a fork-server child runs in its server's cgroup");
  });
});

describe("limits the cgroup cannot take as given are refused, never rounded", () => {
  // cpu.max takes no quota under 1 ms: 0.001 CPUs was written as 0.01, ten
  // times the CPU asked for; pids.max refuses more than PID_MAX_LIMIT with
  // EINVAL, which was a SETUP_ERROR after the sandbox's cgroup was made.
  test("Limits: cpus under 0.01 or over 4096, processes over 4194304", () => {
    expect(() => new Limits({ cpus: 0.001 })).toThrow("limits.cpus: 0.001 CPUs cannot be enforced");
    expect(() => new Limits({ cpus: 4097 })).toThrow("limits.cpus: 4097 CPUs cannot be enforced");
    expect(() => new Limits({ processes: 4194305 })).toThrow("limits.processes: 4194305 is more processes than Linux can have");
    expect(new Limits({ cpus: 0.01, processes: 4194304 })).toMatchObject({ cpus: 0.01, processes: 4194304 });
    expect(new Limits({ cpus: 0 }).cpus).toBe(0);
  });

  // bunbox run's floors held for its options only: a library Limits (or an
  // OCI bundle's rlimits) of 2 open files waited 10 s and failed at set-up
  // with EMFILE; an address space of 1 byte was a SIGSEGV in exec.
  test("Limits: the floors of --memory-limit, --address-space-limit and --max-files", () => {
    expect(() => new Limits({ memory: 1024 })).toThrow("limits.memory: 1024 is below 4M");
    expect(() => new Limits({ addressSpace: 1 })).toThrow("limits.addressSpace: 1 is below 1M");
    expect(() => new Limits({ openFiles: 2 })).toThrow("limits.openFiles: 2 cannot work");
    expect(new Limits({ memory: 4 * MiB, addressSpace: MiB, openFiles: 4 })).toMatchObject({ memory: 4 * MiB, addressSpace: MiB, openFiles: 4 });
  });
});
