/**
 * From the paths a run used to the smallest filesystem that shows it the
 * same things, on an empty root (`"base": "empty"`):
 *
 *   - each path is followed through the learning run's mounts as the kernel
 *     would inside the sandbox: a symlink on the way (/bin -> usr/bin, the
 *     host's /usr/bin/python3 -> python3.11) is kept as a symlink, and the
 *     path it leads to is what gets mounted;
 *   - a file that exists is bound (read-only, or writable when the run wrote
 *     it and could); a path that does not exist stays absent, so a program
 *     that probed it finds it missing again;
 *   - a directory is bound whole when it was listed, when entries were
 *     made or removed in it, or when many of its files were used
 *     (DIRECTORY_FILES); a directory only stat'ed is bound unless it holds
 *     other mounts, which make it exist anyway;
 *   - a tmpfs the run used (/tmp) is a fresh tmpfs again; /proc and /dev
 *     (the default view's minimal one) come back only if used.
 *
 * What an exec opens without a syscall (the ELF interpreter, a script's
 * `#!`) is added by the learner (interpreters()), so that the paths here
 * are complete.
 */
import { lstatSync, readlinkSync, statSync } from "node:fs";
import { posix } from "node:path";
import type { MountEntry } from "../policy/filesystem.ts";
import type { MountOp, MountPlan } from "../sandbox/mounts.ts";
import { interpreterOf } from "./elf.ts";
import type { PathNote, PathOp } from "./observations.ts";

/** Files of one directory used before the directory is bound whole instead. */
export const DIRECTORY_FILES = 8;
const MAX_LINKS = 40;


type Area =
  | { kind: "bind"; op: Extract<MountOp, { kind: "bind" }>; host: string }
  | { kind: "tmpfs"; op: Extract<MountOp, { kind: "tmpfs" }> }
  | { kind: "proc"; dst: string }
  | { kind: "dev" }
  | { kind: "root" };

const under = (path: string, dir: string) => dir === "/" || path === dir || path.startsWith(`${dir}/`);

/** The sandbox's view as the learning run had it: what is at an inside path, and its symlinks followed. */
export class View {
  private readonly ops: readonly MountOp[];
  private readonly hasDev: boolean;
  /** A host directory as the root (--root): what no mount covers is its. */
  private readonly rootBind: Extract<MountOp, { kind: "bind" }> | undefined;

  constructor(plan: MountPlan) {
    this.ops = plan.ordered();
    const r = plan.root;
    this.rootBind = r.kind === "bind" ? { kind: "bind", src: r.src, dst: "/", rw: r.rw } : undefined;
    this.hasDev = this.ops.some((o) => o.kind === "tmpfs" && o.dst === "/dev") && this.ops.some((o) => o.kind === "bind" && o.dev);
  }

  /** The mount an inside path falls in: the deepest one (mounts on the same path: the later). */
  area(path: string): Area {
    if (this.hasDev && under(path, "/dev")) return { kind: "dev" };
    let best: MountOp | undefined;
    for (const o of this.ops) {
      if (o.kind === "symlink" || !under(path, o.dst)) continue;
      if (!best || o.dst.length >= best.dst.length) best = o;
    }
    if (!best) return this.rootBind ? { kind: "bind", op: this.rootBind, host: this.rootBind.src + path } : { kind: "root" };
    if (best.kind === "bind") return { kind: "bind", op: best, host: best.src + path.slice(best.dst.length) };
    if (best.kind === "tmpfs") return { kind: "tmpfs", op: best };
    if (best.kind === "proc") return { kind: "proc", dst: best.dst };
    return { kind: "root" };
  }

  /**
   * `path` with every symlink on the way followed (the view's own, and the
   * host's inside binds), and the links met; undefined for a loop.
   */
  resolve(path: string): { final: string; links: { at: string; target: string }[] } | undefined {
    const links: { at: string; target: string }[] = [];
    const rest = path.split("/").filter(Boolean);
    let cur = "/";
    let hops = 0;
    while (rest.length) {
      const name = rest.shift()!;
      if (name === ".") continue;
      if (name === "..") {
        cur = posix.dirname(cur);
        continue;
      }
      const next = posix.join(cur, name);
      const target = this.linkAt(next);
      if (target !== undefined) {
        if (++hops > MAX_LINKS) return undefined;
        links.push({ at: next, target });
        rest.unshift(...target.split("/").filter(Boolean));
        if (target.startsWith("/")) cur = "/";
        continue;
      }
      cur = next;
    }
    return { final: cur, links };
  }

  /** The symlink at an inside path, if there is one: a mount of the view, or a host link seen through a bind. */
  private linkAt(path: string): string | undefined {
    const own = this.ops.findLast((o) => o.kind === "symlink" && o.dst === path);
    if (own?.kind === "symlink") return own.target;
    const a = this.area(path);
    if (a.kind !== "bind") return undefined;
    try {
      return lstatSync(a.host).isSymbolicLink() ? readlinkSync(a.host) : undefined;
    } catch {
      return undefined;
    }
  }

