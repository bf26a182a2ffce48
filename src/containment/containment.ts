/**
 * How each run is contained (README.md "Containment"): its cgroup (where one
 * can be made: cgroup.ts), its kernel uid (as root: uids.ts), the limits of
 * its user namespace, and how each limit it asked for is enforced. The
 * Runtime holds one Containment; a Sandbox asks it for a plan when it
 * starts (a limit that cannot be enforced is a UsageError then, unless
 * weaker limits were accepted), and the spawn for the run's cgroup and uid.
 */
import { UsageError } from "../errors.ts";
import { type Limits, pidsMax } from "../sandbox/limits.ts";
import { formatBytes, formatSize } from "../sandbox/units.ts";
import { type CgroupHost, type CgroupUsage, type SandboxCgroup } from "./cgroup.ts";
import { readText } from "../read-text.ts";
import { V1Host } from "./cgroup-v1.ts";
import { V2Host } from "./cgroup-v2.ts";
import { readLayout } from "./hierarchy.ts";
import { ownMark } from "./owner.ts";
import { checkUidRange, type HeldUid, UidAllocator, type UidRange } from "./uids.ts";

/** The kernel ids of an unprivileged sandboxee, inside, when bunbox runs as root. */
export const NOBODY = 65534;

export interface ContainmentOptions {
  /**
   * false: no cgroups (no accounting, no limits or cleanup by cgroup);
   * default: one per sandbox where possible, v2 where it has the memory and
   * pids controllers, else v1, else v2 with what it has; "v1", "v2": only
   * that version.
   */
  cgroups?: boolean | "v1" | "v2";
  /** The kernel uids of sandboxes bunbox starts as root, one each (uids.ts). */
  uidRange?: UidRange;
}

/**
 * Whether RLIMIT_NPROC counts the processes of a user namespace (ucounts,
 * Linux 5.14). Before, it counts every process of the real uid, wherever it
 * runs: with the caller's own uid (not root's uid of its own for the
 * sandbox), a limit one above pids.max would count the caller's other
 * processes too and refuse the sandbox's forks long before pids.max does
 * (found on 5.10 by the VM rig's user cases).
 */
export function nprocPerUserNamespace(kernel = readText("/proc/sys/kernel/osrelease") ?? ""): boolean {
  const [major = 0, minor = 0] = kernel.split(".").map((n) => Number.parseInt(n, 10));
  return major > 5 || (major === 5 && minor >= 14);
}

/** What the caller's limits are called in messages (the CLI's options, or the library's fields). */
export interface LimitNames {
  memory: string;
  cpus: string;
  weaker: string;
}

export const LIBRARY_NAMES: LimitNames = { memory: "limits.memory", cpus: "limits.cpus", weaker: "allowWeakerLimits" };

/** One limit of a run and how it is enforced. */
export interface Enforced {
  value: number;
  /** "cgroup v1 pids.max", "RLIMIT_AS per process", … */
  by: string;
}

/** What a run gets, decided before it starts: -v prints it, the Result carries it. */
export interface ContainmentPlan {
  cgroup: CgroupHost | undefined;
  /** Why the run has no cgroup. */
  noCgroup: string | undefined;
  limits: { memory?: Enforced; cpus?: Enforced; processes: Enforced; addressSpace?: Enforced };
  /** --memory-limit falls back to RLIMIT_AS per process (weaker limits were accepted). */
  memoryAsAddressSpace: boolean;
  /** What accepting weaker limits gave away, for -v. */
  weakened: string[];
}

/** The Result's account of how the run was contained and what it used (README.md "Containment"). */
export interface ContainmentInfo {
  cgroup: "v1" | "v2" | "none";
  /** The sandbox's cgroup (per controller on v1). */
  cgroupPath?: string;
  noCgroup?: string;
  /** The sandboxee's kernel uid (its own, as root). */
  uid: number;
  limits: ContainmentPlan["limits"];
  /** Most memory the whole sandbox held at once, bytes (its cgroup's peak). */
  memoryPeakBytes?: number;
  /** Processes the kernel killed at the memory limit. */
  oomKills: number;
  /** Forks the process limit refused. */
  forksRefused: number;
}

