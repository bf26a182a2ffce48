/**
 * Ending what is left in a cgroup, and removing it. After a sandbox's init
 * is reaped nothing is left (its pid namespace died with it), so this only
 * works for the sweep and for the unexpected; it must still be right.
 */
import { closeFd, pidfdOpen, pidfdSignal } from "../native/sys.ts";
import { removeDir, writeValue } from "./cgroup.ts";
import { readText } from "../read-text.ts";

const SIGKILL = 9;
const ROUNDS = 50;

/**
 * SIGKILL to every process in cgroup `dir`, and a wait (up to a second) for
 * them to be gone, so that the cgroup can be removed. v2 (Linux 5.14):
 * cgroup.kill, which the kernel applies to the whole subtree, forks
 * included. Otherwise by pid, through a pidfd opened first and checked
 * against the cgroup's list after: a pid read from cgroup.procs may have
 * been reused by the time it is signalled, but the pidfd names one process,
 * and a pid still listed after the pidfd was opened is that process (or one
 * born into the cgroup, as much a target). Rounds until the list is empty:
 * a process may fork while its siblings die. bunbox's own pid is never
 * signalled. Nothing is left after a sandbox's init was reaped, so this
 * returns at once but in the sweep of what a dead bunbox left.
 */
export function killAll(dir: string, v2: boolean): void {
  let killed = false;
  if (v2 && readText(`${dir}/cgroup.kill`) !== undefined && listed(dir).length > 0) {
    try {
      writeValue(`${dir}/cgroup.kill`, "1");
      killed = true;
    } catch {
      // gone, or not this kernel's: by pid below
    }
  }
  for (let round = 0; round < ROUNDS; round++) {
    const pids = listed(dir);
    if (pids.length === 0) return;
    if (!killed || round > 0) {
      for (const pid of pids) {
        const fd = pidfdOpen(pid);
        if (fd < 0) continue;
        if (listed(dir).includes(pid)) pidfdSignal(fd, SIGKILL);
        closeFd(fd);
      }
    }
    Bun.sleepSync(20); // a killed process leaves its cgroup once it has exited
  }
}

function listed(dir: string): number[] {
  return othersIn(dir) ?? [];
}

/** The processes in the cgroup at dir other than this one; undefined if its cgroup.procs cannot be read. */
export function othersIn(dir: string): number[] | undefined {
  return readText(`${dir}/cgroup.procs`)?.split("\n").filter(Boolean).map(Number).filter((p) => p !== process.pid);
}

/**
 * rmdir each of dirs; one still busy (a process exiting, which the kernel
 * lets go of a moment after its parent reaped it) is tried again for a
 * while, off the caller's path, and otherwise left to the next bunbox's
 * sweep.
 */
export function retryRemove(dirs: string[], waitedMs = 0): void {
  const left = dirs.filter((d) => !removeDir(d) && readText(`${d}/cgroup.procs`) !== undefined);
  if (left.length === 0 || waitedMs > 2000) return;
  const delay = Math.min(5 + waitedMs, 200);
  setTimeout(() => retryRemove(left, waitedMs + delay), delay).unref();
}

/**
 * The most tasks all sandboxes under one `bunbox` cgroup may have together:
 * half of what the host can have (kernel.pid_max, kernel.threads-max), so
 * that sandboxes that each stay under their own limit cannot exhaust it.
 */
export function processCap(): number {
  const n = (p: string) => Number(readText(p)?.trim()) || 32768;
  return Math.max(1, Math.floor(Math.min(n("/proc/sys/kernel/pid_max"), n("/proc/sys/kernel/threads-max")) / 2));
}
