/**
 * Resource limits of one run, kept apart from the policy (as in Sandbox2).
 * Defaults are Sandbox2's: unlimited memory and address space, 1024 s of
 * CPU, 8 GiB files, 1024 open files, no core files, 120 s of wall time; and,
 * because a pid namespace alone does not stop a fork bomb, 4096 processes.
 *
 * Memory, CPUs and processes bound the whole sandbox, through its cgroup
 * (src/containment/: where none can be made, a run that asks for memory or
 * CPUs fails unless weaker limits are accepted). The rlimits apply per
 * process (CPU time, address space, file size, open files) or per user in
 * the sandbox's own user namespace (processes). A limit above bunbox's own
 * hard limit is lowered to it: the sandboxee has no capability to raise one.
 */
import { UsageError } from "../errors.ts";
import { type NetLimits, netLimits } from "../net/limits.ts";
import { formatSize } from "./units.ts";

/**
 * How long a run's set-up may take: clone to exec (the shim), the
 * sandbox-me-here handshake when there is no wall-time limit, a fork
 * server's word that it is ready.
 */
export const SETUP_TIMEOUT_MS = 10_000;

/**
 * The smallest memory limit: the sandbox's cgroup also counts the kernel
 * memory of its init and the sandboxee's first pages.
 */
export const MIN_MEMORY = 4 * 1024 ** 2;
/**
 * The smallest address-space limit (as nsjail, whose unit is the MiB): exec
 * alone maps a 128 KiB stack, the vDSO and the program before its first
 * instruction, and a limit it overruns kills the program with SIGSEGV in
 * exec, which looks like the program's own fault. A program written without
 * libc starts in 1 MiB; a static C program needs about 3 MiB.
 */
export const MIN_ADDRESS_SPACE = 1024 ** 2;
/**
 * The fewest open files that can work: stdin, stdout, stderr, and the
 * seccomp listener the sandboxee itself creates, under its own limit, just
 * before exec (csrc/child_b.c install_filter); with fewer, seccomp() fails
 * with EMFILE at set-up.
 */
export const MIN_OPEN_FILES = 4;

/** A memory limit (Infinity: none) the sandbox can start under; `shown` is the value as the user wrote it. */
export function checkMemory(bytes: number, subject: string, shown: string | number = bytes): number {
  if (bytes < MIN_MEMORY) {
    throw new UsageError(subject, `${shown} is below ${formatSize(MIN_MEMORY)}, the smallest limit bunbox accepts: the sandbox's cgroup also counts the kernel memory of its init and the sandboxee's first pages`);
  }
  return bytes;
}

/** An address-space limit (Infinity: none) a program can be exec'd under. */
export function checkAddressSpace(bytes: number, subject: string, shown: string | number = bytes): number {
  if (bytes < MIN_ADDRESS_SPACE) {
    throw new UsageError(subject, `${shown} is below ${formatSize(MIN_ADDRESS_SPACE)}, the smallest limit bunbox accepts: exec alone maps a 128K stack, the vDSO and the program (a C program needs a few M)`);
  }
  return bytes;
}

/** An open-files limit the sandboxee can start under. */
export function checkOpenFiles(n: number, subject: string): number {
  if (n < MIN_OPEN_FILES) {
    throw new UsageError(subject, `${n} cannot work: the sandboxee needs stdin, stdout, stderr and the seccomp listener it creates before exec (at least ${MIN_OPEN_FILES})`);
  }
  return n;
}

/** The most processes a limit may name: PID_MAX_LIMIT on 64-bit (pids.max refuses more with EINVAL). */
export const MAX_PROCESSES = 4 * 1024 * 1024;
/**
 * The fewest CPUs a limit may name: 1 ms of quota per 100 ms period, the
 * smallest quota the kernel takes (cpu.max, cpu.cfs_quota_us). Less would be
 * raised to it, a weaker limit than asked for, so it is refused instead.
 */
export const MIN_CPUS = 0.01;
/** The most CPUs a limit may name (the kernel's NR_CPUS ceiling). */
export const MAX_CPUS = 4096;

/** A CPU limit (0: none) that the cgroup can enforce as given; subject names the option or field. */
export function checkCpus(n: number, subject: string): number {
  if (n !== 0 && !(n >= MIN_CPUS && n <= MAX_CPUS)) {
    throw new UsageError(subject, `${n} CPUs cannot be enforced: a CPU limit is from ${MIN_CPUS} (1 ms of each 100 ms, the kernel's smallest quota) to ${MAX_CPUS}`);
  }
  return n;
}

/** A process limit the cgroup's pids.max takes; subject names the option or field. */
export function checkProcesses(n: number, subject: string): number {
  if (n > MAX_PROCESSES) throw new UsageError(subject, `${n} is more processes than Linux can have (at most ${MAX_PROCESSES})`);
  return n;
}

/**
 * The sandbox cgroup's pids.max for a process limit: init and the sandboxee
 * are two tasks before any fork, so "0: no fork" (and 1) is 2. RLIMIT_NPROC,
 * the second line, stays one above it: below, it refused the first fork
 * before the cgroup could count it, and the Result said nothing of it.
 */
export function pidsMax(processes: number): number {
  return Math.max(2, processes);
}

export const RLIMIT = { CPU: 0, FSIZE: 1, DATA: 2, STACK: 3, CORE: 4, NPROC: 6, NOFILE: 7, AS: 9 } as const;

