/**
 * Built-in profiles for `--profile NAME`, each a PolicyBuilder recipe:
 *
 *   minimal  read, write and exit: a program that only does stdio
 *   static   a statically linked C program (libc startup, malloc, stdio, time)
 *   dynamic  a dynamically linked one (adds what ld.so needs)
 *   shell    sh and coreutils: fork/exec, pipes, the file operations
 *   build    compilers and build tools: shell + threads, mmap exec, no
 *            network, the current directory mounted writable and the cwd
 *   default  what common programs use (the default of `bunbox run`): a broad
 *            allowlist; the dangerous stays a violation (safety rules), and
 *            any other call it does not allow fails with EPERM instead of
 *            ending the run ("onRefusal": "errno"), as Docker's default does:
 *            chroot() or clock_settime() could never succeed unprivileged
 *            anyway, and every program expects them to fail
 *
 *
 * Learned profiles (src/policy/learned/NAME.json, written by `bun
 * scripts/learn-profiles.ts` from `bunbox learn --merge` over a set of
 * runs; their "notes" say which): the syscalls, by name, that the program
 * and what it commonly runs were seen to make, and nothing else; far
 * tighter than default. The default view is their filesystem.
 *   python3  python3 scripts        node  node scripts     bun  bun scripts
 *   sh       sh/bash scripts with coreutils
 *   cc       C and C++ builds (cc, c++, make, ar); as build: the current
 *            directory writable, no network
 *
 * In the other profiles everything not allowed is a violation (the default
 * action), so a missing syscall shows up as a VIOLATION naming it; a policy
 * file on one of them may say `"onRefusal": "errno"` instead.
 */
import { UsageError } from "../errors.ts";
import { PolicyBuilder, type BuilderOptions, type OnRefusal } from "./builder.ts";
import { ALLOW, arg32, errno, jeq } from "./rules.ts";
import type { Alternative } from "./allowif.ts";

export const PROFILE_NAMES = ["minimal", "static", "dynamic", "shell", "build", "default", "python3", "node", "bun", "sh", "cc"] as const;

type Learned = { allow: readonly string[]; allowIf?: Readonly<Record<string, readonly Alternative[]>> };

/**
 * A learned profile's file (what `bunbox learn` wrote), read when its rules
 * are built: a run on a precompiled profile reads none (README.md, "Start-up").
 */
function learned(name: "python3" | "node" | "bun" | "sh" | "cc"): Learned {
  switch (name) {
    case "python3":
      return require("./learned/python3.json") as Learned;
    case "node":
      return require("./learned/node.json") as Learned;
    case "bun":
      return require("./learned/bun.json") as Learned;
    case "sh":
      return require("./learned/sh.json") as Learned;
    case "cc":
      return require("./learned/cc.json") as Learned;
  }
}
export type ProfileName = (typeof PROFILE_NAMES)[number];

const EPERM = 1;
const ENOTTY = 25;

/** Syscalls of `shell` beyond the families it uses. */
const SHELL_EXTRA = [
  "execve", "execveat", "lseek", "getcwd", "chdir", "fchdir", "umask", "uname", "sysinfo",
  "ftruncate", "truncate", "fsync", "fdatasync", "fadvise64", "sendfile", "copy_file_range",
  "splice", "getrusage", "times", "getpriority", "sched_getaffinity", "sched_yield", "setpgid",
  "setsid", "flock", "statx", "close_range", "getxattr", "lgetxattr", "fgetxattr", "listxattr",
  "llistxattr", "flistxattr", "socket", "connect", "capget", "rseq", "set_tid_address",
  "mknodat", "mknod", "fallocate", "syncfs", "sync", "pipe2", "prlimit64", "getrandom",
  "readahead", "mincore", "membarrier", "getcpu", "restart_syscall", "rt_sigqueueinfo",
];