/** "memory limit of 256 MiB reached" when the cgroup's OOM killer acted: the reason a SIGKILL gets in the Result. */
export function memoryLimitReason(c: ContainmentInfo | undefined): string | undefined {
  if (!c || c.oomKills === 0) return undefined;
  return c.limits.memory ? `memory limit of ${formatBytes(c.limits.memory.value)} reached` : "out of memory";
}

/**
 * The limits of the sandbox's own user namespace (/proc/sys/user/), written
 * by its init before it drops its capabilities: half of what the host allows
 * one user of inotify and fanotify, so that a sandbox run by a normal user
 * leaves that user half of their own budget, and at most 64 namespaces of
 * each kind (none can be made unless the policy relaxes the safety rules).
 * The kernel checks each count at every level up to the host's, so these
 * only ever lower a limit.
 */
function userNamespaceLimits(): [string, string][] {
  const out: [string, string][] = [];
  const host = (name: string) => {
    const text = readText(`/proc/sys/user/${name}`);
    return text === undefined ? undefined : Number(text.trim()); // undefined: not on this kernel
  };
  for (const name of ["max_inotify_instances", "max_inotify_watches", "max_fanotify_groups", "max_fanotify_marks"]) {
    const v = host(name);
    if (v !== undefined && v > 1) out.push([`/proc/sys/user/${name}`, String(Math.floor(v / 2))]);
  }
  for (const kind of ["user", "pid", "net", "mnt", "ipc", "uts", "cgroup", "time"]) {
    const v = host(`max_${kind}_namespaces`);
    if (v !== undefined) out.push([`/proc/sys/user/max_${kind}_namespaces`, String(Math.min(v, 64))]);
  }
  return out;
}

/** RLIMIT_SIGPENDING, RLIMIT_MSGQUEUE: counted per user namespace too (Linux 5.14), and the same half kept back. */
const RLIMIT_SIGPENDING = 11;
const RLIMIT_MSGQUEUE = 12;

/**
 * Pending signals (POSIX timers take one each) and message-queue bytes: the
 * sandbox's processes get half of bunbox's own soft limits (as the inotify
 * limits above), so that one run by a normal user leaves that user half.
 */
function userRlimits(): [number, bigint, bigint][] {
  const text = readText("/proc/self/limits");
  if (text === undefined) return [];
  const out: [number, bigint, bigint][] = [];
  for (const [resource, label] of [[RLIMIT_SIGPENDING, "Max pending signals"], [RLIMIT_MSGQUEUE, "Max msgqueue size"]] as const) {
    const soft = new RegExp(`^${label}\\s+(\\d+)`, "m").exec(text)?.[1];
    if (soft === undefined) continue; // unlimited: nothing to halve
    const half = BigInt(soft) / 2n;
    out.push([resource, half, half]);
  }
  return out;
}

export class Containment {
  private host: CgroupHost | string | undefined;
  private uids: UidAllocator | undefined;
  private limitsOfUserns: { sysctls: [string, string][]; rlimits: [number, bigint, bigint][] } | undefined;

  constructor(private readonly options: ContainmentOptions = {}) {
    if (options.uidRange) checkUidRange(options.uidRange, "uidRange");
  }

  /** The place for cgroups, found (and swept) on first use, or why there is none. */
  cgroupHost(): CgroupHost | string {
    if (this.host === undefined) {
      const want = this.options.cgroups ?? true;
      this.host = want === false ? "cgroups are turned off for this runtime" : findHost(want === true ? "auto" : want);
      if (typeof this.host !== "string") this.host.sweep();
    }
    return this.host;
  }

