/**
 * The sandbox's filesystem: a root and a list of mount operations, validated
 * here and applied in order by csrc/mounts.c. Nothing of the host is visible
 * unless an operation puts it there.
 *
 * The root is a fresh tmpfs (the default), a host directory (an image or a
 * staging area: read-only unless asked) or an overlay of host directories
 * (writes go to a tmpfs, discarded, or to a host directory, kept). Every
 * other destination is resolved inside that root by the shim: an absolute
 * symlink in an image stays in the image (csrc/resolve.c).
 *
 * Every error names the path at fault. Destinations are absolute, contain no
 * NUL and no ".." component; sources are absolute and must exist when the plan
 * is checked (a source that vanishes before the spawn is a setup error then).
 */
import { lstatSync, readlinkSync, statSync } from "../native/fs.ts";
import * as posix from "../posix-path.ts";
import { UsageError } from "../errors.ts";
import { DEV_NODES, HOST_MOUNT_TEXT, type HostMount, hostExposure, minimalNode } from "./exposure.ts";
import { checkDestination, checkSource } from "./paths.ts";
import { defaultRuntime, type Runtime } from "./runtime.ts";

export { checkDestination, checkSource } from "./paths.ts";

export type MountOp =
  | {
      kind: "bind";
      src: string;
      dst: string;
      rw: boolean;
      /** Device nodes usable: the minimal /dev's, or what dangerAllowHostMount("dev") allows. */
      dev?: boolean;
      noexec?: boolean;
      /** Skip when the source does not exist (bind-try, default view entries). */
      optional?: boolean;
      /** What the source must be (addFile, addDirectory); unchecked when absent. */
      expect?: "file" | "directory";
      /** What of the host's kernel it shows (set by MountPlan.add: hostExposure). */
      exposes?: readonly HostMount[];
    }
  | { kind: "tmpfs"; dst: string; size?: number; mode?: number; noexec?: boolean; ro?: boolean }
  | { kind: "proc"; dst: string }
  | { kind: "symlink"; target: string; dst: string }
  /** A directory (made with `mode` unless one is there). */
  | { kind: "dir"; dst: string; mode?: number }
  /** A read-only file holding `content`; `optional`: nothing if its mount point cannot be made. */
  | { kind: "file"; dst: string; content: Uint8Array; mode?: number; noexec?: boolean; optional?: boolean }
  /**
   * overlayfs over host directories (`lowers`, the bottom one first). rw:
   * writes go to `upper` (a host directory: kept in upper/upper, upper/work
   * its scratch) or to a tmpfs of `size` bytes (discarded).
   */
  | { kind: "overlay"; dst: string; lowers: string[]; upper?: string; size?: number; rw: boolean }
  /** Hides what is at dst in the tree (OCI maskedPaths); nothing when missing. */
  | { kind: "mask"; dst: string }
  /** Makes what is at dst in the tree read-only (OCI readonlyPaths); nothing when missing. */
  | { kind: "readonly"; dst: string }
  /** A devpts of the sandbox's own (its ptys only; the minimal /dev's ptmx points into it). */
  | { kind: "devpts"; dst: string };

export type MountKind = MountOp["kind"];
export const MOUNT_KINDS: readonly MountKind[] = ["bind", "tmpfs", "proc", "symlink", "devpts", "dir", "file", "overlay", "mask", "readonly"];

/** The sandbox's "/": a mount operation whose destination is the root. */
export type RootOp =
  | { kind: "tmpfs"; mode?: number; size?: number }
  | { kind: "bind"; src: string; rw: boolean }
  | { kind: "overlay"; lowers: string[]; upper?: string; size?: number; rw: boolean };

