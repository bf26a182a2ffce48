/*
 * The sandbox's root and the scratch area it is built in (child code:
 * csrc/child.h's rules).
 *
 *   scratch  a tmpfs on the host's /tmp, private to A's mount namespace:
 *            n0/ is the new root's mount point; overlay tmpfs uppers and
 *            the contents of BB_M_FILE ops get directories and names there.
 *            pivot_root takes it away with the host's root; the single files
 *            bound from it stay (a bind holds its filesystem).
 *   root     the plan's first op (after an overlay's lowers): a tmpfs (the
 *            default view), a host directory (--root DIR, bound read-only
 *            unless --root-rw), or an overlayfs (--overlay).
 *
 * Mount points the root lacks are made first (csrc/points.c).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/errno.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "mounts.h"

void bb_scratch_name(struct bb_tree *t, char *name) {
  name[0] = 'n';
  bb_utoa((unsigned long)t->made++, name + 1);
}

/* A fresh directory in the scratch area: an O_PATH fd of it, its name in name. */
long bb_scratch_dir(struct bb_tree *t, char *name) {
  bb_scratch_name(t, name);
  long r = bb_sys3(SYS_mkdirat, t->scratch, name, 0700);
  if (r < 0) return r;
  return bb_open_in(t->scratch, name, O_DIRECTORY, BB_RESOLVE_NO_SYMLINKS);
}

int bb_scratch(struct bb_tree *t) {
  long tree = bb_new_tmpfs(0700, 0, BB_MOUNT_ATTR_NOSUID | BB_MOUNT_ATTR_NODEV);
  if (tree < 0) return bb_mount_fail(t, BB_ST_ROOT, tree, SCRATCH, " (the scratch tmpfs the tree is built in)");
  long dir = bb_open_in(AT_FDCWD, SCRATCH, O_DIRECTORY, 0);
  long r = dir < 0 ? dir : bb_attach((int)tree, (int)dir);
  if (dir >= 0) bb_sys1(SYS_close, dir);
  if (r < 0) {
    bb_sys1(SYS_close, tree);
    return bb_mount_fail(t, BB_ST_ROOT, r, SCRATCH, " (the scratch tmpfs the tree is built in)");
  }
  t->scratch = (int)tree; /* fsmount's fd: the root of the attached scratch */
  return 0;
}

/* A host directory as the root: a recursive bind (as root, a writable one is T's idmapped tree: csrc/idmap.c). */
static long image_root(struct bb_tree *t, uint32_t r) {
  const struct bb_mount *m = &t->ops[r];
  int img = t->fds[r];
  const char *src = bb_str(t->sh, m->src_off);
  if (img < 0) return bb_mount_fail(t, BB_ST_ROOT, img, src, " (the sandbox's root)");
  struct stat st;
  long e = bb_sys4(SYS_newfstatat, img, "", &st, BB_AT_EMPTY_PATH);
  if (e == 0 && !S_ISDIR(st.st_mode)) e = -ENOTDIR;
  if (e < 0) return bb_mount_fail(t, BB_ST_ROOT, e, src, " (the sandbox's root must be a directory)");
  if (bb_idmapped(t->sh, r)) return img; /* its attributes set by T */
  long tree = bb_sys3(SYS_open_tree, img, "", BB_OPEN_TREE_CLONE | O_CLOEXEC | BB_AT_EMPTY_PATH | BB_AT_RECURSIVE);
  if (tree < 0) return bb_mount_fail(t, BB_ST_ROOT, tree, src, " (the sandbox's root)");
  long r2 = bb_set_attrs_fd((int)tree, bb_attrs_for(m->flags), 1);
  /* Before Linux 5.12: set once attached, before anything is mounted in it. */
  t->late_attrs = r2 == -ENOSYS;
  if (r2 < 0 && r2 != -ENOSYS) {
    bb_sys1(SYS_close, tree);
    return bb_mount_fail(t, BB_ST_ROOT, r2, src, " (the sandbox's root)");
  }
  return tree;
}