  /** The host file behind an inside path (symlinks followed), if it is one that exists. */
  hostFile(path: string): string | undefined {
    const r = this.resolve(path);
    const a = r && this.area(r.final);
    if (a?.kind !== "bind") return undefined;
    try {
      return statSync(a.host).isFile() ? a.host : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The interpreters an exec of `path` needs, inside paths (a script's `#!`
   * and that interpreter's ELF interpreter, in order).
   */
  interpreters(path: string): string[] {
    const out: string[] = [];
    let cur: string | undefined = path;
    for (let depth = 0; cur && depth < 4; depth++) {
      const host = this.hostFile(cur);
      cur = host ? interpreterOf(host) : undefined;
      if (cur && !out.includes(cur)) out.push(cur);
    }
    return out;
  }
}

interface Item {
  inside: string;
  host: string;
  dir: boolean;
  ops: Set<PathOp>;
  /** The learning run could write here (its bind was writable). */
  writableArea: boolean;
  /** Bind the directory itself (listed, entries changed, many files used). */
  whole: boolean;
  /** Something under it needs writing. */
  write: boolean;
}

/** The mounts for `paths` (inside path → what was done) seen through `view`. */
export function learnedMounts(view: View, paths: Readonly<Record<string, PathNote>>): MountEntry[] {
  const items = new Map<string, Item>();
  const links = new Map<string, string>();
  const tmpfs = new Map<string, Extract<MountOp, { kind: "tmpfs" }>>();
  let proc: string | undefined;
  let dev = false;

  const item = (inside: string, area: Extract<Area, { kind: "bind" }>): Item | undefined => {
    let it = items.get(inside);
    if (it) return it;
    let dir: boolean;
    try {
      dir = statSync(area.host).isDirectory();
    } catch {
      return undefined; // absent on the host: absent in the sandbox too
    }
    it = { inside, host: area.host, dir, ops: new Set(), writableArea: area.op.rw, whole: false, write: false };
    items.set(inside, it);
    return it;
  };

  for (const [path, note] of Object.entries(paths)) {
    const r = view.resolve(path);
    if (!r) continue;
    for (const l of r.links) links.set(l.at, l.target);
    const a = view.area(r.final);
    if (a.kind === "tmpfs") tmpfs.set(a.op.dst, a.op);
    else if (a.kind === "proc") proc = a.dst;
    else if (a.kind === "dev") dev = true;
    if (a.kind !== "bind") continue;
    const it = item(r.final, a);
    if (it) for (const op of note.ops) if (op !== "change") it.ops.add(op);
    if (note.ops.includes("change") && r.final !== "/") {
      // An entry made, removed or renamed: its directory is needed whole, writable if it could be.
      const parent = posix.dirname(r.final);
      const pa = view.area(parent);
      const p = pa.kind === "bind" ? item(parent, pa) : undefined;
      if (p) {
        p.whole = true;
        p.write = p.writableArea;
      } else if (pa.kind === "tmpfs") tmpfs.set(pa.op.dst, pa.op);
    }
    if (it && note.ops.includes("write") && it.writableArea) it.write = true;
  }

  // Directories bound whole: listed, changed, or holding many of the files used.
  const filesIn = new Map<string, number>();
  for (const it of items.values()) {
    if (it.dir && it.ops.has("list")) it.whole = true;
    if (!it.dir) filesIn.set(posix.dirname(it.inside), (filesIn.get(posix.dirname(it.inside)) ?? 0) + 1);
  }
  for (const [dir, n] of filesIn) {
    if (n < DIRECTORY_FILES) continue;
    const a = view.area(dir);
    const d = a.kind === "bind" ? item(dir, a) : undefined;
    if (d) d.whole = true;
  }
  const wholeDirs = [...items.values()].filter((it) => it.dir && it.whole).map((it) => it.inside).sort((x, y) => x.length - y.length);
  const coveredBy = (path: string) => wholeDirs.find((d) => d !== path && under(path, d));

  // What is bound: whole directories not inside another, and files and
  // stat'ed directories outside them; a directory holding other mounts exists anyway.
  const bound: Item[] = [];
  for (const it of items.values()) {
    const cover = coveredBy(it.inside);
    if (cover) {
      const c = items.get(cover)!;
      if (it.write) c.write ||= c.writableArea;
      continue;
    }
    bound.push(it);
  }
  const mountpoints = new Set<string>();
  const allDests = [...bound.map((b) => b.inside), ...links.keys(), ...tmpfs.keys(), ...(proc ? [proc] : []), ...(dev ? ["/dev"] : [])];
  for (const d of allDests) for (let p = posix.dirname(d); p !== "/"; p = posix.dirname(p)) mountpoints.add(p);

  const out: { at: string; entry: MountEntry }[] = [];
  for (const it of bound) {
    if (it.dir && !it.whole && mountpoints.has(it.inside)) continue;
    const entry: MountEntry = { bind: it.host, ...(it.host !== it.inside ? { at: it.inside } : {}), ...(it.write ? { writable: true } : {}) };
    out.push({ at: it.inside, entry });
  }
  for (const [at, target] of links) {
    // A link inside a bound directory comes with it (and could not be made on a read-only bind).
    if (wholeDirs.some((d) => under(posix.dirname(at), d)) || bound.some((b) => !b.dir && b.inside === at)) continue;
    out.push({ at, entry: { symlink: at, target } });
  }
  for (const [dst, op] of tmpfs) {
    if (dev && under(dst, "/dev")) continue;
    out.push({ at: dst, entry: { tmpfs: dst, ...(op.size !== undefined ? { size: op.size } : {}), ...(op.mode !== undefined ? { mode: op.mode } : {}) } });
  }
  if (proc) out.push({ at: proc, entry: { proc } });
  if (dev) out.push({ at: "/dev", entry: { dev: "/dev" } });
  const depth = (p: string) => p.split("/").length;
  return out.sort((x, y) => depth(x.at) - depth(y.at) || (x.at < y.at ? -1 : x.at > y.at ? 1 : 0)).map((x) => x.entry);
}