/** Size of /tmp in the default view; a bound, so a sandboxee cannot fill RAM. */
export const DEFAULT_TMP_SIZE = 64 * 1024 * 1024;
/** A writable overlay's tmpfs upper layer when no size is given. */
export const DEFAULT_OVERLAY_SIZE = 256 * 1024 * 1024;
/** The largest `file` content: it travels in the spawn request (csrc/plan.h BB_FILE_MAX). */
export const MAX_FILE_CONTENT = 16 * 1024 * 1024;
/** overlayfs layers an overlay may stack (csrc/plan.h BB_LOWERS_MAX). */
export const MAX_LOWERS = 64;

const DEFAULT_VIEW_TTL_MS = 1000;

/** Which base view the plan's view-made operations come from (replaced when the root changes). */
type View = "host" | "image" | "none";

export class MountPlan {
  readonly ops: MountOp[] = [];
  root: RootOp = { kind: "tmpfs", mode: 0o755 };
  /** The operations a base view added (replaced by setRoot); the caller's own are the rest. */
  private readonly fromView = new Set<MountOp>();
  private view: View = "none";

  /** Adds an operation after validating it; `subject` names the option or field for errors. A destination of "/" sets the root. */
  add(op: MountOp, subject = "mount"): this {
    const dst = checkDestination(op.dst, subject);
    if (dst === "/") {
      if (op.kind !== "bind" && op.kind !== "tmpfs" && op.kind !== "overlay") {
        throw new UsageError(subject, `the sandbox's root can be a bind, a tmpfs or an overlay, not a ${op.kind}`);
      }
      return this.setRoot(op, subject);
    }
    switch (op.kind) {
      case "bind": {
        const src = checkSource(op.src, subject, !op.optional);
        if (op.expect && statSync(src).isDirectory() !== (op.expect === "directory")) {
          const fix = op.expect === "file" ? "a directory: use addDirectory" : "not a directory: use addFile";
          throw new UsageError(subject, `${op.src} is ${fix}`);
        }
        const exposes = [...hostExposure(src)];
        // Device nodes are usable through the binds that the relaxation allows, and the minimal /dev's.
        const dev = !!op.dev || exposes.includes("dev") || minimalNode(src);
        const bind = { ...op, src, dst, ...(exposes.length ? { exposes } : {}), ...(dev ? { dev } : {}) };
        // Compared as given: /etc/localtime is under the /etc bind even though it resolves elsewhere.
        if (!this.covers(posix.normalize(op.src), dst, op.rw)) {
          // The other way round too: a child bind this one already shows (a learned policy's
          // file under a directory --ro adds) would be made inside a read-only bind, and fail.
          for (let i = this.ops.length - 1; i >= 0; i--) {
            const o = this.ops[i]!;
            if (o.kind === "bind" && o.dst.startsWith(`${dst}/`) && o.src === src + o.dst.slice(dst.length) && (op.rw || !o.rw) && !o.dev) this.ops.splice(i, 1);
          }
          this.replace(bind);
        }
        break;
      }
      case "tmpfs":
        this.replace({ ...op, dst, size: checkTmpfsSize(op.size, dst, subject) ?? DEFAULT_TMP_SIZE });
        break;
      case "symlink":
        if (typeof op.target !== "string" || op.target.length === 0 || op.target.includes("\0")) {
          throw new UsageError(subject, `symlink ${dst}: bad target ${JSON.stringify(op.target)}`);
        }
        this.replace({ ...op, dst });
        break;
      case "dir":
        this.replace({ ...op, dst, mode: checkMode(op.mode ?? 0o755, subject) });
        break;
      case "file": {
        if (!(op.content instanceof Uint8Array)) throw new UsageError(subject, `file ${dst}: content must be bytes`);
        if (op.content.length > MAX_FILE_CONTENT) {
          throw new UsageError(subject, `file ${dst}: ${op.content.length} bytes, more than the ${MAX_FILE_CONTENT >> 20}M a file's content may hold (bind a host file instead)`);
        }
        this.replace({ ...op, dst, mode: checkMode(op.mode ?? 0o444, subject) });
        break;
      }
      case "overlay":
        this.replace({ ...checkOverlay(op, subject), dst });
        break;
      case "proc":
      case "devpts":
      case "mask":
      case "readonly":
        this.replace({ ...op, dst });
        break;
      default:
        // Reached only from JavaScript (or a cast): the shim would be handed a kind it does not apply.
        throw new UsageError(subject, `${JSON.stringify((op as { kind: unknown }).kind)} is not a mount kind (${MOUNT_KINDS.join(", ")})`);
    }
    return this;
  }

