/**
 * Who made a cgroup: each sandbox's cgroup is named for the bunbox process
 * that owns it (its pid namespace, pid and start time), so that a later
 * bunbox can tell a leftover of one that died (SIGKILL, a crash: nothing ran
 * to remove it) from the cgroup of one still running, without a lock or a
 * file to write per run. A pid alone could have been reused; with the start
 * time it names one process. The pid namespace makes the judgement safe
 * where several bunbox processes in different pid namespaces share one
 * cgroup tree: a mark from another namespace is never judged.
 */
import { readlinkSync } from "../native/fs.ts";
import { readText } from "../read-text.ts";

/** Start time of process `pid` (clock ticks since boot, /proc/PID/stat field 22), or undefined if it is gone. */
export function startTime(pid: number | "self"): string | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  return stat === undefined ? undefined : stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
}

let ns: string | undefined;
let own: string | undefined;

function pidNamespace(): string {
  if (ns === undefined) {
    try {
      ns = /\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/pid"))?.[1] ?? "0";
    } catch {
      ns = "0";
    }
  }
  return ns;
}

/** This process's mark: "NS-PID-START". */
export function ownMark(): string {
  own ??= `${pidNamespace()}-${process.pid}-${startTime("self") ?? "0"}`;
  return own;
}

const MARK = /^(\d+)-(\d+)-(\d+)$/;

/**
 * Whether the process a mark names is gone: true only when the mark is of
 * this pid namespace and no process of that pid and start time lives.
 */
export function ownerGone(mark: string): boolean {
  const m = MARK.exec(mark);
  if (!m || m[1] !== pidNamespace()) return false;
  return startTime(Number(m[2])) !== m[3];
}

/** The owner's mark of a sandbox cgroup named "MARK.N", if it is one. */
export function markOf(name: string): string | undefined {
  const dot = name.lastIndexOf(".");
  if (dot < 0 || !/^\d+$/.test(name.slice(dot + 1))) return undefined;
  const mark = name.slice(0, dot);
  return MARK.test(mark) ? mark : undefined;
}
