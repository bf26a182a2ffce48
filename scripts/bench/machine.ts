/**
 * Facts about the machine a run was made on, recorded next to its figures:
 * start-up and syscall costs depend on the kernel, the CPU count and the
 * CPU's mitigations (page-table isolation makes every syscall several times
 * dearer), so figures from two machines are only comparable with these.
 */
import { cpus, loadavg, release, totalmem } from "node:os";
import { readFileSync } from "node:fs";

/** Share of the CPUs busy with other work above which a run is flagged as skewed. */
export const BUSY = 0.15;

export interface MachineFacts {
  date: string;
  kernel: string;
  cpus: number;
  cpuModel: string;
  /** Whether the CPU reports running under a hypervisor. */
  virtualized: boolean;
  /** /sys/devices/system/cpu/vulnerabilities/meltdown, e.g. "Mitigation: PTI". */
  meltdown: string;
  memoryGiB: number;
  /** 1, 5 and 15 minute load averages when the run began. */
  loadAverageAtStart: number[];
  /**
   * Share of all CPUs busy during half a second before the run, while the
   * benchmark itself was idle: other work on the machine, which skews every
   * figure (0.5 on 2 CPUs: one core was taken).
   */
  busyBeforeStart: number;
  bun: string;
  bunbox: string;
  bwrap: string;
  user: string;
  /** Seccomp filters already on the benchmark process (a container's): they cost every figure, host runs included. */
  hostSeccompFilters: number;
}

function read(path: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return "unknown";
  }
}

/** Busy and total jiffies of all CPUs so far (/proc/stat). */
function cpuJiffies(): { busy: number; total: number } {
  const fields = read("/proc/stat").split("\n")[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = fields[3]! + fields[4]!; // idle + iowait
  return { busy: total - idle, total };
}

/** Share of all CPUs others kept busy over `ms` while this process sleeps. */
async function busyShare(ms: number): Promise<number> {
  const a = cpuJiffies();
  await Bun.sleep(ms);
  const b = cpuJiffies();
  return b.total > a.total ? Math.round(((b.busy - a.busy) / (b.total - a.total)) * 100) / 100 : 0;
}

export async function machineFacts(bwrapVersion: string, bunboxVersion: string): Promise<MachineFacts> {
  const cpuinfo = read("/proc/cpuinfo");
  const status = read("/proc/self/status");
  const uid = process.geteuid?.() ?? -1;
  return {
    date: new Date().toISOString(),
    kernel: release(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    virtualized: /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo),
    meltdown: read("/sys/devices/system/cpu/vulnerabilities/meltdown"),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    busyBeforeStart: await busyShare(500),
    bun: Bun.version,
    bunbox: bunboxVersion,
    bwrap: bwrapVersion,
    user: uid === 0 ? "root" : `uid ${uid}`,
    hostSeccompFilters: Number(/^Seccomp_filters:\s*(\d+)/m.exec(status)?.[1] ?? 0),
  };
}