/** More of what common programs use, for `default` and `build`. */
const COMMON_EXTRA = [
  // sockets (the network namespace decides what they can reach)
  "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "sendto", "recvfrom",
  "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "getsockname", "getpeername",
  "setsockopt", "getsockopt",
  // files
  "fcntl", "ioctl", "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr",
  "fremovexattr", "sync_file_range", "tee", "vmsplice", "name_to_handle_at", "memfd_create",
  "fanotify_mark", "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
  "cachestat", "statmount", "listmount",
  // processes and threads
  "clone", "fork", "vfork", "wait4", "waitid", "pidfd_open", "pidfd_send_signal", "setuid",
  "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid", "setgroups",
  "capset", "prctl", "arch_prctl", "setpriority", "sched_setaffinity", "sched_getparam",
  "sched_setparam", "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max",
  "sched_get_priority_min", "sched_rr_get_interval", "sched_getattr", "sched_setattr", "ioprio_get",
  "ioprio_set", "unshare", "seccomp", "landlock_create_ruleset", "landlock_add_rule",
  "landlock_restrict_self", "set_robust_list", "get_robust_list", "futex", "futex_waitv",
  "futex_wait", "futex_wake", "futex_requeue", "exit", "exit_group", "map_shadow_stack", "mseal",
  "lsm_get_self_attr", "lsm_list_modules", "kcmp",
  // memory
  "mmap", "munmap", "mremap", "mprotect", "madvise", "msync", "mlock", "mlock2", "munlock",
  "mlockall", "munlockall", "pkey_alloc", "pkey_free", "pkey_mprotect", "brk",
  // its own NUMA policy, read and set (top, numactl, libnuma): placement of its own memory only
  "get_mempolicy", "set_mempolicy",
  // time
  "timerfd_create", "timerfd_settime", "timerfd_gettime", "clock_adjtime",
  // IPC (private to the sandbox's IPC namespace)
  "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget",
  "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
  "mq_notify", "mq_getsetattr",
  // (no AIO: io_setup takes from fs.aio-max-nr, one budget for the whole host;
  // README.md "Containment" lists every such call)
  "signalfd", "signalfd4",
];

/** The terminal ioctls sh and coreutils use beyond TCGETS (isatty). */
const TERMINAL_IOCTLS = [
  0x5413 /* TIOCGWINSZ */, 0x540f /* TIOCGPGRP */, 0x5410 /* TIOCSPGRP */, 0x541b /* FIONREAD */,
  0x5421 /* FIONBIO */, 0x5451 /* FIOCLEX */, 0x5450 /* FIONCLEX */, 0x5402 /* TCSETS */,
  0x5403 /* TCSETSW */, 0x5404 /* TCSETSF */,
];

function minimalOn(b: PolicyBuilder): PolicyBuilder {
  return b.allowExit().allowRead().allowWrite();
}

function staticOn(b: PolicyBuilder): PolicyBuilder {
  return minimalOn(b)
    .allowStaticStartup()
    .allowSystemMalloc()
    .allowTime()
    .allowGetRandom()
    .allowStat()
    .allowAvailableSyscalls(["lseek", "close"]);
}

function dynamicOn(b: PolicyBuilder): PolicyBuilder {
  return staticOn(b).allowDynamicStartup().allowFutex();
}

/** shell's families; ioctl beyond the terminal ones is left undecided. */
function shellFamilies(b: PolicyBuilder): PolicyBuilder {
  return dynamicOn(b)
    .allowOpen().allowStat().allowAccess().allowDup().allowPipe().allowChmod().allowChown()
    .allowReaddir().allowReadlink().allowLink().allowSymlink().allowMkdir().allowUtime()
    .allowUnlink().allowRename().allowSafeFcntl().allowFork().allowWait().allowAlarm()
    .allowPosixTimers().allowHandleSignals().allowKill().allowTcGets().allowTime().allowSleep()
    .allowGetIds().allowGetPids().allowGetRlimit().allowSetRlimit().allowGetRandom().allowPoll()
    .allowSelect().allowEpoll().allowEventFd().allowPrctlSetName().allowFutex().allowMmap()
    .addPolicyOnSyscall("ioctl", [arg32(1), ...TERMINAL_IOCTLS.map((c) => jeq(c, ALLOW))])
    .allowAvailableSyscalls(SHELL_EXTRA);
}

function shellOn(b: PolicyBuilder): PolicyBuilder {
  // Any other ioctl is "not a terminal", as for a file.
  return shellFamilies(b).blockSyscallWithErrno("ioctl", ENOTTY);
}

