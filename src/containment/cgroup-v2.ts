/**
 * cgroup v2 (cgroup.ts says what both versions share). A sandbox's cgroup
 * is one directory, where the shim's clone3 starts the sandbox's init
 * (CLONE_INTO_CGROUP, Linux 5.7):
 *
 *   memory   memory.max; memory.swap.max 0 (the limit is not dodged by
 *            swapping, and without one the sandbox cannot make the host swap
 *            for it); memory.oom.group 1 (an OOM kill takes the whole
 *            sandbox); memory.peak (5.19), memory.events oom_kill
 *   pids     pids.max; pids.events max (forks refused)
 *   cpu      cpu.max; cpu.stat (counted without the controller too)
 *
 * Where: v2 lets a cgroup hand controllers to its children only while it
 * holds no process itself ("no internal processes"), and bunbox's own cgroup
 * holds bunbox. So, as nsjail does: if enabling them there fails with EBUSY
 * and bunbox is alone in its cgroup, bunbox moves itself to a leaf of it
 * ("MARK.0") and tries again; if others share it (a login shell's scope), a
 * root bunbox falls back to the top of the hierarchy when that is the host's
 * root cgroup (exempt from the rule): /sys/fs/cgroup/bunbox. As a normal
 * user it needs a delegated cgroup of its own (systemd-run --user --scope
 * -p Delegate=yes).
 */
import { accessSync, constants, existsSync } from "../native/fs.ts";
import { closeFd } from "../native/sys.ts";
import {
  type CgroupEntry, type CgroupHost, type CgroupLimits, type CgroupUsage, type SandboxCgroup, makeDir,
  nextName, openFd, readKeyed, readNumber, removeDir, sweepDir, writeValue,
} from "./cgroup.ts";
import { readText } from "../read-text.ts";
import { ContainmentError } from "./error.ts";
import type { Hierarchy, Layout } from "./hierarchy.ts";
import { killAll, othersIn, processCap, retryRemove } from "./kill.ts";

const WANTED = ["memory", "pids", "cpu"];
const CPU_PERIOD_US = 100_000;

class V2Cgroup implements SandboxCgroup {
  readonly version = 2;
  private fd = -1;

  constructor(
    private readonly dir: string,
    readonly path: string,
  ) {}

  entries(): CgroupEntry[] {
    this.closeEntries();
    this.fd = openFd(this.dir, constants.O_RDONLY | constants.O_DIRECTORY);
    return [{ kind: "v2", fd: this.fd }];
  }

  closeEntries(): void {
    if (this.fd >= 0) closeFd(this.fd);
    this.fd = -1;
  }

  usage(): CgroupUsage {
    const cpu = readKeyed(`${this.dir}/cpu.stat`);
    const user = cpu.get("user_usec");
    const sys = cpu.get("system_usec");
    return {
      memoryPeak: readNumber(`${this.dir}/memory.peak`),
      oomKills: readKeyed(`${this.dir}/memory.events`).get("oom_kill") ?? 0,
      forksRefused: readKeyed(`${this.dir}/pids.events`).get("max") ?? 0,
      userMs: user !== undefined ? user / 1000 : undefined,
      sysMs: sys !== undefined ? sys / 1000 : undefined,
    };
  }

  remove(): void {
    this.closeEntries();
    killAll(this.dir, true);
    retryRemove([this.dir]);
  }
}

function words(path: string): string[] {
  return (readText(path) ?? "").split(/\s+/).filter(Boolean);
}

function isErrno(e: unknown, name: string): boolean {
  return e instanceof ContainmentError && e.errno === ({ EBUSY: 16, EACCES: 13, EPERM: 1 } as Record<string, number>)[name];
}

/** Hands `want` to the children of `dir` (cgroup.subtree_control); throws ContainmentError. */
function delegate(dir: string, want: string[]): void {
  const on = words(`${dir}/cgroup.subtree_control`);
  const missing = want.filter((c) => !on.includes(c));
  if (missing.length) writeValue(`${dir}/cgroup.subtree_control`, missing.map((c) => `+${c}`).join(" "));
}

/** The root cgroup of the host has no cgroup.type: only it may hold processes and delegate controllers. */
function isHostRoot(dir: string): boolean {
  return !existsSync(`${dir}/cgroup.type`);
}

function aloneIn(dir: string): boolean {
  return othersIn(dir)?.length === 0;
}

export class V2Host implements CgroupHost {
  readonly version = 2;
  readonly files = {
    memory: "cgroup v2 memory.max and memory.swap.max 0",
    processes: "cgroup v2 pids.max",
    cpus: "cgroup v2 cpu.max",
  };

