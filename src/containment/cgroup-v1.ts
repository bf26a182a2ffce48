/**
 * cgroup v1, the fallback where the controllers sit in separate hierarchies
 * (cgroup.ts says what both versions share). A sandbox gets a directory in
 * the memory and pids hierarchies, and in cpu when --cpus is asked for, each
 * under `bunbox` in bunbox's own cgroup of that hierarchy; the sandbox's
 * init moves itself into them first thing, through the `tasks` files
 * opened here (csrc/child_a.c join_cgroups says why it and not bunbox).
 *
 *   memory   memory.limit_in_bytes and memory.memsw.limit_in_bytes (no swap
 *            past the limit); memory.max_usage_in_bytes, memory.oom_control
 *            oom_kill (Linux 4.13)
 *   pids     pids.max; pids.events max (forks refused)
 *   cpu      cpu.cfs_quota_us over cpu.cfs_period_us; cpuacct.usage_user and
 *            usage_sys where cpuacct is mounted with cpu
 */
import { accessSync, constants } from "../native/fs.ts";
import { closeFd } from "../native/sys.ts";
import {
  type CgroupEntry, type CgroupHost, type CgroupLimits, type CgroupUsage, type SandboxCgroup, makeDir,
  nextName, openFd, readKeyed, readNumber, removeDir, sweepDir, writeValue,
} from "./cgroup.ts";
import { readText } from "../read-text.ts";
import { ContainmentError } from "./error.ts";
import type { Layout, V1Hierarchy } from "./hierarchy.ts";
import { killAll, processCap, retryRemove } from "./kill.ts";

const USED = ["memory", "pids", "cpu"] as const;
type Controller = (typeof USED)[number];

/** The cpu controller's period: quotas are per 100 ms, as the kernel's default. */
const CPU_PERIOD_US = 100_000;

class V1Cgroup implements SandboxCgroup {
  readonly version = 1;
  private fds: number[] = [];

  constructor(
    /** The sandbox's directory per controller (controllers mounted together share one). */
    private readonly dirs: Map<Controller, string>,
    readonly path: string,
  ) {}

  entries(): CgroupEntry[] {
    this.closeEntries();
    const out: CgroupEntry[] = [];
    for (const [, dir] of this.distinct()) {
      const fd = openFd(`${dir}/tasks`, constants.O_WRONLY);
      this.fds.push(fd);
      out.push({ kind: "v1", fd });
    }
    return out;
  }

  closeEntries(): void {
    for (const fd of this.fds.splice(0)) closeFd(fd);
  }

  private distinct(): [Controller, string][] {
    const seen = new Set<string>();
    return [...this.dirs].filter(([, d]) => !seen.has(d) && seen.add(d));
  }

  usage(): CgroupUsage {
    const memory = this.dirs.get("memory");
    const pids = this.dirs.get("pids");
    const cpu = this.dirs.get("cpu");
    const user = cpu !== undefined ? readNumber(`${cpu}/cpuacct.usage_user`) : undefined;
    const sys = cpu !== undefined ? readNumber(`${cpu}/cpuacct.usage_sys`) : undefined;
    return {
      memoryPeak: memory !== undefined ? readNumber(`${memory}/memory.max_usage_in_bytes`) : undefined,
      oomKills: memory !== undefined ? (readKeyed(`${memory}/memory.oom_control`).get("oom_kill") ?? 0) : 0,
      forksRefused: pids !== undefined ? (readKeyed(`${pids}/pids.events`).get("max") ?? 0) : 0,
      userMs: user !== undefined ? user / 1e6 : undefined,
      sysMs: sys !== undefined ? sys / 1e6 : undefined,
    };
  }

  remove(): void {
    this.closeEntries();
    const dirs = this.distinct().map(([, d]) => d);
    // Every process of the sandbox is in each hierarchy: one list to kill from.
    killAll(dirs[0]!, false);
    retryRemove(dirs);
  }
}

