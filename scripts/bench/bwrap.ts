/**
 * The bubblewrap command that matches bunbox's default sandbox as closely as
 * bwrap can: every namespace unshared, a new session, dies with its parent,
 * and the same filesystem view. The view is read from bunbox's own
 * MountPlan.defaultView(), so both sandboxes see /usr, /bin, /lib* and /etc
 * exactly as the host lays them out (on merged-/usr systems /bin and friends
 * are symlinks, and stay symlinks in both).
 *
 * Not matched, because bwrap has no such options: bunbox also installs a
 * seccomp filter, sets rlimits and drops the bounding set; bwrap here does
 * none of that, so the comparison flatters bwrap.
 */
import { MountPlan } from "../../src/sandbox/mounts.ts";

export function bwrapArgv(bwrap: string, command: readonly string[]): string[] {
  const args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session"];
  for (const op of MountPlan.defaultView().ordered()) {
    // bwrap's --dev builds the same minimal /dev (null, zero, full, random,
    // urandom, tty, the fd links, shm) that bunbox assembles entry by entry.
    if (op.dst.startsWith("/dev/")) continue;
    switch (op.kind) {
      case "bind":
        args.push(op.rw ? "--bind" : "--ro-bind", op.src, op.dst);
        break;
      case "symlink":
        args.push("--symlink", op.target, op.dst);
        break;
      case "proc":
        args.push("--proc", op.dst);
        break;
      case "tmpfs":
        args.push(op.dst === "/dev" ? "--dev" : "--tmpfs", op.dst);
        break;
    }
  }
  return [...args, ...command];
}