  /**
   * How a run with these limits is contained; a UsageError (naming the
   * limit by `names`) when it asks for one that cannot be enforced, unless
   * `allowWeaker`.
   */
  plan(limits: Limits, allowWeaker: boolean, names: LimitNames = LIBRARY_NAMES): ContainmentPlan {
    const found = this.cgroupHost();
    const host = typeof found === "string" ? undefined : found;
    const noCgroup = typeof found === "string" ? found : undefined;
    const plan: ContainmentPlan = {
      cgroup: host,
      noCgroup,
      limits: { processes: { value: limits.processes, by: "" } },
      memoryAsAddressSpace: false,
      weakened: [],
    };
    const why = (limit: "memory" | "cpus") => noCgroup ?? host!.missing(limit);
    const refuse = (name: string, what: string, reason: string, weaker: string) =>
      new UsageError(
        name,
        `${what} cannot be enforced: ${reason}. Run bunbox as root, or in a cgroup delegated to it ` +
          `(systemd-run --user --scope -p Delegate=yes bunbox …), or accept ${weaker} with ${names.weaker}`,
      );
    if (limits.memory !== Infinity) {
      const reason = why("memory");
      if (!reason) {
        plan.limits.memory = { value: limits.memory, by: host!.files.memory };
      } else if (allowWeaker) {
        plan.memoryAsAddressSpace = true;
        plan.limits.memory = { value: limits.memory, by: "RLIMIT_AS per process (weaker limits accepted)" };
        plan.weakened.push(`${names.weaker}: ${reason}; the memory limit of ${formatSize(limits.memory)} bounds each process's address space, not the sandbox (shared memory, tmpfs and memfds are not counted)`);
      } else {
        throw refuse(names.memory, `a memory limit for the whole sandbox (${formatSize(limits.memory)})`, reason, "a per-process address-space limit instead");
      }
    }
    if (limits.cpus > 0) {
      const reason = why("cpus");
      if (!reason) {
        plan.limits.cpus = { value: limits.cpus, by: host!.files.cpus };
      } else if (allowWeaker) {
        plan.limits.cpus = { value: limits.cpus, by: "not enforced (weaker limits accepted)" };
        plan.weakened.push(`${names.weaker}: ${reason}; the CPU limit of ${limits.cpus} is not enforced`);
      } else {
        throw refuse(names.cpus, `a CPU limit (${limits.cpus})`, reason, "no CPU limit");
      }
    }
    // Without a pids controller, RLIMIT_NPROC still counts the sandbox's tasks:
    // since Linux 5.14 the count is per user namespace, and each sandbox has its own.
    plan.limits.processes.by = host && !host.missing("processes")
      ? process.geteuid?.() !== 0 && !nprocPerUserNamespace() ? host.files.processes : `${host.files.processes} and RLIMIT_NPROC`
      : "RLIMIT_NPROC in the sandbox's user namespace";
    if (limits.addressSpace !== Infinity) plan.limits.addressSpace = { value: limits.addressSpace, by: "RLIMIT_AS per process" };
    return plan;
  }

  /** The run's cgroup (throws ContainmentError) and kernel ids. */
  prepare(plan: ContainmentPlan, limits: Limits): RunContainment {
    let uid: HeldUid | undefined;
    if (process.geteuid?.() === 0) {
      this.uids ??= new UidAllocator(this.options.uidRange);
      uid = this.uids.allocate();
    }
    let cgroup: SandboxCgroup | undefined;
    try {
      cgroup = plan.cgroup?.create({
        memory: plan.limits.memory && !plan.memoryAsAddressSpace ? limits.memory : undefined,
        processes: pidsMax(limits.processes),
        cpus: plan.limits.cpus && plan.cgroup && !plan.cgroup.missing("cpus") ? limits.cpus : undefined,
      });
    } catch (e) {
      uid?.release();
      throw e;
    }
    this.limitsOfUserns ??= { sysctls: userNamespaceLimits(), rlimits: userRlimits() };
    return new RunContainment(plan, cgroup, uid, this.limitsOfUserns.sysctls, this.limitsOfUserns.rlimits);
  }
}

