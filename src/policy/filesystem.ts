/**
 * The filesystem section of a policy, one schema for policy files and the
 * command line: a policy file's `filesystem` is validated by
 * FilesystemSchema (src/policy/filesystem-schema.ts), and `bunbox run`'s
 * mount options (src/cli/mounts.ts) are turned into the same entries, so
 * both are applied by the same code.
 *
 *   "filesystem": {
 *     "base": "default",                       // or "empty": nothing but what follows
 *     "root": "/srv/stage",                    // or { "path", "writable", "overlay" }
 *     "mounts": [
 *       { "bind": "/data", "at": "/data", "writable": true, "try": true },
 *       { "tmpfs": "/scratch", "size": "16M", "mode": 1023 },
 *       { "proc": "/proc" }, { "dev": "/dev" }, { "devpts": "/dev/pts" }, { "dir": "/build", "mode": 493 },
 *       { "symlink": "/lib", "target": "usr/lib" },
 *       { "file": "/etc/motd", "content": "hello\n" }, { "file": "/etc/x", "source": "/host/x" },
 *       { "overlay": "/opt", "lowers": ["/a", "/b"], "upper": "/keep" },
 *       { "mask": "/proc/kcore" }, { "readonly": "/proc/sys" }
 *     ],
 *     "dangerAllowHostMounts": ["proc"]        // binds that show the host's /proc, /sys, devices
 *   }
 */
import { UsageError } from "../errors.ts";
import { readFileAtMost } from "../read-text.ts";
import { checkSource, MAX_FILE_CONTENT, type MountOp, type MountPlan, type RootOp } from "../sandbox/mounts.ts";
import { parseSize } from "../sandbox/units.ts";
import type { MountEntry, RootEntry } from "./filesystem-schema.ts";

export type { FilesystemEntry, MountEntry, RootEntry } from "./filesystem-schema.ts";
/** A file whose content the command line read (from an fd: bytes, not text). */
export type FileBytes = { file: string; bytes: Uint8Array; mode?: number };

/** What a content too large for a `file` entry says. */
export const TOO_LARGE = `more than the ${MAX_FILE_CONTENT >> 20}M a file's content may hold`;

/** The host file `path`'s content, for a `file` entry's source (read now: a copy, not a bind). */
function readSource(path: string, subject: string): Uint8Array {
  const src = checkSource(path, subject);
  let data: Uint8Array | undefined;
  try {
    data = readFileAtMost(src, MAX_FILE_CONTENT);
  } catch (e) {
    throw new UsageError(subject, `${path}: cannot be read (${(e as NodeJS.ErrnoException).code})`);
  }
  if (data === undefined) throw new UsageError(subject, `${path}: ${TOO_LARGE}: bind it instead`);
  return data;
}

const size = (s: string | number | undefined, subject: string) => (s === undefined ? undefined : parseSize(s, `${subject} size`));

/** Adds one entry to the plan; errors name `subject` ("filesystem.mounts.3", "--dir /x"). */
export function applyMount(plan: MountPlan, m: MountEntry | FileBytes, subject: string): void {
  let op: MountOp;
  if ("bind" in m) op = { kind: "bind", src: m.bind, dst: m.at ?? m.bind, rw: !!m.writable, ...(m.try ? { optional: true } : {}) };
  else if ("tmpfs" in m) {
    const bytes = size(m.size, subject);
    op = { kind: "tmpfs", dst: m.tmpfs, mode: m.mode ?? 0o755, ...(bytes !== undefined ? { size: bytes } : {}) };
  } else if ("symlink" in m) op = { kind: "symlink", target: m.target, dst: m.symlink };
  else if ("proc" in m) op = { kind: "proc", dst: m.proc };
  else if ("devpts" in m) op = { kind: "devpts", dst: m.devpts };
  else if ("dev" in m) {
    plan.addMinimalDev(m.dev);
    return;
  } else if ("dir" in m) op = { kind: "dir", dst: m.dir, ...(m.mode !== undefined ? { mode: m.mode } : {}) };
  else if ("file" in m) {
    const content = "bytes" in m ? m.bytes : m.content !== undefined ? new TextEncoder().encode(m.content) : readSource(m.source!, subject);
    op = { kind: "file", dst: m.file, content, ...(m.mode !== undefined ? { mode: m.mode } : {}) };
  } else if ("overlay" in m) {
    const bytes = size(m.size, subject);
    const rw = m.writable ?? (m.upper !== undefined || bytes !== undefined);
    op = { kind: "overlay", dst: m.overlay, lowers: m.lowers, rw, ...(m.upper !== undefined ? { upper: m.upper } : {}), ...(bytes !== undefined ? { size: bytes } : {}) };
  } else if ("mask" in m) op = { kind: "mask", dst: m.mask };
  else op = { kind: "readonly", dst: m.readonly };
  plan.add(op, subject);
}

/** The root entry as the plan's root: a host directory, read-only unless writable, or an overlay over it. */
export function rootOp(r: RootEntry, subject: string): RootOp {
  if (typeof r === "string") return { kind: "bind", src: r, rw: false };
  if (!r.overlay) return { kind: "bind", src: r.path, rw: !!r.writable };
  if (r.writable === false) throw new UsageError(subject, "an overlay root is writable: its changes go to the upper layer");
  const o = r.overlay === true ? {} : r.overlay;
  const bytes = size(o.size, subject);
  return {
    kind: "overlay",
    lowers: [r.path, ...(o.lowers ?? [])],
    rw: true,
    ...(o.upper !== undefined ? { upper: o.upper } : {}),
    ...(bytes !== undefined ? { size: bytes } : {}),
  };
}
