/**
 * Resource limits of one run, kept apart from the policy (as in Sandbox2).
 * Defaults are Sandbox2's: unlimited address space, 1024 s of CPU, 8 GiB files,
 * 1024 open files, no core files, 120 s of wall time; and, because a pid
 * namespace alone does not stop a fork bomb, 4096 processes.
 *
 * rlimits apply per process (CPU, address space, file size) or per user in
 * the sandbox's own user namespace (processes). A limit above bunbox's own
 * hard limit is lowered to it: the sandboxee has no capability to raise one.
 */
import { UsageError } from "../errors.ts";
import { type NetLimits, netLimits } from "../net/limits.ts";

/**
 * How long a run's set-up may take: clone to exec (the shim), the
 * sandbox-me-here handshake when there is no wall-time limit, a fork
 * server's word that it is ready.
 */
export const SETUP_TIMEOUT_MS = 10_000;

export const RLIMIT = { CPU: 0, FSIZE: 1, DATA: 2, STACK: 3, CORE: 4, NPROC: 6, NOFILE: 7, AS: 9 } as const;

export interface LimitsInit {
  /** RLIMIT_AS in bytes (Infinity: none). A crude bound on memory. */
  addressSpace: number;
  /** RLIMIT_CPU in seconds: SIGXCPU at the limit, SIGKILL one second later. */
  cpuSeconds: number;
  /** RLIMIT_FSIZE in bytes: the largest file a process may write (SIGXFSZ past it). */
  fileSize: number;
  /** RLIMIT_NOFILE: open file descriptors per process. */
  openFiles: number;
  /** RLIMIT_NPROC: processes and threads of the sandbox's user (0: no fork at all). */
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
      if (value !== Infinity && !Number.isInteger(value) && key !== "cpuSeconds") {
        throw new UsageError(`limits.${key}`, `must be a whole number, not ${value}`);
      }
    }
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

  /** [resource, soft, hard] for the spawn request; Infinity is RLIM_INFINITY. */
  rlimits(): [number, bigint, bigint][] {
    const inf = 0xffffffffffffffffn;
    const v = (n: number) => (n === Infinity ? inf : BigInt(Math.floor(n)));
    const cpu = Math.ceil(this.cpuSeconds);
    return [
      [RLIMIT.AS, v(this.addressSpace), v(this.addressSpace)],
      // SIGXCPU at the soft limit; the hard limit one second on is SIGKILL.
      [RLIMIT.CPU, v(cpu || Infinity), cpu ? v(cpu + 1) : inf],
      [RLIMIT.FSIZE, v(this.fileSize), v(this.fileSize)],
      [RLIMIT.NOFILE, v(this.openFiles), v(this.openFiles)],
      [RLIMIT.NPROC, v(this.processes), v(this.processes)],
      [RLIMIT.CORE, v(this.core), v(this.core)],
    ];
  }
}