export interface LimitsInit {
  /**
   * Memory of the whole sandbox, in bytes: every process's RAM, its shared
   * memory, tmpfs and memfd pages, and the kernel memory its cgroup counts,
   * with no swap past it (Infinity: none). At the limit the kernel kills
   * (cgroup v2: the whole sandbox), and the Result says so.
   */
  memory: number;
  /** CPU time per wall-clock time of the whole sandbox, in CPUs (1.5: 150 ms each 100 ms); 0: none. */
  cpus: number;
  /** RLIMIT_AS in bytes, per process (Infinity: none): address space, which is not memory (V8 reserves gigabytes it never uses). */
  addressSpace: number;
  /** RLIMIT_CPU in seconds: SIGXCPU at the limit, SIGKILL one second later. */
  cpuSeconds: number;
  /** RLIMIT_FSIZE in bytes: the largest file a process may write (SIGXFSZ past it). */
  fileSize: number;
  /** RLIMIT_NOFILE: open file descriptors per process. */
  openFiles: number;
  /**
   * Processes and threads of the whole sandbox, its init included (pids.max
   * of its cgroup, and RLIMIT_NPROC, which counts per user namespace); 0 or
   * 1: the sandboxee cannot fork.
   */
  processes: number;
  /** RLIMIT_CORE in bytes. */
  core: number;
  /** Wall-clock limit in milliseconds, enforced by the monitor; 0: none. */
  wallTimeMs: number;
  /** On the wall-time limit, SIGTERM first and SIGKILL this many ms later; 0: SIGKILL at once. */
  graceMs: number;
  /** --net proxy: the proxy's limits for the run (src/net/limits.ts; defaults for those not given). */
  net?: Partial<NetLimits>;
}

export const DEFAULT_LIMITS: Readonly<LimitsInit> = Object.freeze({
  memory: Infinity,
  cpus: 0,
  addressSpace: Infinity,
  cpuSeconds: 1024,
  fileSize: 8 * 1024 ** 3,
  openFiles: 1024,
  processes: 4096,
  core: 0,
  wallTimeMs: 120_000,
  graceMs: 0,
});

export class Limits implements LimitsInit {
  memory: number;
  cpus: number;
  addressSpace: number;
  cpuSeconds: number;
  fileSize: number;
  openFiles: number;
  processes: number;
  core: number;
  wallTimeMs: number;
  graceMs: number;
  net: NetLimits;

  constructor(init: Partial<LimitsInit> = {}) {
    const { net, ...all } = { ...DEFAULT_LIMITS, ...init };
    for (const [key, value] of Object.entries(all)) {
      if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
        throw new UsageError(`limits.${key}`, `must be a non-negative number, not ${value}`);
      }
      if (value !== Infinity && !Number.isInteger(value) && key !== "cpuSeconds" && key !== "cpus") {
        throw new UsageError(`limits.${key}`, `must be a whole number, not ${value}`);
      }
    }
    if (all.cpus === Infinity) throw new UsageError("limits.cpus", "must be a number of CPUs, not Infinity (0: no limit)");
    checkCpus(all.cpus, "limits.cpus");
    checkProcesses(all.processes, "limits.processes");
    checkMemory(all.memory, "limits.memory");
    checkAddressSpace(all.addressSpace, "limits.addressSpace");
    checkOpenFiles(all.openFiles, "limits.openFiles");
    this.memory = all.memory;
    this.cpus = all.cpus;
    this.addressSpace = all.addressSpace;
    this.cpuSeconds = all.cpuSeconds;
    this.fileSize = all.fileSize;
    this.openFiles = all.openFiles;
    this.processes = all.processes;
    this.core = all.core;
    this.wallTimeMs = all.wallTimeMs;
    this.graceMs = all.graceMs;
    this.net = netLimits(net);
  }

  /**
   * [resource, soft, hard] for the spawn request; Infinity is RLIM_INFINITY.
   * memoryAsAddressSpace: no cgroup can bound the memory and weaker limits
   * were accepted, so it bounds each process's address space instead.
   * processesByCgroup: the cgroup's pids.max bounds the processes, and the
   * rlimit stays one above it as a second line, so that the cgroup refuses
   * first and counts the refusal (pids.events) for the Result; unless
   * nprocCountsOthers: the rlimit would count processes outside the sandbox
   * too (containment.ts, nprocPerUserNamespace), and is left unlimited.
   */
  rlimits(opts: { memoryAsAddressSpace?: boolean; processesByCgroup?: boolean; nprocCountsOthers?: boolean } = {}): [number, bigint, bigint][] {
    const inf = 0xffffffffffffffffn;
    const v = (n: number) => (n === Infinity ? inf : BigInt(Math.floor(n)));
    const cpu = Math.ceil(this.cpuSeconds);
    const as = opts.memoryAsAddressSpace ? Math.min(this.addressSpace, this.memory) : this.addressSpace;
    const nproc = opts.processesByCgroup ? (opts.nprocCountsOthers ? Infinity : pidsMax(this.processes) + 1) : this.processes;
    return [
      [RLIMIT.AS, v(as), v(as)],
      // SIGXCPU at the soft limit; the hard limit one second on is SIGKILL.
      [RLIMIT.CPU, v(cpu || Infinity), cpu ? v(cpu + 1) : inf],
      [RLIMIT.FSIZE, v(this.fileSize), v(this.fileSize)],
      [RLIMIT.NOFILE, v(this.openFiles), v(this.openFiles)],
      [RLIMIT.NPROC, v(nproc), v(nproc)],
      [RLIMIT.CORE, v(this.core), v(this.core)],
    ];
  }
}
