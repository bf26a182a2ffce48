/**
 * The filesystem half of PolicyBuilder (src/policy/builder.ts), which
 * extends it: the mount plan a policy carries, edited through methods that
 * record their problems (sticky, as every builder method) instead of
 * throwing. The plan starts as the default view (MountPlan.defaultView).
 */
import { HOST_MOUNTS, type HostMount } from "../sandbox/exposure.ts";
import { type MountOp, MountPlan } from "../sandbox/mounts.ts";
import { parseSize } from "../sandbox/units.ts";
import { quote } from "../names.ts";

export abstract class MountBuilder {
  /** Every problem recorded so far (build() reports them all). */
  protected readonly problems: string[] = [];
  protected mounts: MountPlan | undefined;
  protected readonly hostMounts = new Set<HostMount>();

  private plan(): MountPlan {
    this.mounts ??= MountPlan.defaultView();
    return this.mounts;
  }

  /**
   * Edits the mount plan directly (policy files and the command line's mount
   * options go through src/policy/filesystem.ts this way); what fn throws
   * becomes a problem.
   */
  editFilesystem(fn: (plan: MountPlan) => void): this {
    try {
      fn(this.plan());
    } catch (e) {
      this.problems.push((e as Error).message);
    }
    return this;
  }

  /** Starts from an empty root instead of the default view (MountPlan.defaultView). */
  emptyFilesystem(): this {
    this.mounts = new MountPlan();
    return this;
  }

  /**
   * The host directory `path` as the sandbox's root (an image, a staging
   * area): read-only unless `writable`; with `overlay`, writable with its
   * changes in a tmpfs (discarded) or in `overlay.upper` (a host directory,
   * kept), over `path` and any further `overlay.lowers`. A fresh /proc, a
   * minimal /dev and a /tmp tmpfs are mounted into it unless the plan is
   * empty (emptyFilesystem first, then add what it needs).
   */
  setRoot(path: string, opts: { writable?: boolean; overlay?: boolean | { upper?: string; size?: string | number; lowers?: string[] } } = {}): this {
    return this.editFilesystem((p) => {
      const o = typeof opts.overlay === "object" ? opts.overlay : {};
      const size = o.size === undefined ? undefined : parseSize(o.size, "setRoot overlay size");
      const root = opts.overlay
        ? { kind: "overlay" as const, lowers: [path, ...(o.lowers ?? [])], rw: true, ...(o.upper !== undefined ? { upper: o.upper } : {}), ...(size !== undefined ? { size } : {}) }
        : { kind: "bind" as const, src: path, rw: !!opts.writable };
      p.setRoot(root, `setRoot(${path})`);
    });
  }

  /** The host file at the same path, read-only unless `writable`. */
  addFile(path: string, opts: { writable?: boolean } = {}): this {
    return this.addFileAt(path, path, opts);
  }

  addFileAt(outside: string, inside: string, opts: { writable?: boolean } = {}): this {
    return this.bindAt("addFileAt", "file", outside, inside, opts);
  }

  addDirectory(path: string, opts: { writable?: boolean } = {}): this {
    return this.addDirectoryAt(path, path, opts);
  }

  addDirectoryAt(outside: string, inside: string, opts: { writable?: boolean } = {}): this {
    return this.bindAt("addDirectoryAt", "directory", outside, inside, opts);
  }

  /** A bind of a host file or directory, whichever it is (policy files' "bind"); `optional`: nothing if it is missing. */
  addPathAt(outside: string, inside: string, opts: { writable?: boolean; optional?: boolean } = {}): this {
    return this.bindAt("bind", undefined, outside, inside, opts);
  }

  private bindAt(method: string, expect: "file" | "directory" | undefined, outside: string, inside: string, opts: { writable?: boolean; optional?: boolean }): this {
    const op = { kind: "bind", src: outside, dst: inside, rw: !!opts.writable, ...(expect ? { expect } : {}), ...(opts.optional ? { optional: true } : {}) } as const;
    return this.editFilesystem((p) => p.add(op, `${method}(${inside})`));
  }

  /** A fresh tmpfs; size like "16M" or bytes. */
  addTmpfs(inside: string, opts: { size?: string | number; mode?: number } = {}): this {
    return this.editFilesystem((p) => {
      const size = opts.size === undefined ? undefined : parseSize(opts.size, `addTmpfs(${inside}) size`);
      p.add({ kind: "tmpfs", dst: inside, ...(size !== undefined ? { size } : {}), mode: opts.mode ?? 0o755 }, `addTmpfs(${inside})`);
    });
  }

  addSymlink(target: string, inside: string): this {
    return this.addMount({ kind: "symlink", target, dst: inside }, `addSymlink(${inside})`);
  }

  /** A fresh /proc of the sandbox's pid namespace. */
  addProc(inside = "/proc"): this {
    return this.addMount({ kind: "proc", dst: inside }, `addProc(${inside})`);
  }

  /** A minimal /dev: null, zero, full, random, urandom, tty, the fd links and a shm tmpfs. */
  addDev(inside = "/dev"): this {
    return this.editFilesystem((p) => p.addMinimalDev(inside));
  }

  /** A directory (made with mode, unless one is there). */
  addDir(inside: string, opts: { mode?: number } = {}): this {
    return this.addMount({ kind: "dir", dst: inside, ...(opts.mode !== undefined ? { mode: opts.mode } : {}) }, `addDir(${inside})`);
  }

  /** A read-only file holding `content` (a copy: nothing of the host is bound). */
  addFileContents(inside: string, content: string | Uint8Array, opts: { mode?: number } = {}): this {
    const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
    return this.addMount({ kind: "file", dst: inside, content: bytes, ...(opts.mode !== undefined ? { mode: opts.mode } : {}) }, `addFileContents(${inside})`);
  }

  /** overlayfs at `inside` over host directories (the bottom one first); writable into `upper` (kept) or a tmpfs (discarded). */
  addOverlay(inside: string, lowers: string[], opts: { upper?: string; size?: string | number; writable?: boolean } = {}): this {
    return this.editFilesystem((p) => {
      const size = opts.size === undefined ? undefined : parseSize(opts.size, `addOverlay(${inside}) size`);
      const rw = opts.writable ?? (opts.upper !== undefined || size !== undefined);
      p.add({ kind: "overlay", dst: inside, lowers, rw, ...(opts.upper !== undefined ? { upper: opts.upper } : {}), ...(size !== undefined ? { size } : {}) }, `addOverlay(${inside})`);
    });
  }

  /** Hides what the tree has at `inside` (an empty directory or file over it), as OCI's maskedPaths. */
  maskPath(inside: string): this {
    return this.addMount({ kind: "mask", dst: inside }, `maskPath(${inside})`);
  }

  /** Makes what the tree has at `inside` read-only, as OCI's readonlyPaths. */
  readonlyPath(inside: string): this {
    return this.addMount({ kind: "readonly", dst: inside }, `readonlyPath(${inside})`);
  }

  private addMount(op: MountOp, subject: string): this {
    return this.editFilesystem((p) => p.add(op, subject));
  }

  /**
   * Lets binds show the host's /proc ("proc"), /sys ("sys") or device nodes
   * ("dev"): without it such a bind is a problem; with it, a relaxation that
   * `bunbox run -v` and `--json` list. The minimal /dev's six nodes need none.
   */
  dangerAllowHostMount(kind: HostMount): this {
    if (!HOST_MOUNTS.includes(kind)) this.problems.push(`dangerAllowHostMount: ${quote(kind)} is not one of ${HOST_MOUNTS.join(", ")}`);
    else this.hostMounts.add(kind);
    return this;
  }
}