/* t->root (re)opened: the topmost mount at the root's mount point. */
long bb_root_reopen(struct bb_tree *t) {
  long fd = bb_open_in(t->scratch, t->root_name, O_DIRECTORY, BB_RESOLVE_NO_SYMLINKS);
  if (fd < 0) return fd;
  if (t->root >= 0) bb_sys1(SYS_close, t->root);
  t->root = (int)fd;
  return 0;
}

/*
 * Mounts the root (the first op after its lowers) at the scratch's n0 and
 * opens it as t->root; *at is then the index of the next op.
 */
int bb_root_make(struct bb_tree *t, uint32_t n, uint32_t *at) {
  uint32_t r = 0;
  while (r < n && t->ops[r].kind == BB_M_LOWER) r++; /* bb_check_request: a root op follows */
  const struct bb_mount *m = &t->ops[r];
  uint64_t attrs = BB_MOUNT_ATTR_NOSUID | BB_MOUNT_ATTR_NODEV;
  long tree;
  if (m->kind == BB_M_TMPFS) {
    tree = bb_new_tmpfs(m->mode, m->size, attrs);
    if (tree < 0) return bb_mount_fail(t, BB_ST_ROOT, tree, "/", " (the sandbox's root tmpfs)");
  } else if (m->kind == BB_M_OVERLAY) {
    char why[BB_DETAIL_MAX - 64];
    for (uint32_t k = 0; k < r; k++)
      if (t->fds[k] < 0) return bb_mount_fail(t, BB_ST_OVERLAY, t->fds[k], bb_str(t->sh, t->ops[k].src_off), " (a lower layer)");
    int upper = m->src_off ? t->fds[r] : -1;
    if (m->src_off && upper < 0) return bb_mount_fail(t, BB_ST_OVERLAY, upper, bb_str(t->sh, m->src_off), " (the upper directory)");
    tree = bb_overlay(t, m, t->fds, r, upper, attrs, why, sizeof why);
    if (tree < 0) {
      char msg[BB_DETAIL_MAX];
      size_t k = bb_strlcpy(msg, " (the sandbox's root): ", sizeof msg);
      bb_strlcat(msg, k, why[0] ? why : "refused", sizeof msg);
      return bb_mount_fail(t, BB_ST_OVERLAY, tree, "/", msg);
    }
  } else {
    tree = image_root(t, r);
    if (tree < 0) return -1;
  }
  long dir = bb_scratch_dir(t, t->root_name);
  long e = dir < 0 ? dir : bb_attach((int)tree, (int)dir);
  if (dir >= 0) bb_sys1(SYS_close, dir);
  bb_sys1(SYS_close, tree);
  if (e == 0) e = bb_root_reopen(t);
  if (e < 0) return bb_mount_fail(t, BB_ST_ROOT, e, "/", " (attaching the sandbox's root)");
  if (t->late_attrs) {
    char path[32];
    bb_fd_path(path, t->root);
    e = bb_set_attrs_path(path, bb_attrs_for(m->flags));
    if (e < 0) return bb_mount_fail(t, BB_ST_ROOT, e, "/", " (the sandbox's root, read-only)");
  }
  *at = r + 1;
  return 0;
}

/*
 * Whether "/" is the namespace's root mount: in /proc/self/mountinfo the
 * mount at "/" is its own parent (proc(5), field 2). That is the initramfs's
 * rootfs when a system (a VM, a container booted from an initramfs) runs
 * from it without switch_root; pivot_root(2) fails there with EINVAL, as the
 * kernel never takes rootfs off the top of a mount tree. (Until the pivot,
 * /proc is the host's, where /proc/self is A.)
 */
