/**
 * The monitor's onRecord hook during a learning run: each call the
 * sandboxee makes (every thread, every child: the filter is inherited, and
 * it is in place from the first instruction after bunbox's own exec) is
 * counted by name, the values of the arguments a policy would constrain are
 * noted by name, and the paths of the file calls are read from the waiting
 * task's memory and made absolute (its cwd, or the directory fd, as
 * /proc/PID says while it waits).
 *
 * The paths describe what the program did, so that a filesystem can be
 * derived; nothing is decided on them (src/monitor/memory.ts says why it
 * could not be). The hook must be quick: a build makes a few hundred
 * thousand calls, each waiting for it.
 */
import { readlinkSync } from "node:fs";
import { posix } from "node:path";
import { type ArchName, archByName, auditArchName, syscallName } from "../policy/arch.ts";
import { argSpecs, parseValue } from "../policy/argspec.ts";
import { exactConditions } from "../monitor/suggest.ts";
import type { TaskMemory } from "../monitor/memory.ts";
import { ipMapping } from "../monitor/violation.ts";
import type { Notification } from "../native/sys.ts";
import { fromBytes } from "../sandbox/visible.ts";
import type { Observations, PathOp, SyscallNote } from "./observations.ts";

type OpOf = PathOp | ((arch: ArchName, args: readonly bigint[]) => PathOp);

/** The file calls: which argument is a path (and its directory fd), and what the call does to it. */
const FILE_CALLS: Record<string, { path: string; dirfd?: string; op: OpOf }[]> = Object.assign(Object.create(null), {
  open: [{ path: "filename", op: openOp(1) }],
  openat: [{ path: "filename", dirfd: "dfd", op: openOp(2) }],
  openat2: [{ path: "filename", dirfd: "dfd", op: "read" }],
  creat: [{ path: "pathname", op: "change" }],
  execve: [{ path: "filename", op: "exec" }],
  execveat: [{ path: "filename", dirfd: "fd", op: "exec" }],
  stat: [{ path: "filename", op: "stat" }],
  lstat: [{ path: "filename", op: "stat" }],
  newfstatat: [{ path: "filename", dirfd: "dfd", op: "stat" }],
  statx: [{ path: "filename", dirfd: "dfd", op: "stat" }],
  access: [{ path: "filename", op: "stat" }],
  faccessat: [{ path: "filename", dirfd: "dfd", op: "stat" }],
  faccessat2: [{ path: "filename", dirfd: "dfd", op: "stat" }],
  readlink: [{ path: "path", op: "stat" }],
  readlinkat: [{ path: "pathname", dirfd: "dfd", op: "stat" }],
  statfs: [{ path: "pathname", op: "stat" }],
  chdir: [{ path: "filename", op: "stat" }],
  getxattr: [{ path: "pathname", op: "stat" }],
  lgetxattr: [{ path: "pathname", op: "stat" }],
  listxattr: [{ path: "pathname", op: "stat" }],
  llistxattr: [{ path: "pathname", op: "stat" }],
  inotify_add_watch: [{ path: "pathname", op: "stat" }],
  mkdir: [{ path: "pathname", op: "change" }],
  mkdirat: [{ path: "pathname", dirfd: "dfd", op: "change" }],
  rmdir: [{ path: "pathname", op: "change" }],
  unlink: [{ path: "pathname", op: "change" }],
  unlinkat: [{ path: "pathname", dirfd: "dfd", op: "change" }],
  rename: [{ path: "oldname", op: "change" }, { path: "newname", op: "change" }],
  renameat: [{ path: "oldname", dirfd: "olddfd", op: "change" }, { path: "newname", dirfd: "newdfd", op: "change" }],
  renameat2: [{ path: "oldname", dirfd: "olddfd", op: "change" }, { path: "newname", dirfd: "newdfd", op: "change" }],
  link: [{ path: "oldname", op: "stat" }, { path: "newname", op: "change" }],
  linkat: [{ path: "oldname", dirfd: "olddfd", op: "stat" }, { path: "newname", dirfd: "newdfd", op: "change" }],
  symlink: [{ path: "newname", op: "change" }],
  symlinkat: [{ path: "newname", dirfd: "newdfd", op: "change" }],
  mknod: [{ path: "filename", op: "change" }],
  mknodat: [{ path: "filename", dirfd: "dfd", op: "change" }],
  chmod: [{ path: "filename", op: "write" }],
  fchmodat: [{ path: "filename", dirfd: "dfd", op: "write" }],
  fchmodat2: [{ path: "filename", dirfd: "dfd", op: "write" }],
  chown: [{ path: "filename", op: "write" }],
  lchown: [{ path: "filename", op: "write" }],
  fchownat: [{ path: "filename", dirfd: "dfd", op: "write" }],
  truncate: [{ path: "path", op: "write" }],
  utime: [{ path: "filename", op: "write" }],
  utimes: [{ path: "filename", op: "write" }],
  futimesat: [{ path: "filename", dirfd: "dfd", op: "write" }],
  utimensat: [{ path: "filename", dirfd: "dfd", op: "write" }],
  setxattr: [{ path: "pathname", op: "write" }],
  lsetxattr: [{ path: "pathname", op: "write" }],
  removexattr: [{ path: "pathname", op: "write" }],
  lremovexattr: [{ path: "pathname", op: "write" }],
});

