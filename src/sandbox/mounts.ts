/**
 * The sandbox's filesystem: a list of mount operations, validated here and
 * applied in order by csrc/mounts.c on a fresh tmpfs root that ends up
 * read-only. Nothing of the host is visible unless an operation puts it there.
 *
 * Every error names the path at fault. Destinations are absolute, contain no
 * NUL and no ".." component; sources are absolute and must exist when the plan
 * is checked (a source that vanishes before the spawn is a setup error then).
 */
import { lstatSync, readlinkSync, statSync } from "node:fs";
import { posix } from "node:path";
import { UsageError } from "../errors.ts";
import { defaultRuntime, type Runtime } from "./runtime.ts";

export type MountOp =
  | {
      kind: "bind";
      src: string;
      dst: string;
      rw: boolean;
      /** Device nodes usable (only the /dev entries of the default view). */
      dev?: boolean;
      noexec?: boolean;
      /** Skip when the source does not exist (default view entries). */
      optional?: boolean;
      /** What the source must be (addFile, addDirectory); unchecked when absent. */
      expect?: "file" | "directory";
    }
  | { kind: "tmpfs"; dst: string; size?: number; mode?: number; noexec?: boolean; ro?: boolean }
  | { kind: "proc"; dst: string }
  | { kind: "symlink"; target: string; dst: string }
  /** A devpts of the sandbox's own (its ptys only; /dev/ptmx points into it). */
  | { kind: "devpts"; dst: string };

/** Size of /tmp in the default view; a bound, so a sandboxee cannot fill RAM. */
export const DEFAULT_TMP_SIZE = 64 * 1024 * 1024;

const DEV_NODES = ["null", "zero", "full", "random", "urandom", "tty"];

/** Checks a sandbox-side path; returns it normalised ("/a//b/" -> "/a/b"). */
export function checkDestination(path: string, subject: string): string {
  if (typeof path !== "string" || path.length === 0) throw new UsageError(subject, "empty path");
  if (path.includes("\0")) throw new UsageError(subject, `${JSON.stringify(path)} contains a NUL byte`);
  if (!path.startsWith("/")) {
    throw new UsageError(subject, `${path}: sandbox paths must be absolute (start with /)`);
  }
  if (path.split("/").includes("..")) {
    throw new UsageError(subject, `${path}: ".." is not allowed in a sandbox path`);
  }
  const norm = posix.normalize(path);
  return norm.length > 1 && norm.endsWith("/") ? norm.slice(0, -1) : norm;
}

/**
 * Checks a host path (absolute, no NUL, existing unless optional) and returns
 * it with every symlink resolved. A symlink owned by anyone but root or the
 * caller is refused: a sandboxee given a writable directory could plant one
 * there, and a later run (as root, which opens sources as kernel root) that
 * mounts a path through it would show the sandboxee whatever it points to.
 * csrc/mounts.c then opens the resolved path with RESOLVE_NO_SYMLINKS, so a
 * link swapped in meanwhile fails the run instead.
 */
export function checkSource(path: string, subject: string, mustExist = true): string {
  if (typeof path !== "string" || path.length === 0) throw new UsageError(subject, "empty path");
  if (path.includes("\0")) throw new UsageError(subject, `${JSON.stringify(path)} contains a NUL byte`);
  if (!path.startsWith("/")) {
    throw new UsageError(subject, `${path}: host paths must be absolute (did you mean ${posix.resolve(path)}?)`);
  }
  const euid = process.geteuid?.() ?? 0;
  const rest = path.split("/").filter(Boolean);
  let cur = "/";
  for (let hops = 0; rest.length > 0; ) {
    const name = rest.shift()!;
    if (name === ".") continue;
    if (name === "..") {
      cur = posix.dirname(cur);
      continue;
    }
    const next = posix.join(cur, name);
    let st;
    try {
      st = lstatSync(next);
    } catch (e) {
      if (!mustExist) return posix.normalize(path);
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === "ENOENT" ? "does not exist" : code === "EACCES" ? "is not accessible" : `cannot be read (${code})`;
      throw new UsageError(subject, `${path} ${why} on the host${next !== path ? ` (at ${next})` : ""}`);
    }
    if (st.isSymbolicLink()) {
      if (st.uid !== 0 && st.uid !== euid) {
        throw new UsageError(
          subject,
          `${next} is a symlink owned by uid ${st.uid}: bunbox does not follow another user's symlinks in a mount source (give the resolved path if you trust it)`,
        );
      }
      if (++hops > 40) throw new UsageError(subject, `${path}: too many levels of symlinks`);
      const target = readlinkSync(next);
      rest.unshift(...target.split("/").filter(Boolean));
      if (target.startsWith("/")) cur = "/";
      continue;
    }
    cur = next;
  }
  return cur;
}

