/**
 * Sandbox2's helper families: each a documented set of syscalls, with the
 * argument checks Sandbox2 has. A family names syscalls of every arch it
 * knows; names an arch lacks (aarch64 has no open(), no fork()) are skipped.
 *
 * Each entry returns the rules to add: a plain name is allowed outright;
 * `[name, fragment]` adds an argument program (falling off it reaches the
 * policy's default action).
 */
import { type NameTable, nameTable } from "../names.ts";
import {
  ALLOW,
  arg,
  arg32,
  errno,
  type Fragment,
  jeq,
  jset,
  type Node,
} from "./rules.ts";

export type FamilyRule = string | readonly [name: string, fragment: Fragment];

const EINVAL = 22;
const PROT_EXEC = 0x4;
const TCGETS = 0x5401;
const FUTEX_PRIVATE = 128;
const FUTEX_CLOCK_REALTIME = 256;

/** jeq to ALLOW for each value (32-bit compare). */
function anyOf(values: readonly number[]): Node[] {
  return values.map((v) => jeq(v, ALLOW));
}

/** An op with FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME in every combination. */
export function futexOpVariants(op: number): number[] {
  return [op, op | FUTEX_PRIVATE, op | FUTEX_CLOCK_REALTIME, op | FUTEX_PRIVATE | FUTEX_CLOCK_REALTIME];
}

export const FUTEX = {
  WAIT: 0, WAKE: 1, FD: 2, REQUEUE: 3, CMP_REQUEUE: 4, WAKE_OP: 5, LOCK_PI: 6, UNLOCK_PI: 7,
  TRYLOCK_PI: 8, WAIT_BITSET: 9, WAKE_BITSET: 10, WAIT_REQUEUE_PI: 11, CMP_REQUEUE_PI: 12, LOCK_PI2: 13,
} as const;

/** futex restricted to ops (each with the private and clock flags). */
export function futexRule(ops: readonly number[]): FamilyRule {
  return ["futex", [arg32(1), ...anyOf(ops.flatMap(futexOpVariants))]];
}

const F = {
  DUPFD: 0, GETFD: 1, SETFD: 2, GETFL: 3, SETFL: 4, GETLK: 5, SETLK: 6, SETLKW: 7,
  DUPFD_CLOEXEC: 1030, OFD_GETLK: 36, OFD_SETLK: 37, OFD_SETLKW: 38, ADD_SEALS: 1033, GET_SEALS: 1034,
  GETPIPE_SZ: 1032,
} as const;

const ARCH_PRCTL = { SET_GS: 0x1001, SET_FS: 0x1002, GET_FS: 0x1003, GET_GS: 0x1004 } as const;
const PR_SET_NAME = 15;
const PR_GET_NAME = 16;
const GRND_NONBLOCK = 1;
const GRND_INSECURE = 4;