  /**
   * Sets the sandbox's root. A host directory or an overlay replaces the
   * host's default view (its /usr, /etc… binds) by an image's: a fresh /proc,
   * a minimal /dev and a /tmp tmpfs, mounted into the image; the caller's own
   * operations stay. An empty plan (emptyFilesystem, "base": "empty") gets
   * nothing added.
   */
  setRoot(op: MountOp | RootOp, subject = "root"): this {
    let root: RootOp;
    if (op.kind === "tmpfs") {
      root = { kind: "tmpfs", mode: checkMode(op.mode ?? 0o755, subject), ...(op.size !== undefined ? { size: checkTmpfsSize(op.size, "/", subject) } : {}) };
    } else if (op.kind === "bind") {
      const src = checkSource(op.src, subject);
      if (!statSync(src).isDirectory()) throw new UsageError(subject, `${op.src}: the sandbox's root must be a directory`);
      const exposes = [...hostExposure(src)];
      if (exposes.length) {
        throw new UsageError(subject, `${op.src} as the sandbox's root would show ${exposes.map((e) => HOST_MOUNT_TEXT[e]).join(" and ")}`);
      }
      root = { kind: "bind", src, rw: op.rw };
    } else if (op.kind === "overlay") {
      const o = checkOverlay(op, subject);
      // One read-only layer is a read-only bind of it.
      root = o.kind === "bind" ? o : { kind: "overlay", lowers: o.lowers, rw: o.rw, ...(o.upper ? { upper: o.upper } : {}), ...(o.size ? { size: o.size } : {}) };
    } else {
      throw new UsageError(subject, `the sandbox's root can be a bind, a tmpfs or an overlay, not a ${op.kind}`);
    }
    this.root = root;
    if (root.kind !== "tmpfs" && this.view === "host") this.useView("image");
    return this;
  }

  /** Whether the root is an image with its view (/proc, /dev, /tmp; the generated /etc files: src/sandbox/etc.ts). */
  get imageView(): boolean {
    return this.root.kind !== "tmpfs" && this.view === "image";
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

  /**
   * A later operation on the same destination replaces the earlier one; a
   * mask or readonly op acts on what is there instead, and replaces only
   * its own kind.
   */
  private replace(op: MountOp): void {
    const i = this.ops.findIndex((o) => o.dst === op.dst && isChange(o) === isChange(op));
    if (i >= 0) this.fromView.delete(this.ops.splice(i, 1)[0]!);
    this.ops.push(op);
  }

  /** Replaces the base view's operations by those of `view`. */
  private useView(view: View): void {
    for (let i = this.ops.length - 1; i >= 0; i--) if (this.fromView.has(this.ops[i]!)) this.ops.splice(i, 1);
    this.fromView.clear();
    this.view = view;
    const before = new Set(this.ops);
    if (view === "host") addHostView(this);
    if (view === "image") addImageView(this, new Set(this.ops.map((o) => o.dst)));
    for (const op of this.ops) if (!before.has(op)) this.fromView.add(op);
  }

  /**
   * The operations in the order they are applied: parents before children
   * (by depth, stable), so a mount is never hidden by one on its parent;
   * masks and readonly ops last, on the tree the others built (as OCI
   * applies maskedPaths and readonlyPaths after the mounts).
   */
  ordered(): MountOp[] {
    const depth = (p: string) => (p === "/" ? 0 : p.split("/").length - 1);
    return this.ops
      .map((op, i) => ({ op, i, key: (isChange(op) ? 4096 : 0) + depth(op.dst) }))
      .sort((a, b) => a.key - b.key || a.i - b.i)
      .map((x) => x.op);
  }

  /** What the plan's binds show of the host's kernel (each a relaxation: dangerAllowHostMount). */
  hostExposure(): Map<HostMount, string[]> {
    const out = new Map<HostMount, string[]>();
    for (const op of this.ops) {
      if (op.kind !== "bind" || !op.exposes) continue;
      for (const e of op.exposes) out.set(e, [...(out.get(e) ?? []), `${op.src}${op.src === op.dst ? "" : ` -> ${op.dst}`}`]);
    }
    return out;
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
      const plan = new MountPlan();
      plan.useView("host");
      cached = runtime.defaultView = { at: now, plan };
    }
    return cached.plan.clone();
  }