function commonOn(b: PolicyBuilder): PolicyBuilder {
  // personality() only with the values libc and emulators use (no READ_IMPLIES_EXEC).
  return shellFamilies(b)
    .allowAvailableSyscalls(COMMON_EXTRA)
    .addPolicyOnSyscall("personality", [
      arg32(0),
      ...[0x0, 0x8, 0x20000, 0x20008, 0xffffffff].map((v) => jeq(v, ALLOW)),
      errno(EPERM),
    ]);
}

/** A builder with the profile's rules; the caller may add more before build(). */
export function profileBuilder(name: string, options: BuilderOptions & { cwd?: string } = {}): PolicyBuilder {
  return applyProfile(new PolicyBuilder(options).setOrigin(`profile ${name}`), name, options);
}

/** Adds a profile's syscall rules and its filesystem/network settings to a builder. */
export function applyProfile(b: PolicyBuilder, name: string, options: { cwd?: string } = {}): PolicyBuilder {
  return applyProfileSettings(applyProfileRules(b, name), name, options);
}

/** Only the syscall rules of a profile. */
export function applyProfileRules(b: PolicyBuilder, name: string): PolicyBuilder {
  switch (name) {
    case "minimal":
      return minimalOn(b);
    case "static":
      return staticOn(b);
    case "dynamic":
      return dynamicOn(b);
    case "shell":
      return shellOn(b);
    case "build":
    case "default":
      return commonOn(b);
    case "python3":
    case "node":
    case "bun":
    case "sh":
    case "cc": {
      const l = learned(name);
      return b.allowPortable(l.allow, l.allowIf ?? {});
    }
    default:
      throw new UsageError("--profile", `unknown profile "${name}" (one of ${PROFILE_NAMES.join(", ")})`);
  }
}

/** Only the settings of a profile: what a refusal does (default), the filesystem and network (build: writable cwd, no network). */
export function applyProfileSettings(b: PolicyBuilder, name: string, options: { cwd?: string } = {}): PolicyBuilder {
  b.setOnRefusal(profileOnRefusal(name));
  if (name !== "build" && name !== "cc") return b;
  b.setNetwork("none");
  const cwd = options.cwd;
  const system = cwd === undefined ? undefined : systemDirectory(cwd);
  if (system !== undefined) {
    // Writable cwd means the project directory, never the host's root, its
    // system directories or a home's dot files: run as root, the sandboxee
    // writes there as root (an idmapped bind), /etc/shadow and ~/.bashrc included.
    throw new UsageError(`--profile ${name}`, `mounts the current directory writable: run it from a project directory, not ${system} (or bind what it may write with --rw)`);
  }
  // …and starts the command there (bunbox run without --cwd).
  if (cwd) b.addDirectory(cwd, { writable: true }).setWorkdir(cwd);
  return b;
}

/**
 * Directories that are no project: the host's own (and every directory below
 * those holding its configuration and state). Not /tmp: a tree any user may
 * write is bound as it is, never idmapped (README.md, "Writable binds as root").
 */
const SYSTEM_DIRECTORIES = [
  "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt", "/opt", "/proc", "/root",
  "/run", "/sbin", "/srv", "/sys", "/usr", "/usr/bin", "/usr/lib", "/usr/lib64", "/usr/libexec", "/usr/local", "/usr/local/bin",
  "/usr/sbin", "/usr/share", "/var", "/var/lib",
];
const SYSTEM_TREES = ["/boot", "/dev", "/etc", "/proc", "/run", "/sys"];

/** What `cwd` is when it is no project directory ("/etc", "your home directory"), else undefined. */
function systemDirectory(cwd: string): string | undefined {
  const dir = cwd === "" ? "/" : cwd.replace(/(?<=.)\/+$/, "");
  if (SYSTEM_DIRECTORIES.includes(dir) || SYSTEM_TREES.some((t) => dir.startsWith(`${t}/`))) return dir;
  const home = process.env.HOME;
  if (home && home !== "/" && dir === home.replace(/(?<=.)\/+$/, "")) return `${dir} (your home directory: its dot files)`;
  return undefined;
}

/** What a call outside profile `name` gets (see the list at the top). */
export function profileOnRefusal(name: string): OnRefusal {
  return name === "default" ? "errno" : "kill";
}

export function isProfileName(name: string): name is ProfileName {
  return (PROFILE_NAMES as readonly string[]).includes(name);
}