/** The families by name (no prototype: a family named "toString" is simply unknown). */
export const FAMILIES = nameTable({
  exit: () => ["exit", "exit_group"],
  read: () => ["read", "readv", "pread64", "preadv", "preadv2"],
  write: () => ["write", "writev", "pwrite64", "pwritev", "pwritev2"],
  open: () => ["open", "openat", "openat2", "creat", "close", "close_range"],
  stat: () => ["stat", "lstat", "fstat", "newfstatat", "statx", "statfs", "fstatfs"],
  access: () => ["access", "faccessat", "faccessat2"],
  dup: () => ["dup", "dup2", "dup3"],
  pipe: () => ["pipe", "pipe2"],
  chmod: () => ["chmod", "fchmod", "fchmodat", "fchmodat2"],
  chown: () => ["chown", "lchown", "fchown", "fchownat"],
  readdir: () => ["getdents", "getdents64"],
  readlink: () => ["readlink", "readlinkat"],
  link: () => ["link", "linkat"],
  symlink: () => ["symlink", "symlinkat"],
  mkdir: () => ["mkdir", "mkdirat"],
  utime: () => ["utime", "utimes", "futimesat", "utimensat"],
  unlink: () => ["unlink", "unlinkat", "rmdir"],
  rename: () => ["rename", "renameat", "renameat2"],
  /** fcntl without F_SETOWN/F_SETSIG/F_SETLEASE/F_NOTIFY (signals to other processes). */
  safeFcntl: (): FamilyRule[] => [
    ["fcntl", [arg32(1), ...anyOf(Object.values(F))]],
  ],
  /** fork, vfork and clone (namespace flags stay a violation: safety rules). */
  fork: () => ["fork", "vfork", "clone"],
  wait: () => ["wait4", "waitid"],
  alarm: () => ["alarm", "setitimer", "getitimer"],
  posixTimers: () => ["timer_create", "timer_delete", "timer_settime", "timer_gettime", "timer_getoverrun"],
  handleSignals: () => [
    "rt_sigaction", "rt_sigreturn", "rt_sigprocmask", "sigaltstack", "rt_sigsuspend", "rt_sigpending",
    "rt_sigtimedwait", "pause",
  ],
  /** Signals to processes of the same sandbox (the pid namespace bounds it). */
  kill: () => ["kill", "tkill", "tgkill"],
  /** ioctl(TCGETS) only: isatty(). */
  tcgets: (): FamilyRule[] => [["ioctl", [arg32(1), jeq(TCGETS, ALLOW)]]],
  time: () => ["gettimeofday", "time", "clock_gettime", "clock_getres"],
  sleep: () => ["nanosleep", "clock_nanosleep"],
  getIds: () => ["getuid", "geteuid", "getresuid", "getgid", "getegid", "getresgid", "getgroups"],
  getPids: () => ["getpid", "getppid", "gettid", "getpgid", "getpgrp", "getsid"],
  /** getrlimit, and prlimit64 only without a new limit. */
  getRlimit: (): FamilyRule[] => ["getrlimit", ["prlimit64", [arg(2), jeq(0, ALLOW)]]],
  setRlimit: () => ["getrlimit", "setrlimit", "prlimit64"],
  /** getrandom without GRND_RANDOM. */
  getRandom: (): FamilyRule[] => [
    ["getrandom", [arg32(2), ...anyOf([0, GRND_NONBLOCK, GRND_INSECURE, GRND_NONBLOCK | GRND_INSECURE])]],
  ],
  epoll: () => ["epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2"],
  inotify: () => ["inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch"],
  select: () => ["select", "pselect6"],
  poll: () => ["poll", "ppoll"],
  eventfd: () => ["eventfd", "eventfd2"],
  prctlSetName: (): FamilyRule[] => [["prctl", [arg32(0), jeq(PR_SET_NAME, ALLOW), jeq(PR_GET_NAME, ALLOW)]]],
  mlock: () => ["mlock", "munlock", "mlock2", "mlockall", "munlockall"],
  /** The futex operations locks and condition variables use (no PI). */
  futex: (): FamilyRule[] => [
    futexRule([FUTEX.WAIT, FUTEX.WAKE, FUTEX.REQUEUE, FUTEX.CMP_REQUEUE, FUTEX.WAKE_OP, FUTEX.WAIT_BITSET, FUTEX.WAKE_BITSET]),
    "futex_waitv",
    "futex_wait",
    "futex_wake",
    "futex_requeue",
    "set_robust_list",
    "get_robust_list",
  ],
  mmap: () => ["mmap", "munmap", "mremap", "mprotect", "msync"],
  /** mmap and mprotect never with PROT_EXEC. */
  mmapWithoutExec: (): FamilyRule[] => [
    ["mmap", [arg32(2), jset(PROT_EXEC, { label: "exec" }), ALLOW, { op: "label", name: "exec" }]],
    ["mprotect", [arg32(2), jset(PROT_EXEC, { label: "exec" }), ALLOW, { op: "label", name: "exec" }]],
    "munmap",
    "mremap",
  ],
  /** mprotect, any protection (W^X is then up to the program). */
  mprotect: () => ["mprotect", "pkey_mprotect"],
  /** mprotect never making memory executable. */
  mprotectWithoutExec: (): FamilyRule[] => [
    ["mprotect", [arg32(2), jset(PROT_EXEC, { label: "exec" }), ALLOW, { op: "label", name: "exec" }]],
  ],
  systemMalloc: (): FamilyRule[] => [
    "brk",
    ["mmap", [arg32(2), jset(PROT_EXEC, { label: "exec" }), ALLOW, { op: "label", name: "exec" }]],
    "munmap",
    "mremap",
    "madvise",
    futexRule([FUTEX.WAIT, FUTEX.WAKE]),
  ],
  /** What a static binary's libc does before main. */
  staticStartup: (): FamilyRule[] => [
    // glibc probes CET and xsave ops it may not get: EINVAL, not a violation.
    ["arch_prctl", [arg32(0), ...anyOf(Object.values(ARCH_PRCTL)), errno(EINVAL)]],
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "brk",
    ["mprotect", [arg32(2), jset(PROT_EXEC, { label: "exec" }), ALLOW, { op: "label", name: "exec" }]],
    "uname",
    ["prlimit64", [arg(2), jeq(0, ALLOW)]],
    "getrlimit",
    ["getrandom", [arg32(2), ...anyOf([0, GRND_NONBLOCK, GRND_INSECURE, GRND_NONBLOCK | GRND_INSECURE])]],
    "rt_sigprocmask",
    "rt_sigaction",
    "sigaltstack",
    "readlink",
    "readlinkat",
    "fstat",
    "newfstatat",
  ],
  /** What ld.so does: open and map libraries (executable), stat, access. */
  dynamicStartup: (): FamilyRule[] => [
    ...FAMILIES.staticStartup(),
    "open",
    "openat",
    "close",
    "read",
    "pread64",
    "mmap",
    "munmap",
    "mprotect",
    "access",
    "faccessat",
    "faccessat2",
    "statx",
    "lseek",
    "getcwd",
  ],
  sharedMemory: () => ["shmget", "shmat", "shmdt", "shmctl", "memfd_create"],
  /** What the comms client libraries use: messages, fds, waits with timeouts, shared buffers. */
  comms: () => [
    "sendmsg", "recvmsg", "sendto", "recvfrom", "poll", "ppoll", "getsockopt", "clock_gettime",
    "memfd_create", "ftruncate", "fcntl", "mmap", "munmap", "close", "fstat", "newfstatat",
  ],
} as const satisfies Record<string, () => readonly FamilyRule[]>);

export type FamilyName = Exclude<keyof typeof FAMILIES, symbol>;

export function isFamilyName(name: unknown): name is FamilyName {
  return typeof name === "string" && (FAMILIES as NameTable<unknown>)[name] !== undefined;
}