const DEFAULT_VIEW_TTL_MS = 1000;

export class MountPlan {
  readonly ops: MountOp[] = [];

  /** Adds an operation after validating it; `subject` names the option or field for errors. */
  add(op: MountOp, subject = "mount"): this {
    const dst = checkDestination(op.dst, subject);
    if (dst === "/") throw new UsageError(subject, "the sandbox's root cannot be a mount destination (mount into a directory under it)");
    switch (op.kind) {
      case "bind": {
        const src = checkSource(op.src, subject, !op.optional);
        if (op.expect && statSync(src).isDirectory() !== (op.expect === "directory")) {
          const fix = op.expect === "file" ? "a directory: use addDirectory" : "not a directory: use addFile";
          throw new UsageError(subject, `${op.src} is ${fix}`);
        }
        // Compared as given: /etc/localtime is under the /etc bind even though it resolves elsewhere.
        if (!this.covers(posix.normalize(op.src), dst, op.rw)) {
          // The other way round too: a child bind this one already shows (a learned policy's
          // file under a directory --ro adds) would be made inside a read-only bind, and fail.
          for (let i = this.ops.length - 1; i >= 0; i--) {
            const o = this.ops[i]!;
            if (o.kind === "bind" && o.dst.startsWith(`${dst}/`) && o.src === src + o.dst.slice(dst.length) && (op.rw || !o.rw) && !o.dev) this.ops.splice(i, 1);
          }
          this.replace({ ...op, src, dst });
        }
        break;
      }
      case "tmpfs":
        // The kernel reads size 0, or none, as half of the RAM: every tmpfs gets a bound.
        if (op.size === Infinity) throw new UsageError(subject, "a tmpfs needs a finite size");
        if (op.size !== undefined && (!Number.isSafeInteger(op.size) || op.size <= 0)) {
          throw new UsageError(subject, `tmpfs ${dst}: bad size ${op.size} (at least 1 byte: to the kernel, 0 means half of the RAM)`);
        }
        this.replace({ ...op, dst, size: op.size ?? DEFAULT_TMP_SIZE });
        break;
      case "symlink":
        if (op.target.length === 0 || op.target.includes("\0")) {
          throw new UsageError(subject, `symlink ${dst}: bad target ${JSON.stringify(op.target)}`);
        }
        this.replace({ ...op, dst });
        break;
      case "proc":
      case "devpts":
        this.replace({ ...op, dst });
        break;
      default:
        // Reached only from JavaScript (or a cast): the shim would be handed a kind it does not apply.
        throw new UsageError(subject, `${JSON.stringify((op as { kind: unknown }).kind)} is not a mount kind (bind, tmpfs, proc, symlink, devpts)`);
    }
    return this;
  }

  /**
   * True when a bind of a parent directory already shows `src` at `dst` with
   * at least this access (addFile("/etc/localtime") over the default /etc):
   * a second mount would add nothing, and could not be made on a symlink
   * that the parent bind brings along.
   */
  private covers(src: string, dst: string, rw: boolean): boolean {
    return this.ops.some(
      (o) =>
        o.kind === "bind" &&
        dst.startsWith(`${o.dst}/`) &&
        src === o.src + dst.slice(o.dst.length) &&
        (o.rw || !rw),
    );
  }

  /** A later operation on the same destination replaces the earlier one. */
  private replace(op: MountOp): void {
    const i = this.ops.findIndex((o) => o.dst === op.dst);
    if (i >= 0) this.ops.splice(i, 1);
    this.ops.push(op);
  }