  /**
   * tmpfs at `at` (/dev) with null, zero, full, random, urandom, tty, the fd
   * links, a shm tmpfs, and a devpts of the sandbox's own (ptmx and pts:
   * script, expect, Python's pty, a sandboxee's terminal).
   */
  addMinimalDev(at = "/dev"): this {
    const dev = checkDestination(at, "dev");
    this.add({ kind: "tmpfs", dst: dev, size: 64 * 1024, mode: 0o755, noexec: true });
    for (const node of DEV_NODES) {
      this.add({ kind: "bind", src: `/dev/${node}`, dst: `${dev}/${node}`, rw: true, dev: true, noexec: true, optional: true });
    }
    this.add({ kind: "symlink", target: "/proc/self/fd", dst: `${dev}/fd` });
    this.add({ kind: "symlink", target: "/proc/self/fd/0", dst: `${dev}/stdin` });
    this.add({ kind: "symlink", target: "/proc/self/fd/1", dst: `${dev}/stdout` });
    this.add({ kind: "symlink", target: "/proc/self/fd/2", dst: `${dev}/stderr` });
    this.add({ kind: "tmpfs", dst: `${dev}/shm`, size: DEFAULT_TMP_SIZE, mode: 0o1777, noexec: true });
    this.add({ kind: "devpts", dst: `${dev}/pts` });
    this.add({ kind: "symlink", target: "pts/ptmx", dst: `${dev}/ptmx` });
    return this;
  }

  clone(): MountPlan {
    const p = new MountPlan();
    const r = this.root;
    p.root = r.kind === "overlay" ? { ...r, lowers: [...r.lowers] } : { ...r };
    p.view = this.view;
    for (const o of this.ops) {
      const copy = { ...o };
      p.ops.push(copy);
      if (this.fromView.has(o)) p.fromView.add(copy);
    }
    return p;
  }

  /** One line per operation, for `bunbox run -v` and `policy explain`; the root when it is not the default tmpfs. */
  describe(): string[] {
    const r = this.root;
    const root =
      r.kind === "bind" ? [`root ${r.rw ? "rw" : "ro"} ${r.src}`]
      : r.kind === "overlay" ? [`root overlay ${r.lowers.join(" + ")}${r.upper ? `, changes kept in ${r.upper}` : r.rw ? ", changes discarded" : ", read-only"}`]
      : [];
    return [...root, ...this.ordered().map(describeOp)];
  }
}

function describeOp(op: MountOp): string {
  switch (op.kind) {
    case "bind":
      return `${op.rw ? "rw" : "ro"} ${op.src}${op.src === op.dst ? "" : ` -> ${op.dst}`}${op.dev ? " (device)" : ""}`;
    case "tmpfs":
      return `tmpfs ${op.dst}${op.size ? ` size=${op.size}` : ""}`;
    case "proc":
      return `proc ${op.dst}`;
    case "devpts":
      return `devpts ${op.dst} (the sandbox's own)`;
    case "symlink":
      return `symlink ${op.dst} -> ${op.target}`;
    case "dir":
      return `dir ${op.dst}`;
    case "file":
      return `file ${op.dst} (${op.content.length} bytes)`;
    case "overlay":
      return `overlay ${op.dst}: ${op.lowers.join(" + ")}${op.upper ? `, changes kept in ${op.upper}` : op.rw ? ", changes discarded" : ""}`;
    case "mask":
      return `mask ${op.dst}`;
    case "readonly":
      return `read-only ${op.dst}`;
  }
}