export class V1Host implements CgroupHost {
  readonly version = 1;
  readonly files = {
    memory: "cgroup v1 memory.limit_in_bytes and memory.memsw.limit_in_bytes",
    processes: "cgroup v1 pids.max",
    cpus: "cgroup v1 cpu.cfs_quota_us",
  };
  private constructor(
    private readonly hierarchies: Map<Controller, V1Hierarchy>,
    private readonly mark: string,
  ) {}

  /** The v1 host, or why there is none. */
  static open(layout: Layout, mark: string): V1Host | string {
    const found = new Map<Controller, V1Hierarchy>();
    const refused: string[] = [];
    for (const c of USED) {
      const h = layout.v1.get(c);
      if (!h) continue;
      try {
        accessSync(h.dir, constants.W_OK);
        found.set(c, h);
      } catch {
        refused.push(`${c}:${h.own}`);
      }
    }
    if (found.size === 0) {
      return refused.length
        ? `bunbox's own cgroups (${refused.join(", ")}) are not writable by uid ${process.geteuid?.()} (not delegated to it)`
        : "no cgroup v1 memory, pids or cpu hierarchy is mounted";
    }
    const host = new V1Host(found, mark);
    for (const [c, h] of found) {
      if (makeDir(base(h)) && c === "pids") writeValue(`${base(h)}/pids.max`, String(processCap()));
    }
    return host;
  }

  get where(): string {
    return [...this.hierarchies].map(([c, h]) => `${c}:${base(h)}`).join(", ");
  }

  missing(limit: keyof CgroupLimits): string | undefined {
    const c: Controller = limit === "memory" ? "memory" : limit === "cpus" ? "cpu" : "pids";
    return this.hierarchies.has(c) ? undefined : `no writable cgroup v1 ${c} hierarchy`;
  }

  create(limits: CgroupLimits): SandboxCgroup {
    const name = nextName(this.mark);
    const dirs = new Map<Controller, string>();
    try {
      for (const [c, h] of this.hierarchies) {
        if (c === "cpu" && limits.cpus === undefined) continue;
        const dir = `${base(h)}/${name}`;
        const shared = [...dirs.values()].includes(dir); // controllers mounted together
        if (!shared) makeDir(dir);
        dirs.set(c, dir);
      }
      const memory = dirs.get("memory");
      if (memory !== undefined && limits.memory !== undefined) {
        // memsw (memory + swap) may not be below the memory limit: memory first.
        writeValue(`${memory}/memory.limit_in_bytes`, String(limits.memory));
        if (readText(`${memory}/memory.memsw.limit_in_bytes`) !== undefined) {
          writeValue(`${memory}/memory.memsw.limit_in_bytes`, String(limits.memory));
        }
      }
      const pids = dirs.get("pids");
      if (pids !== undefined) writeValue(`${pids}/pids.max`, String(limits.processes));
      const cpu = dirs.get("cpu");
      if (cpu !== undefined && limits.cpus !== undefined) {
        writeValue(`${cpu}/cpu.cfs_period_us`, String(CPU_PERIOD_US));
        writeValue(`${cpu}/cpu.cfs_quota_us`, String(Math.max(1000, Math.round(limits.cpus * CPU_PERIOD_US))));
      }
    } catch (e) {
      for (const dir of new Set(dirs.values())) removeDir(dir);
      throw e instanceof ContainmentError ? e : new ContainmentError(name, 5, String(e));
    }
    const path = [...dirs].map(([c, d]) => `${c}:${d.slice(this.hierarchies.get(c)!.mount.length) || "/"}`).join(", ");
    return new V1Cgroup(dirs, path);
  }

  sweep(): void {
    const seen = new Set<string>();
    const bases = [...this.hierarchies.values()].map(base).filter((b) => !seen.has(b) && seen.add(b));
    for (const b of bases) sweepDir(b, (dir) => killAll(dir, false));
  }
}

function base(h: V1Hierarchy): string {
  return `${h.dir}/bunbox`;
}