  /**
   * The operations in the order they are applied: parents before children
   * (by depth, stable), so a mount is never hidden by one on its parent.
   */
  ordered(): MountOp[] {
    const depth = (p: string) => (p === "/" ? 0 : p.split("/").length - 1);
    return this.ops
      .map((op, i) => ({ op, i }))
      .sort((a, b) => depth(a.op.dst) - depth(b.op.dst) || a.i - b.i)
      .map((x) => x.op);
  }

  /**
   * The default view (README.md, "What the sandboxee sees by default"): /usr,
   * /bin, /sbin, /lib*, /etc read-only as the host lays them out (a symlink
   * stays a symlink), a fresh /proc, a minimal /dev, a bounded tmpfs /tmp.
   */
  static defaultView(runtime: Runtime = defaultRuntime()): MountPlan {
    // Built at most once a second (per runtime): checking the host's paths
    // is most of what a run costs in JavaScript, and a sandbox host may start
    // hundreds a second. The child still opens every source without following
    // symlinks, so a layout changed meanwhile fails a run rather than
    // misleading it.
    const now = performance.now();
    let cached = runtime.defaultView;
    if (!cached || now - cached.at > DEFAULT_VIEW_TTL_MS) {
      cached = runtime.defaultView = { at: now, plan: MountPlan.buildDefaultView() };
    }
    return cached.plan.clone();
  }

  private static buildDefaultView(): MountPlan {
    const plan = new MountPlan();
    for (const top of ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"]) {
      let st;
      try {
        st = lstatSync(top);
      } catch {
        continue;
      }
      if (st.isSymbolicLink()) plan.add({ kind: "symlink", target: readlinkSync(top), dst: top });
      else if (st.isDirectory()) plan.add({ kind: "bind", src: top, dst: top, rw: false, optional: true });
    }
    plan.add({ kind: "proc", dst: "/proc" });
    plan.addMinimalDev();
    plan.add({ kind: "tmpfs", dst: "/tmp", size: DEFAULT_TMP_SIZE, mode: 0o1777 });
    return plan;
  }

  /**
   * tmpfs /dev with null, zero, full, random, urandom, tty, the fd links, a
   * shm tmpfs, and a devpts of the sandbox's own (ptmx and pts: script,
   * expect, Python's pty, a sandboxee's terminal).
   */
  addMinimalDev(): this {
    this.add({ kind: "tmpfs", dst: "/dev", size: 64 * 1024, mode: 0o755, noexec: true });
    for (const node of DEV_NODES) {
      this.add({ kind: "bind", src: `/dev/${node}`, dst: `/dev/${node}`, rw: true, dev: true, noexec: true, optional: true });
    }
    this.add({ kind: "symlink", target: "/proc/self/fd", dst: "/dev/fd" });
    this.add({ kind: "symlink", target: "/proc/self/fd/0", dst: "/dev/stdin" });
    this.add({ kind: "symlink", target: "/proc/self/fd/1", dst: "/dev/stdout" });
    this.add({ kind: "symlink", target: "/proc/self/fd/2", dst: "/dev/stderr" });
    this.add({ kind: "tmpfs", dst: "/dev/shm", size: DEFAULT_TMP_SIZE, mode: 0o1777, noexec: true });
    this.add({ kind: "devpts", dst: "/dev/pts" });
    this.add({ kind: "symlink", target: "pts/ptmx", dst: "/dev/ptmx" });
    return this;
  }

  clone(): MountPlan {
    const p = new MountPlan();
    p.ops.push(...this.ops.map((o) => ({ ...o })));
    return p;
  }

  /** One line per operation, for `bunbox run -v` and `policy explain`. */
  describe(): string[] {
    return this.ordered().map((op) => {
      switch (op.kind) {
        case "bind":
          return `${op.rw ? "rw" : "ro"} ${op.src}${op.src === op.dst ? "" : ` -> ${op.dst}`}${op.dev ? " (device)" : ""}`;
        case "tmpfs":
          return `tmpfs ${op.dst}${op.size ? ` size=${op.size}` : ""}`;
        case "proc":
          return `proc ${op.dst}`;
        case "symlink":
          return `symlink ${op.dst} -> ${op.target}`;
        case "devpts":
          return `devpts ${op.dst} (the sandbox's own)`;
      }
    });
  }
}