static int root_is_rootfs(void) {
  char buf[128];
  long fd = bb_sys4(SYS_openat, AT_FDCWD, "/proc/self/mountinfo", O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return 0;
  long n = bb_sys3(SYS_read, fd, buf, sizeof buf - 1);
  bb_sys1(SYS_close, fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  /* The first line is the mount at the root: "ID PARENT MAJ:MIN ROOT MOUNTPOINT ..." */
  unsigned long id = 0, parent = 0;
  const char *p = buf;
  while (*p >= '0' && *p <= '9') id = id * 10 + (unsigned long)(*p++ - '0');
  if (*p++ != ' ') return 0;
  while (*p >= '0' && *p <= '9') parent = parent * 10 + (unsigned long)(*p++ - '0');
  if (*p != ' ') return 0;
  for (int field = 0; field < 2; field++) { /* to the space before MOUNTPOINT */
    p++;
    while (*p && *p != ' ') p++;
    if (*p != ' ') return 0;
  }
  return id == parent && p[1] == '/' && p[2] == ' ';
}

/*
 * runc's --no-pivot, for "/" = rootfs only: the new root (our cwd) is moved
 * over "/" and becomes our root by chroot; the scratch area is detached
 * (through its fd: a path from "/" is looked up in rootfs until the chroot).
 * rootfs stays beneath the new root, and what keeps the sandbox from it:
 *  - no path leads there: ".." at the top of a mount steps to its mount
 *    point and back down into the topmost mount on it, the new root again;
 *  - the chroot escape (chroot into a subdirectory, then ".." past the new
 *    root) and uncovering rootfs (umount2 or MS_MOVE of the new root) need
 *    CAP_SYS_CHROOT and CAP_SYS_ADMIN: A drops every capability, the
 *    bounding set too, before B exists (drop_capabilities, csrc/child_a.c);
 *    a user namespace made inside gives them back only over copies of these
 *    mounts, which the kernel locks (MNT_LOCKED) to the mounts above them;
 *  - no fd into rootfs survives into the sandboxee: our cwd is the new root,
 *    the plan's O_PATH fds are close-on-exec and B closes every fd it does
 *    not map before it execs (csrc/child_b.c).
 */
static long move_root(struct bb_tree *t, const char **what) {
  char scratch[32];
  bb_fd_path(scratch, t->scratch);
  *what = "the new root, moved over the initramfs's rootfs";
  long r = bb_sys5(SYS_mount, ".", "/", 0, MS_MOVE, 0);
  if (r < 0) return r;
  *what = "detach the scratch area";
  if ((r = bb_sys2(SYS_umount2, scratch, MNT_DETACH)) < 0) return r;
  *what = "chroot into the new root";
  return bb_sys1(SYS_chroot, ".");
}

/*
 * pivot_root(".", ".") in the new root, then the host's root, stacked on top
 * of it, detached (pivot_root(2), "NOTES"), scratch area and all (where "/"
 * is the initramfs's rootfs: move_root); then the root read-only unless the
 * plan made it writable.
 */
int bb_root_enter(struct bb_tree *t, const struct bb_mount *root) {
  long r = bb_sys1(SYS_fchdir, t->root);
  if (r == 0) r = bb_sys2(SYS_pivot_root, ".", ".");
  if (r == -EINVAL && root_is_rootfs()) {
    const char *what;
    if ((r = move_root(t, &what)) < 0) return bb_mount_fail(t, BB_ST_PIVOT_ROOT, r, what, 0);
  } else if (r < 0) {
    return bb_mount_fail(t, BB_ST_PIVOT_ROOT, r, "the new root", 0);
  } else if ((r = bb_sys2(SYS_umount2, ".", MNT_DETACH)) < 0) {
    return bb_mount_fail(t, BB_ST_PIVOT_ROOT, r, "detach the host's root", 0);
  }
  if ((r = bb_sys1(SYS_chdir, "/")) < 0) return bb_mount_fail(t, BB_ST_PIVOT_ROOT, r, "/", 0);
  bb_sys1(SYS_close, t->root);
  bb_sys1(SYS_close, t->scratch);
  if (t->mask_file >= 0) bb_sys1(SYS_close, t->mask_file);
  if (!(root->flags & BB_MF_RW)) {
    r = bb_set_attrs_path("/", BB_MOUNT_ATTR_RDONLY | BB_MOUNT_ATTR_NOSUID | BB_MOUNT_ATTR_NODEV);
    if (r < 0) return bb_mount_fail(t, BB_ST_ROOT, r, "/", " read-only");
  }
  return 0;
}