/**
 * The place for sandboxes' cgroups (see ContainmentOptions.cgroups for the
 * order), or why there is none. A v2 hierarchy without the memory and pids
 * controllers (the "unified" one of a host whose controllers are all on v1)
 * is the last choice: it still kills and counts CPU, but limits nothing.
 */
function findHost(want: "auto" | "v1" | "v2"): CgroupHost | string {
  const layout = readLayout();
  const mark = ownMark();
  const reasons: string[] = [];
  const v2 = () => {
    const host = layout.v2 ? V2Host.open(layout, mark) : "no cgroup2 hierarchy is mounted";
    if (typeof host === "string") reasons.push(`cgroup v2: ${host}`);
    return host;
  };
  const complete = layout.v2 !== undefined && V2Host.complete(layout.v2);
  if (want === "v2") {
    const host = v2();
    return typeof host === "string" ? reasons.join("; ") : host;
  }
  if (want === "auto" && complete) {
    const host = v2();
    if (typeof host !== "string") return host;
  }
  const v1 = layout.v1.size > 0 ? V1Host.open(layout, mark) : "no cgroup v1 hierarchy is mounted";
  if (typeof v1 !== "string") return v1;
  reasons.push(`cgroup v1: ${v1}`);
  if (want === "auto" && !complete) {
    const host = v2();
    if (typeof host !== "string") return host;
  }
  return reasons.join("; ");
}

/** One run's share: its cgroup and its uid, from the spawn to the Result. */
export class RunContainment {
  private released = false;

  constructor(
    readonly plan: ContainmentPlan,
    readonly cgroup: SandboxCgroup | undefined,
    private readonly held: HeldUid | undefined,
    /** The sandbox's user-namespace limits: [path, value] for its init to write. */
    readonly userLimits: readonly [string, string][],
    /** And [resource, soft, hard] for the sandboxee's rlimits. */
    readonly userRlimits: readonly [number, bigint, bigint][],
  ) {}

  /** Whether its cgroup's pids.max bounds the processes. */
  get processesByCgroup(): boolean {
    return this.cgroup !== undefined && this.plan.cgroup?.missing("processes") === undefined;
  }

  /** Whether RLIMIT_NPROC would count processes outside the sandbox: its uid is the caller's, counted per uid. */
  get nprocCountsOthers(): boolean {
    return this.held === undefined && !nprocPerUserNamespace();
  }

  /** The sandboxee's kernel uid and gid (as root: its own; else the caller's). */
  get uid(): number {
    return this.held?.uid ?? process.geteuid?.() ?? 0;
  }
  get gid(): number {
    return this.held?.uid ?? process.getegid?.() ?? 0;
  }

  /** The Result's account, with what the cgroup counted once the sandbox ended. */
  collect(): { info: ContainmentInfo; usage: CgroupUsage | undefined } {
    const usage = this.cgroup?.usage();
    const info: ContainmentInfo = {
      cgroup: this.cgroup ? (this.cgroup.version === 2 ? "v2" : "v1") : "none",
      ...(this.cgroup ? { cgroupPath: this.cgroup.path } : {}),
      ...(this.plan.noCgroup ? { noCgroup: this.plan.noCgroup } : {}),
      uid: this.uid,
      limits: this.plan.limits,
      ...(usage?.memoryPeak !== undefined ? { memoryPeakBytes: usage.memoryPeak } : {}),
      oomKills: usage?.oomKills ?? 0,
      forksRefused: usage?.forksRefused ?? 0,
    };
    return { info, usage };
  }

  /** After the last process of the sandbox is gone: removes its cgroup, lets go of its uid. */
  release(): void {
    if (this.released) return;
    this.released = true;
    try {
      this.cgroup?.remove();
    } finally {
      this.held?.release();
    }
  }
}