/** Calls on a directory fd that read the directory itself. */
const LIST_CALLS = new Set(["getdents", "getdents64"]);

/** open's op from its flags: an O_CREAT may make an entry; a write access mode or O_TRUNC writes; O_PATH only looks. */
function openOp(flagsArg: number): (arch: ArchName, args: readonly bigint[]) => PathOp {
  return (arch, args) => {
    const spec = argSpecs(arch, flagsArg === 1 ? "open" : "openat")[flagsArg]!;
    const f = Number(BigInt.asUintN(32, args[flagsArg] ?? 0n));
    const flag = (name: string) => Number(parseValue(spec, name));
    if (f & flag("O_CREAT")) return "change";
    if ((f & 3) !== 0 || f & flag("O_TRUNC")) return "write";
    if (f & flag("O_PATH")) return "stat";
    return "read";
  };
}

const AT_FDCWD = -100;

export class Recorder {
  /** Problems the hook met (an unreadable /proc entry, a path that could not be made absolute), for the report. */
  readonly problems: string[] = [];

  constructor(
    private readonly notes: Observations,
    private readonly run: number,
  ) {}

  /** The monitor's onRecord hook (bound: `recorder.hook`). */
  readonly hook = (n: Notification, memory: TaskMemory): void => {
    const name = syscallName(n.arch, n.nr) ?? `syscall ${n.nr}`;
    const arch = archByName(auditArchName(n.arch))?.name;
    let s = this.notes.syscalls[name];
    if (!s) {
      const first = ipMapping(n.pid, n.ip);
      s = this.notes.syscalls[name] = { count: 0, runs: [this.run], ...(first ? { first } : {}) } as SyscallNote;
    } else if (s.runs[s.runs.length - 1] !== this.run) {
      s.runs.push(this.run);
    }
    s.count++;
    if (!arch) return;
    const conditions = exactConditions(arch, name, n.args);
    if (conditions) this.variant(s, conditions);
    const calls = FILE_CALLS[name];
    if (calls) {
      const specs = argSpecs(arch, name);
      for (const c of calls) {
        const pathSpec = specs.find((x) => x.name === c.path);
        const dirSpec = c.dirfd ? specs.find((x) => x.name === c.dirfd) : undefined;
        if (!pathSpec) continue;
        const text = memory.string(n.args[pathSpec.index]!);
        if (text === undefined || text === "") continue; // AT_EMPTY_PATH: the fd itself
        const dirfd = dirSpec ? Number(BigInt.asIntN(32, n.args[dirSpec.index]!)) : AT_FDCWD;
        const path = this.absolute(n.pid, text, dirfd);
        if (path) this.path(path, typeof c.op === "function" ? c.op(arch, n.args) : c.op);
      }
    } else if (LIST_CALLS.has(name)) {
      const dir = this.fdPath(n.pid, Number(BigInt.asIntN(32, n.args[0]!)));
      if (dir) this.path(dir, "list");
    }
  };

  private variant(s: SyscallNote, args: Record<string, string | number>): void {
    const vs = (s.variants ??= []);
    const key = JSON.stringify(args);
    const had = vs.find((x) => JSON.stringify(x.args) === key);
    if (had) had.count++;
    else vs.push({ args, count: 1 });
  }

  private path(path: string, op: PathOp): void {
    let p = this.notes.paths[path];
    if (!p) p = this.notes.paths[path] = { ops: [], count: 0, runs: [this.run] };
    else if (p.runs[p.runs.length - 1] !== this.run) p.runs.push(this.run);
    p.count++;
    if (!p.ops.includes(op)) p.ops.push(op);
  }

  /**
   * `text` made absolute, as the sandboxee sees paths: /proc/PID/cwd and
   * /proc/PID/fd/N read from outside name the sandbox's own paths (their
   * mount namespace's root is the sandbox's root).
   */
  private absolute(pid: number, text: string, dirfd: number): string | undefined {
    if (text.startsWith("/")) return posix.normalize(text);
    const base = dirfd === AT_FDCWD ? this.link(`/proc/${pid}/cwd`) : this.fdPath(pid, dirfd);
    return base ? posix.join(base, text) : undefined;
  }

  private fdPath(pid: number, fd: number): string | undefined {
    const p = this.link(`/proc/${pid}/fd/${fd}`);
    return p?.startsWith("/") && !p.endsWith(" (deleted)") ? p : undefined;
  }

  private link(path: string): string | undefined {
    try {
      // As bytes: a name that is not UTF-8 is kept exact (src/sandbox/visible.ts).
      return fromBytes(readlinkSync(path, { encoding: "buffer" }));
    } catch (e) {
      if (this.problems.length < 20) this.problems.push(`${path}: ${(e as NodeJS.ErrnoException).code}`);
      return undefined;
    }
  }
}
