/**
 * Setup stages (csrc/plan.h enum bb_stage, by value) with, where one exists,
 * the fix a message should suggest.
 */
import { BB_STAGE_NAMES } from "./abi.ts";

export type Stage = (typeof BB_STAGE_NAMES)[number];

export function stageName(n: number): Stage | `stage ${number}` {
  return BB_STAGE_NAMES[n] ?? `stage ${n}`;
}

/** A hint for the user, by stage and errno name. */
export function stageHint(stage: string, errno: string): string | undefined {
  if ((stage === "clone" || stage === "user-namespace") && (errno === "EPERM" || errno === "ENOSPC" || errno === "EINVAL" || errno === "EACCES")) {
    return "user namespaces are unavailable: check sysctl user.max_user_namespaces > 0 and " +
      "kernel.apparmor_restrict_unprivileged_userns=0 (or kernel.unprivileged_userns_clone=1), or run as root; " +
      "inside a container, its seccomp profile may forbid them (Docker: --security-opt seccomp=unconfined)";
  }
  if (stage === "mount" && errno === "EPERM") {
    return "the kernel refused the mount (inside a container, /proc or /sys may be masked: try a privileged container or run bunbox on the host)";
  }
  if (stage === "mount" && errno === "EROFS") {
    return "that destination lies in a read-only tree of the sandbox (/usr, /etc, a --ro bind): " +
      "bind its parent with --rw (--rw SRC:PARENT), or put a --tmpfs on the parent to make it writable";
  }
  if (stage === "overlay" && (errno === "EINVAL" || errno === "EPERM" || errno === "ENODEV")) {
    return "overlayfs in a user namespace needs Linux 5.11+ (and an upper directory on a filesystem with user xattrs)";
  }
  if (stage === "seccomp" && errno === "EINVAL") {
    return "the kernel lacks seccomp filtering (CONFIG_SECCOMP_FILTER) or user notification (Linux 5.0+)";
  }
  if (stage === "idmap") {
    return "a writable bind as root goes through an idmapped mount (Linux 5.12+; ext4, xfs, btrfs, tmpfs from 6.3; not NFS, FUSE, ramfs or an overlayfs mount), " +
      "so that the sandbox's uid writes as the tree's owner. Bind it read-only (--ro); or let a normal user own the tree " +
      "and run bunbox as that user, whose sandboxes write as that user (chown -R USER TREE; setpriv --reuid=USER --regid=GROUP " +
      "--init-groups bunbox …); or put the tree on a filesystem that has idmapped mounts";
  }
  if (stage === "init" && errno === "EACCES") {
    return "executing a memfd is forbidden here (sysctl vm.memfd_noexec=2?)";
  }
  return undefined;
}