  private constructor(
    private readonly base: string,
    private readonly controllers: string[],
    private readonly mount: string,
    private readonly mark: string,
    /** Where bunbox may have left a leaf of its own (MARK.0): its own cgroup. */
    private readonly own: string,
  ) {}

  /** The v2 host, or why there is none. */
  static open(layout: Layout, mark: string): V2Host | string {
    const h = layout.v2;
    if (!h) return "no cgroup2 hierarchy is mounted";
    const available = words(`${h.dir}/cgroup.controllers`);
    const want = WANTED.filter((c) => available.includes(c));
    let parent: string;
    try {
      parent = V2Host.parent(h, want, mark);
    } catch (e) {
      if (!(e instanceof ContainmentError)) throw e;
      if (isErrno(e, "EACCES") || isErrno(e, "EPERM")) {
        return `bunbox's cgroup ${h.own} is not writable by uid ${process.geteuid?.()} (not delegated to it: systemd-run --user --scope -p Delegate=yes bunbox …)`;
      }
      return e.message;
    }
    const base = `${parent}/bunbox`;
    try {
      const made = makeDir(base);
      delegate(base, want);
      if (made && want.includes("pids")) writeValue(`${base}/pids.max`, String(processCap()));
    } catch (e) {
      if (e instanceof ContainmentError) return e.message;
      throw e;
    }
    return new V2Host(base, want, h.mount, mark, h.dir);
  }

  /** The cgroup whose `bunbox` child holds the sandboxes (see the top of this file). */
  private static parent(h: Hierarchy, want: string[], mark: string): string {
    try {
      accessSync(h.dir, constants.W_OK);
    } catch {
      throw new ContainmentError(h.dir, 13, `${h.dir}: not writable`);
    }
    try {
      delegate(h.dir, want);
      return h.dir;
    } catch (e) {
      if (!isErrno(e, "EBUSY")) throw e;
    }
    if (aloneIn(h.dir)) {
      const leaf = `${h.dir}/${mark}.0`;
      makeDir(leaf);
      writeValue(`${leaf}/cgroup.procs`, String(process.pid));
      delegate(h.dir, want);
      return h.dir;
    }
    if (process.geteuid?.() === 0 && isHostRoot(h.mount)) {
      delegate(h.mount, want);
      return h.mount;
    }
    throw new ContainmentError(
      h.dir,
      16,
      `bunbox's cgroup ${h.own} holds other processes, so cgroup v2 lets it give no controllers to a child ("no internal processes"): ` +
        "run bunbox in a cgroup of its own (systemd-run --scope -p Delegate=yes bunbox …)",
    );
  }

  get where(): string {
    return this.base;
  }

  /** Whether bunbox's cgroup in h has the controllers a sandbox's limits need most (else v1 may serve better). */
  static complete(h: Hierarchy): boolean {
    const available = words(`${h.dir}/cgroup.controllers`);
    return available.includes("memory") && available.includes("pids");
  }

  missing(limit: keyof CgroupLimits): string | undefined {
    const c = limit === "memory" ? "memory" : limit === "cpus" ? "cpu" : "pids";
    return this.controllers.includes(c) ? undefined : `bunbox's cgroup v2 has no ${c} controller (cgroup.controllers: ${this.controllers.join(" ") || "none"})`;
  }

  create(limits: CgroupLimits): SandboxCgroup {
    const dir = `${this.base}/${nextName(this.mark)}`;
    makeDir(dir);
    try {
      if (this.controllers.includes("memory")) {
        if (limits.memory !== undefined) writeValue(`${dir}/memory.max`, String(limits.memory));
        // Never swapped, limit or not: a sandbox cannot make the host swap for it (absent without swap accounting).
        if (readText(`${dir}/memory.swap.max`) !== undefined) writeValue(`${dir}/memory.swap.max`, "0");
        if (readText(`${dir}/memory.oom.group`) !== undefined) writeValue(`${dir}/memory.oom.group`, "1");
      }
      if (this.controllers.includes("pids")) writeValue(`${dir}/pids.max`, String(limits.processes));
      if (limits.cpus !== undefined) {
        writeValue(`${dir}/cpu.max`, `${Math.max(1000, Math.round(limits.cpus * CPU_PERIOD_US))} ${CPU_PERIOD_US}`);
      }
    } catch (e) {
      removeDir(dir);
      throw e;
    }
    return new V2Cgroup(dir, dir.slice(this.mount.length) || "/");
  }

  sweep(): void {
    sweepDir(this.base, (dir) => killAll(dir, true));
    // Leaves a dead bunbox moved itself to: removed once empty, never emptied
    // (what runs there was started by that bunbox, outside any sandbox).
    sweepDir(this.own, () => {});
  }
}
