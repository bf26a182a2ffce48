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
import { type ArchName, archOfAudit, syscallName } from "../policy/arch.ts";
import { argSpecs, parseValue } from "../policy/argspec.ts";
import { exactConditions } from "../monitor/suggest.ts";
import type { TaskMemory } from "../monitor/memory.ts";
import { ipMapping } from "../monitor/violation.ts";
import type { Notification } from "../native/sys.ts";
import { fromBytes } from "../sandbox/visible.ts";
import type { Observations, PathOp, SyscallNote, Variant } from "./observations.ts";

type OpOf = PathOp | ((arch: ArchName, args: readonly bigint[]) => PathOp);

/**
 * What each file call does to its paths (to each, in order, when it has
 * several). Which arguments are paths, and the directory fd each is
 * relative to, argspec.ts says.
 */
const FILE_OPS: Readonly<Record<string, OpOf | readonly OpOf[]>> = Object.assign(Object.create(null), {
  open: openOp("open", 1),
  openat: openOp("openat", 2),
  openat2: "read",
  creat: "change",
  execve: "exec",
  execveat: "exec",
  stat: "stat", lstat: "stat", newfstatat: "stat", statx: "stat", access: "stat", faccessat: "stat", faccessat2: "stat",
  readlink: "stat", readlinkat: "stat", statfs: "stat", chdir: "stat", getxattr: "stat", lgetxattr: "stat",
  listxattr: "stat", llistxattr: "stat", inotify_add_watch: "stat",
  mkdir: "change", mkdirat: "change", rmdir: "change", unlink: "change", unlinkat: "change",
  rename: "change", renameat: "change", renameat2: "change", symlink: "change", symlinkat: "change",
  mknod: "change", mknodat: "change",
  link: ["stat", "change"],
  linkat: ["stat", "change"],
  chmod: "write", fchmodat: "write", fchmodat2: "write", chown: "write", lchown: "write", fchownat: "write",
  truncate: "write", utime: "write", utimes: "write", futimesat: "write", utimensat: "write",
  setxattr: "write", lsetxattr: "write", removexattr: "write", lremovexattr: "write",
});

/** Calls on a directory fd that read the directory itself. */
const LIST_CALLS = new Set(["getdents", "getdents64"]);

/** open's op from its flags: an O_CREAT may make an entry; a write access mode or O_TRUNC writes; O_PATH only looks. */
function openOp(name: string, flagsArg: number): (arch: ArchName, args: readonly bigint[]) => PathOp {
  return (arch, args) => {
    const spec = argSpecs(arch, name)[flagsArg]!;
    const f = Number(BigInt.asUintN(32, args[flagsArg] ?? 0n));
    const flag = (name: string) => Number(parseValue(spec, name));
    if (f & flag("O_CREAT")) return "change";
    if ((f & 3) !== 0 || f & flag("O_TRUNC")) return "write";
    if (f & flag("O_PATH")) return "stat";
    return "read";
  };
}

const AT_FDCWD = -100;

/**
 * Bounds on what one learning run keeps, so that a program making endless
 * distinct calls (an ioctl per number, a file per name) cannot grow
 * bunbox's memory without end; what is past them is counted, and said.
 * 256 values of one argument compile to about 500 BPF instructions (a
 * filter holds 4096); real programs use a few dozen ioctls.
 */
export const MAX_VARIANTS = 256;
export const MAX_PATHS = 50_000;

export class Recorder {
  /** Problems the hook met (an unreadable /proc entry, values or paths past the bounds), for the report. */
  readonly problems: string[] = [];
  /** Each syscall's variants by their key (the notes keep them as a list). */
  private readonly variants = new Map<SyscallNote, Map<string, Variant>>();
  private dropped = { variants: 0, paths: 0 };

  private pathCount: number;

  constructor(
    private readonly notes: Observations,
    private readonly run: number,
  ) {
    this.pathCount = Object.keys(notes.paths).length;
  }

  /** The monitor's onRecord hook (bound: `recorder.hook`). */
  readonly hook = (n: Notification, memory: TaskMemory): void => {
    const name = syscallName(n.arch, n.nr) ?? `syscall ${n.nr}`;
    const arch = archOfAudit(n.arch);
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
    const ops = FILE_OPS[name];
    if (ops) {
      const specs = argSpecs(arch, name);
      let k = 0;
      for (const spec of specs) {
        if (!spec.path) continue;
        const op = Array.isArray(ops) ? ops[k++] : ops;
        if (op === undefined) continue;
        const text = memory.string(n.args[spec.index]!);
        if (text === undefined || text === "") continue; // AT_EMPTY_PATH: the fd itself
        // A path's directory fd is the argument just before it (dfd, filename; olddfd, oldname).
        const dir = specs[spec.index - 1];
        const dirfd = dir?.dirfd ? Number(BigInt.asIntN(32, n.args[dir.index]!)) : AT_FDCWD;
        const path = this.absolute(n.pid, text, dirfd);
        if (path) this.path(path, typeof op === "function" ? op(arch, n.args) : (op as PathOp));
      }
    } else if (LIST_CALLS.has(name)) {
      const dir = this.fdPath(n.pid, Number(BigInt.asIntN(32, n.args[0]!)));
      if (dir) this.path(dir, "list");
    }
  };

  private variant(s: SyscallNote, args: Record<string, string | number>): void {
    const vs = (s.variants ??= []);
    let byKey = this.variants.get(s);
    if (!byKey) this.variants.set(s, (byKey = new Map(vs.map((v) => [JSON.stringify(v.args), v]))));
    const key = JSON.stringify(args);
    const had = byKey.get(key);
    if (had) had.count++;
    else if (vs.length >= MAX_VARIANTS) this.drop("variants", `more than ${MAX_VARIANTS} distinct argument values of one syscall: the rest are not learned`);
    else {
      const v = { args, count: 1 };
      vs.push(v);
      byKey.set(key, v);
    }
  }

  private drop(what: "variants" | "paths", why: string): void {
    if (this.dropped[what]++ === 0) this.problems.push(why);
  }

  private path(path: string, op: PathOp): void {
    let p = this.notes.paths[path];
    if (!p && this.pathCount >= MAX_PATHS) return this.drop("paths", `more than ${MAX_PATHS} distinct paths: the rest are not learned`);
    if (!p) {
      p = this.notes.paths[path] = { ops: [], count: 0, runs: [this.run] };
      this.pathCount++;
    }
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
