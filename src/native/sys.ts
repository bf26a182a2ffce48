/**
 * Typed wrappers over the shim's non-blocking system calls on pidfds, seccomp
 * listeners and pipes. Errors come back as negative errno, never exceptions:
 * the monitor decides what each means.
 */
import { ptr } from "bun:ffi";
import { openSync, readFileSync } from "./fs.ts";
import { BB_REPORT, BB_REPORT_MAGIC, BB_WAIT_OUT } from "./abi.ts";
import { shim } from "./library.ts";

export interface Waited {
  /** false: still running. */
  reaped: boolean;
  /** CLD_EXITED (1), CLD_KILLED (2), CLD_DUMPED (3). */
  code: number;
  /** Exit status or signal number. */
  status: number;
  userUs: number;
  sysUs: number;
  maxRssKb: number;
}

export const CLD_EXITED = 1;
export const CLD_KILLED = 2;
export const CLD_DUMPED = 3;

/** waitid(P_PIDFD, WNOHANG|__WALL) with rusage (struct bb_wait_out); -errno on failure. */
export function waitPidfd(pidfd: number): Waited | number {
  const out = new DataView(new ArrayBuffer(BB_WAIT_OUT.sizeof));
  const r = shim().bb_wait(pidfd, ptr(out));
  if (r < 0) return r;
  const i32 = (f: { offset: number }) => out.getInt32(f.offset, true);
  const u64 = (f: { offset: number }) => Number(out.getBigUint64(f.offset, true));
  return {
    reaped: i32(BB_WAIT_OUT.reaped) !== 0,
    code: i32(BB_WAIT_OUT.code),
    status: i32(BB_WAIT_OUT.status),
    userUs: u64(BB_WAIT_OUT.utime_us),
    sysUs: u64(BB_WAIT_OUT.stime_us),
    maxRssKb: u64(BB_WAIT_OUT.maxrss_kb),
  };
}

/** What the sandbox's init reports when the sandboxee ends (struct bb_report). */
export interface Report {
  wstatus: number;
  userUs: number;
  sysUs: number;
  maxRssKb: number;
}

/** The report on init's report pipe, if it is there and whole. */
export function readReport(fd: number): Report | undefined {
  const b = readFd(fd, BB_REPORT.sizeof * 2);
  if (typeof b === "number" || b.length < BB_REPORT.sizeof) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (v.getUint32(BB_REPORT.magic.offset, true) !== BB_REPORT_MAGIC) return undefined;
  const u64 = (f: { offset: number }) => Number(v.getBigUint64(f.offset, true));
  return {
    wstatus: v.getInt32(BB_REPORT.wstatus.offset, true),
    userUs: u64(BB_REPORT.utime_us),
    sysUs: u64(BB_REPORT.stime_us),
    maxRssKb: u64(BB_REPORT.maxrss_kb),
  };
}

/** A pidfd for `pid` (Linux 5.3), or -errno. */
export function pidfdOpen(pid: number): number {
  return shim().bb_pidfd_open(pid);
}

/**
 * An exclusive open-file-description lock on byte range [start, start + len)
 * of fd, without waiting, or its release (unlock): 0, or -errno (-EAGAIN:
 * held by another description).
 */
export function lockRange(fd: number, start: number, len: number, unlock = false): number {
  return shim().bb_lock_range(fd, BigInt(start), BigInt(len), unlock ? 1 : 0);
}

/** A copy of process `pidfd`'s fd `fd` in ours, or -errno. */
export function pidfdGetfd(pidfd: number, fd: number): number {
  return shim().bb_pidfd_getfd(pidfd, fd);
}

/**
 * The pids on line `field` ("Pid", "NSpid") of a /proc file that has one (a
 * pidfd's fdinfo, a process's status), outermost pid namespace first; none
 * when the file or the line is missing. NSpid lists one pid per namespace
 * level (Linux 4.1; in a pidfd's fdinfo, 5.10).
 */
