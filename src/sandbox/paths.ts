/**
 * The paths of a mount plan, checked: sandbox-side destinations (absolute,
 * normalised, no ".."), and host-side sources (absolute, existing, every
 * symlink resolved, none of another user's followed). Every error names the
 * path at fault.
 */
import { lstatSync, readlinkSync } from "../native/fs.ts";
import * as posix from "../posix-path.ts";
import { UsageError } from "../errors.ts";

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