/** A mask or readonly op: it changes what the tree has at its destination, and mounts nothing of its own. */
const isChange = (op: MountOp) => op.kind === "mask" || op.kind === "readonly";

function checkMode(mode: number, subject: string): number {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new UsageError(subject, `mode ${mode} is not a file mode (0 to 0o7777)`);
  return mode;
}

function checkTmpfsSize(size: number | undefined, dst: string, subject: string): number | undefined {
  // The kernel reads size 0, or none, as half of the RAM: every tmpfs gets a bound.
  if (size === Infinity) throw new UsageError(subject, "a tmpfs needs a finite size");
  if (size !== undefined && (!Number.isSafeInteger(size) || size <= 0)) {
    throw new UsageError(subject, `tmpfs ${dst}: bad size ${size} (at least 1 byte: to the kernel, 0 means half of the RAM)`);
  }
  return size;
}

/** An overlay's layers checked; one read-only layer is returned as a read-only bind of it. */
function checkOverlay(
  op: { lowers: string[]; upper?: string; size?: number; rw: boolean },
  subject: string,
): { kind: "overlay"; lowers: string[]; upper?: string; size?: number; rw: boolean } | { kind: "bind"; src: string; rw: false } {
  if (!Array.isArray(op.lowers) || op.lowers.length === 0) throw new UsageError(subject, "an overlay needs at least one lower layer");
  if (op.lowers.length > MAX_LOWERS) throw new UsageError(subject, `an overlay takes at most ${MAX_LOWERS} lower layers`);
  const dir = (p: string, what: string) => {
    const src = checkSource(p, subject);
    if (!statSync(src).isDirectory()) throw new UsageError(subject, `${p}: ${what} must be a directory`);
    if (hostExposure(src).size) throw new UsageError(subject, `${p}: ${what} would show the host's kernel filesystems`);
    return src;
  };
  const lowers = op.lowers.map((l) => dir(l, "an overlay's lower layer"));
  if (op.upper !== undefined && !op.rw) throw new UsageError(subject, "an overlay with an upper directory is writable");
  if (op.upper !== undefined && op.size !== undefined) {
    throw new UsageError(subject, "an overlay's changes go to an upper directory or to a tmpfs of a size, not both");
  }
  if (op.upper !== undefined) return { kind: "overlay", lowers, upper: dir(op.upper, "an overlay's upper directory"), rw: true };
  if (op.rw) return { kind: "overlay", lowers, size: checkTmpfsSize(op.size, "overlay", subject) ?? DEFAULT_OVERLAY_SIZE, rw: true };
  if (lowers.length === 1) return { kind: "bind", src: lowers[0]!, rw: false };
  return { kind: "overlay", lowers, rw: false };
}

/** The host's /usr, /bin, /sbin, /lib*, /etc (read-only, symlinks as symlinks), /proc, /dev, /tmp. */
function addHostView(plan: MountPlan): void {
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
}

/** An image's: a fresh /proc, a minimal /dev and a /tmp tmpfs, except where the caller mounts something already. */
function addImageView(plan: MountPlan, taken: ReadonlySet<string>): void {
  if (!taken.has("/proc")) plan.add({ kind: "proc", dst: "/proc" });
  if (![...taken].some((d) => d === "/dev" || d.startsWith("/dev/"))) plan.addMinimalDev();
  if (!taken.has("/tmp")) plan.add({ kind: "tmpfs", dst: "/tmp", size: DEFAULT_TMP_SIZE, mode: 0o1777 });
}