function procPids(path: string, field: "Pid" | "NSpid"): number[] {
  try {
    const m = new RegExp(`^${field}:[ \\t]*([-\\d \\t]+)$`, "m").exec(readFileSync(path, "utf8"));
    return m ? m[1]!.trim().split(/[ \t]+/).map(Number) : [];
  } catch {
    return [];
  }
}

/** The pid a pidfd refers to, as bunbox sees it (-1 if unknown or gone). */
export function pidfdPid(pidfd: number): number {
  return procPids(`/proc/self/fdinfo/${pidfd}`, "Pid")[0] ?? -1;
}

/** The pid of a pidfd's process in its own (innermost) pid namespace (-1 if unknown). */
export function pidfdInnerPid(pidfd: number): number {
  return procPids(`/proc/self/fdinfo/${pidfd}`, "NSpid").at(-1) ?? -1;
}

/** The pid of host pid `pid` in its own (innermost) pid namespace, if it still exists. */
export function innerPid(pid: number): number | undefined {
  return procPids(`/proc/${pid}/status`, "NSpid").at(-1);
}

export function pidfdSignal(pidfd: number, sig: number): number {
  return shim().bb_pidfd_signal(pidfd, sig);
}

export interface Notification {
  id: bigint;
  pid: number;
  nr: number;
  arch: number;
  ip: bigint;
  args: bigint[];
}

/** The oldest notification the reactor thread received for watch `token` (src/native/reactor.ts watchListener), if any. */
export function notifPop(token: number): Notification | undefined {
  const buf = new ArrayBuffer(80);
  return shim().bb_notif_pop(token, ptr(buf)) === 1 ? notification(buf) : undefined;
}

/** struct seccomp_notif. */
function notification(buf: ArrayBuffer): Notification {
  const v = new DataView(buf);
  const args: bigint[] = [];
  for (let i = 0; i < 6; i++) args.push(v.getBigUint64(32 + i * 8, true));
  return {
    id: v.getBigUint64(0, true),
    pid: v.getUint32(8, true),
    nr: v.getInt32(16, true),
    arch: v.getUint32(20, true),
    ip: v.getBigUint64(24, true),
    args,
  };
}

export const NOTIF_CONTINUE = 1;

/** Answers a notification: `error` (negative errno) or 0 with `flags` CONTINUE. */
export function notifSend(listener: number, id: bigint, error: number, flags = 0, val = 0n): number {
  return shim().bb_notif_send(listener, id, error, val, flags);
}

/** Replaces fd `newfd` of the notifying task with a copy of our `srcfd` (-errno on failure). */
export function notifAddFd(listener: number, id: bigint, srcfd: number, newfd: number): number {
  return shim().bb_notif_addfd(listener, id, srcfd, newfd);
}

/** Whether notification `id` is still pending (its task alive and blocked in it). */
export function notifIdValid(listener: number, id: bigint): boolean {
  return shim().bb_notif_id_valid(listener, id) === 0;
}

/**
 * Up to `len` bytes at `addr` in process `pid` (process_vm_readv), fewer
 * where the mapping ends; -errno when nothing could be read.
 */
export function readMemory(pid: number, addr: bigint, len: number): Uint8Array | number {
  const buf = new Uint8Array(len);
  const n = Number(shim().bb_mem_read(pid, addr, ptr(buf), len));
  return n < 0 ? n : buf.subarray(0, n);
}

let devNull = -1;
/** An fd on /dev/null, opened once (what a sandboxee's stray listener is replaced with). */
export function devNullFd(): number {
  if (devNull < 0) devNull = openSync("/dev/null", "r");
  return devNull;
}

/** read(2) into a fresh buffer; -errno (EAGAIN when empty) on failure. */
export function readFd(fd: number, max: number): Uint8Array | number {
  const buf = new Uint8Array(max);
  const n = Number(shim().bb_read(fd, ptr(buf), max));
  return n < 0 ? n : buf.subarray(0, n);
}

export function closeFd(fd: number): void {
  if (fd >= 0) shim().bb_close(fd);
}
