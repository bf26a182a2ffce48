/*
 * The sandbox's mount tree, built by A (pid 1) in its new mount namespace.
 *
 *   0. (bb_mounts_open, before A changes ids) every host path of the plan
 *      (bind sources, overlay layers, the root directory) is opened O_PATH:
 *      as root A still has kernel uid 0, so paths under root-only
 *      directories are reachable; after the switch to the unprivileged
 *      kernel uid they would not be. An idmapped bind's source is a tree T
 *      made (csrc/idmap.c): A has no privilege over the source's filesystem
 *   1. make every mount private: nothing we do propagates back to the host
 *   2. the scratch tmpfs on the host's /tmp, and the root in it (csrc/root.c)
 *   3. the mount points the root lacks (csrc/points.c)
 *   4. the plan's other operations, in order, each on a destination resolved
 *      inside the new root (csrc/resolve.c)
 *   5. pivot_root into it, the host's root detached, the root read-only
 *      unless the plan made it writable (csrc/root.c); where "/" is the
 *      initramfs's rootfs, which cannot be pivoted, the new root is moved
 *      over it and chrooted into instead (csrc/root.c says why that holds)
 *
 * Same rules as A and B (csrc/child.h: raw system calls only), and checked
 * with them. Binds are cloned from the source fds (open_tree) and attached
 * to the destination fds (move_mount), with their attributes set while
 * still detached (mount_setattr, Linux 5.12), so no path is resolved again
 * and no mount is ever visible writable by mistake; before 5.12 attributes
 * are set by a remount once attached, carrying over the flags statfs reports
 * (not recursive).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "mounts.h"

/* Records a failure: what (a path), then why (may be NULL). Returns -1. */
int bb_mount_fail(struct bb_tree *t, int stage, long err, const char *what, const char *why) {
  char msg[BB_DETAIL_MAX];
  size_t n = bb_strlcpy(msg, what ? what : "", sizeof msg);
  if (why) bb_strlcat(msg, n, why, sizeof msg);
  bb_fail(t->sh, stage, err, msg);
  return -1;
}

uint64_t bb_attrs_for(uint32_t flags) {
  uint64_t a = BB_MOUNT_ATTR_NOSUID;
  if (!(flags & BB_MF_RW)) a |= BB_MOUNT_ATTR_RDONLY;
  if (!(flags & BB_MF_DEV)) a |= BB_MOUNT_ATTR_NODEV;
  if (flags & BB_MF_NOEXEC) a |= BB_MOUNT_ATTR_NOEXEC;
  return a;
}

/* mount_setattr only adds flags, so it needs no knowledge of those the kernel locked. */
long bb_set_attrs_fd(int tree, uint64_t attrs, int recursive) {
  struct mount_attr_v0 a = {attrs, 0, 0, 0};
  return bb_sys5(SYS_mount_setattr, tree, "", BB_AT_EMPTY_PATH | (recursive ? BB_AT_RECURSIVE : 0), &a, sizeof a);
}

long bb_set_attrs_path(const char *path, uint64_t attrs) {
  struct mount_attr_v0 a = {attrs, 0, 0, 0};
  long r = bb_sys5(SYS_mount_setattr, AT_FDCWD, path, 0, &a, sizeof a);
  if (r != -ENOSYS) return r;
  struct statfs sf;
  r = bb_sys2(SYS_statfs, path, &sf);
  if (r < 0) return r;
  unsigned long keep = (unsigned long)sf.f_flags &
                       (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
  unsigned long add = ((attrs & BB_MOUNT_ATTR_RDONLY) ? MS_RDONLY : 0) |
                      ((attrs & BB_MOUNT_ATTR_NOSUID) ? MS_NOSUID : 0) |
                      ((attrs & BB_MOUNT_ATTR_NODEV) ? MS_NODEV : 0) |
                      ((attrs & BB_MOUNT_ATTR_NOEXEC) ? MS_NOEXEC : 0);
  return bb_sys5(SYS_mount, 0, path, 0, MS_REMOUNT | MS_BIND | keep | add, 0);
}

long bb_attach(int tree, int dfd) {
  return bb_sys5(SYS_move_mount, tree, "", dfd, "", BB_MOVE_MOUNT_EMPTY);
}

static long is_dir(long fd) {
  struct stat st;
  long r = bb_sys4(SYS_newfstatat, fd, "", &st, BB_AT_EMPTY_PATH);
  return r < 0 ? r : S_ISDIR(st.st_mode);
}

/*
 * A clone of the tree at fd `src` (recursive or not) attached at dfd with
 * attrs: set while detached, or (before Linux 5.12) right after attaching,
 * on the mount found at dst again.
 */
static long bind_at(struct bb_tree *t, int src, int recursive, long dfd, const char *dst, uint64_t attrs) {
  long tree = bb_sys3(SYS_open_tree, src, "",
                      BB_OPEN_TREE_CLONE | O_CLOEXEC | BB_AT_EMPTY_PATH | (recursive ? BB_AT_RECURSIVE : 0));
  if (tree < 0) return tree;
  long r = bb_set_attrs_fd((int)tree, attrs, recursive);
  int late = r == -ENOSYS;
  if (r == 0 || late) r = bb_attach((int)tree, (int)dfd);
  bb_sys1(SYS_close, tree);
  if (r == 0 && late) {
    long top = bb_open_dst(t->root, dst, BB_DST_OPEN, 0);
    if (top < 0) return top;
    char path[32];
    bb_fd_path(path, top);
    r = bb_set_attrs_path(path, attrs);
    bb_sys1(SYS_close, top);
  }
  return r;
}

/* dst opened (made if missing) as a directory, or as anything else (a file's mount point). */
static long open_point(struct bb_tree *t, const char *dst, int dir, unsigned mode) {
  long dfd = bb_open_dst(t->root, dst, dir ? BB_DST_DIR : BB_DST_FILE, mode);
  if (dfd < 0) return bb_dst_fail(t, dfd, dst);
  long d = is_dir(dfd);
  if (d >= 0 && d != dir) {
    bb_sys1(SYS_close, dfd);
    return bb_mount_fail(t, BB_ST_MOUNT, dir ? -ENOTDIR : -EISDIR, dst,
                         dir ? ": a file in the sandbox's tree, where a directory is to be mounted"
                             : ": a directory in the sandbox's tree, where a file is to be mounted");
  }
  return dfd;
}

/* is_tree: fd is T's idmapped tree (csrc/idmap.c), its attributes set: attached as it is. */
static int op_bind(struct bb_tree *t, const struct bb_mount *m, int fd, int is_tree, const char *dst) {
  const char *host = bb_str(t->sh, m->src_off);
  if (fd == -ENOENT && (m->flags & BB_MF_OPTIONAL)) return 0;
  if (fd < 0) return bb_mount_fail(t, BB_ST_MOUNT, fd, host, 0);
  long dir = is_dir(fd);
  if (dir < 0) return bb_mount_fail(t, BB_ST_MOUNT, dir, host, 0);
  long dfd = open_point(t, dst, (int)dir, dir ? 0755 : 0644);
  if (dfd < 0) return -1;
  long r = is_tree ? bb_attach(fd, (int)dfd) : bind_at(t, fd, 1, dfd, dst, bb_attrs_for(m->flags));
  if (is_tree) bb_sys1(SYS_close, fd);
  bb_sys1(SYS_close, dfd);
  return r < 0 ? bb_mount_fail(t, BB_ST_MOUNT, r, dst, 0) : 0;
}

/*
 * tmpfs, proc, devpts, overlay: a fresh filesystem attached at dst.
 *
 * devpts: the sandbox's own (newinstance: none of the host's ptys is in it),
 * its ptmx usable by anyone inside; no gid= option, since the host's tty
 * group is not mapped in the user namespace. Not nodev, so its nodes work
 * (devpts is a filesystem a user namespace may have devices on).
 */
static int op_newfs(struct bb_tree *t, uint32_t at, const char *dst) {
  const struct bb_mount *m = &t->ops[at];
  long dfd = open_point(t, dst, 1, m->kind == BB_M_PROC ? 0555 : 0755);
  if (dfd < 0) return -1;
  uint64_t attrs = BB_MOUNT_ATTR_NOSUID | BB_MOUNT_ATTR_NODEV;
  long tree;
  char why[BB_DETAIL_MAX - 64];
  why[0] = 0;
  int stage = BB_ST_MOUNT;
  if (m->kind == BB_M_PROC) {
    const char *none[] = {0, 0};
    tree = bb_new_fs("proc", none, attrs | BB_MOUNT_ATTR_NOEXEC, why, sizeof why);
  } else if (m->kind == BB_M_DEVPTS) {
    /* max: ptys count against kernel.pty.max, one budget for every devpts
     * instance but the host's (whose kernel.pty.reserve is kept): without
     * it, one sandbox could take them all, and no other sandbox or
     * container could open a terminal. 64 is plenty for script,
     * expect, tmux. */
    const char *pts[] = {"newinstance", 0, "ptmxmode", "0666", "mode", "0620", "max", "64", 0, 0};
    tree = bb_new_fs("devpts", pts, BB_MOUNT_ATTR_NOSUID | BB_MOUNT_ATTR_NOEXEC, why, sizeof why);
  } else if (m->kind == BB_M_TMPFS) {
    if (!(m->flags & BB_MF_RW)) attrs |= BB_MOUNT_ATTR_RDONLY;
    if (m->flags & BB_MF_NOEXEC) attrs |= BB_MOUNT_ATTR_NOEXEC;
    tree = bb_new_tmpfs(m->mode, m->size, attrs);
  } else {
    stage = BB_ST_OVERLAY;
    tree = -EINVAL;
    for (uint32_t k = at - m->aux; k < at; k++)
      if (t->fds[k] < 0) {
        bb_sys1(SYS_close, dfd);
        return bb_mount_fail(t, stage, t->fds[k], bb_str(t->sh, t->ops[k].src_off), " (a lower layer)");
      }
    int upper = m->src_off ? t->fds[at] : -1;
    if (m->src_off && upper < 0) {
      bb_sys1(SYS_close, dfd);
      return bb_mount_fail(t, stage, upper, bb_str(t->sh, m->src_off), " (the upper directory)");
    }
    if (!(m->flags & BB_MF_RW)) attrs |= BB_MOUNT_ATTR_RDONLY;
    tree = bb_overlay(t, m, t->fds + (at - m->aux), m->aux, upper, attrs, why, sizeof why);
  }
  long r = tree < 0 ? tree : bb_attach((int)tree, (int)dfd);
  if (tree >= 0) bb_sys1(SYS_close, tree);
  bb_sys1(SYS_close, dfd);
  if (r < 0 && why[0]) {
    char msg[BB_DETAIL_MAX];
    size_t n = bb_strlcpy(msg, ": ", sizeof msg);
    bb_strlcat(msg, n, why, sizeof msg);
    return bb_mount_fail(t, stage, r, dst, msg);
  }
  return r < 0 ? bb_mount_fail(t, stage, r, dst, 0) : 0;
}

/* A symlink: made in the directory dst's parent resolves to (made if missing). */
static int op_symlink(struct bb_tree *t, const char *target, const char *dst) {
  char parent[PATH_CAP];
  size_t n = bb_strlcpy(parent, dst, sizeof parent), slash = n;
  while (slash > 0 && parent[slash - 1] != '/') slash--;
  parent[slash > 1 ? slash - 1 : 1] = 0; /* "/a/b" -> "/a"; "/a" -> "/" */
  long dir = bb_open_dst(t->root, parent, BB_DST_DIR, 0755);
  if (dir < 0) return bb_dst_fail(t, dir, parent);
  long r = bb_sys3(SYS_symlinkat, target, dir, dst + slash);
  bb_sys1(SYS_close, dir);
  if (r == -EEXIST) return bb_mount_fail(t, BB_ST_MOUNT, r, dst, ": already exists in the sandbox's tree");
  return r < 0 ? bb_dst_fail(t, r, dst) : 0;
}

static int op_dir(struct bb_tree *t, const struct bb_mount *m, const char *dst) {
  long dfd = open_point(t, dst, 1, m->mode);
  if (dfd < 0) return -1;
  bb_sys1(SYS_close, dfd);
  return 0;
}

/* A new file in the scratch area holding `len` bytes at data; its name in name. */
static long scratch_file(struct bb_tree *t, const uint8_t *data, uint64_t len, unsigned mode, char *name) {
  bb_scratch_name(t, name);
  long fd = bb_sys4(SYS_openat, t->scratch, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return fd;
  for (uint64_t done = 0; done < len;) {
    long w = bb_sys3(SYS_write, fd, data + done, len - done);
    if (w == -EINTR) continue;
    if (w <= 0) {
      bb_sys1(SYS_close, fd);
      return w < 0 ? w : -EIO;
    }
    done += (uint64_t)w;
  }
  bb_sys1(SYS_close, fd);
  return bb_open_in(t->scratch, name, 0, BB_RESOLVE_NO_SYMLINKS);
}

/* The content is written to the scratch area and that one file bound at dst;
 * an optional file (bunbox's generated /etc files) is skipped where its mount
 * point cannot be made. */
static int op_file(struct bb_tree *t, const struct bb_mount *m, const char *dst) {
  if (m->flags & BB_MF_OPTIONAL) {
    long probe = bb_open_dst(t->root, dst, BB_DST_FILE, 0644);
    if (probe < 0) return 0;
    bb_sys1(SYS_close, probe);
  }
  char name[24];
  long fd = scratch_file(t, t->sh->base + m->src_off, m->size, m->mode, name);
  if (fd < 0) return bb_mount_fail(t, BB_ST_MOUNT, fd, dst, " (writing its content)");
  long dfd = open_point(t, dst, 0, 0644);
  long r = dfd < 0 ? -1 : bind_at(t, (int)fd, 0, dfd, dst, bb_attrs_for(m->flags & ~BB_MF_RW));
  bb_sys1(SYS_close, fd);
  if (dfd < 0) return -1;
  bb_sys1(SYS_close, dfd);
  return r < 0 ? bb_mount_fail(t, BB_ST_MOUNT, r, dst, 0) : 0;
}

/* OCI's maskedPaths: an empty read-only tmpfs over a directory, an empty file over the rest. */
static int op_mask(struct bb_tree *t, const char *dst) {
  long dfd = bb_open_dst(t->root, dst, BB_DST_OPEN, 0);
  if (dfd == -ENOENT) return 0;
  if (dfd < 0) return bb_dst_fail(t, dfd, dst);
  uint64_t attrs = BB_MOUNT_ATTR_RDONLY | BB_MOUNT_ATTR_NOSUID | BB_MOUNT_ATTR_NODEV | BB_MOUNT_ATTR_NOEXEC;
  long dir = is_dir(dfd), r = dir;
  if (dir == 1) {
    long tree = bb_new_tmpfs(0755, 4096, attrs);
    r = tree < 0 ? tree : bb_attach((int)tree, (int)dfd);
    if (tree >= 0) bb_sys1(SYS_close, tree);
  } else if (dir == 0) {
    if (t->mask_file < 0) {
      char name[24];
      r = scratch_file(t, 0, 0, 0444, name);
      if (r >= 0) t->mask_file = (int)r;
    }
    if (t->mask_file >= 0) r = bind_at(t, t->mask_file, 0, dfd, dst, attrs);
  }
  bb_sys1(SYS_close, dfd);
  return r < 0 ? bb_mount_fail(t, BB_ST_MOUNT, r, dst, " (masking it)") : 0;
}

/* OCI's readonlyPaths: the tree at dst bound read-only onto itself. */
static int op_readonly(struct bb_tree *t, const char *dst) {
  long dfd = bb_open_dst(t->root, dst, BB_DST_OPEN, 0);
  if (dfd == -ENOENT) return 0;
  if (dfd < 0) return bb_dst_fail(t, dfd, dst);
  long r = bind_at(t, (int)dfd, 1, dfd, dst, BB_MOUNT_ATTR_RDONLY | BB_MOUNT_ATTR_NOSUID);
  bb_sys1(SYS_close, dfd);
  return r < 0 ? bb_mount_fail(t, BB_ST_MOUNT, r, dst, " (making it read-only)") : 0;
}

static int apply_op(struct bb_tree *t, uint32_t at) {
  const struct bb_mount *m = &t->ops[at];
  const char *dst = bb_str(t->sh, m->dst_off);
  if (t->done[at / 8] & (1u << (at % 8))) return 0; /* made with the mount points */
  switch (m->kind) {
    case BB_M_BIND:
      return op_bind(t, m, t->fds[at], bb_idmapped(t->sh, at), dst);
    case BB_M_TMPFS:
    case BB_M_PROC:
    case BB_M_DEVPTS:
    case BB_M_OVERLAY:
      return op_newfs(t, at, dst);
    case BB_M_SYMLINK:
      return op_symlink(t, bb_str(t->sh, m->src_off), dst);
    case BB_M_DIR:
      return op_dir(t, m, dst);
    case BB_M_FILE:
      return op_file(t, m, dst);
    case BB_M_MASK:
      return op_mask(t, dst);
    case BB_M_READONLY:
      return op_readonly(t, dst);
    case BB_M_LOWER:
      return 0; /* a layer of the overlay that follows */
  }
  return bb_mount_fail(t, BB_ST_REQUEST, -EINVAL, "unknown mount operation", 0); /* bb_check_request refused it */
}

/*
 * Step 0: an O_PATH fd (or -errno) per op with a host path, in fds[].
 * TypeScript resolved every symlink in those paths (src/sandbox/mounts.ts
 * checkSource says why); RESOLVE_NO_SYMLINKS (openat2, Linux 5.6) makes a
 * link that appeared since then an error instead of a redirection.
 */
int bb_mounts_open(struct bb_shared *sh, int *fds) {
  const struct bb_req *rq = sh->req;
  const struct bb_mount *m = (const void *)(sh->base + rq->mounts_off);
  for (uint32_t i = 0; i < rq->nmounts; i++) {
    fds[i] = -1;
    int host = m[i].kind == BB_M_BIND || m[i].kind == BB_M_LOWER || (m[i].kind == BB_M_OVERLAY && m[i].src_off);
    if (!host) continue;
    if (bb_idmapped(sh, i)) {
      fds[i] = sh->idmap_fd[i];
      continue;
    }
    struct open_how_v0 how = {O_PATH | O_CLOEXEC, 0, BB_RESOLVE_NO_SYMLINKS};
    long fd = bb_sys4(SYS_openat2, AT_FDCWD, bb_str(sh, m[i].src_off), &how, sizeof how);
    if (fd == -ENOSYS) fd = bb_sys4(SYS_openat, AT_FDCWD, bb_str(sh, m[i].src_off), O_PATH | O_CLOEXEC, 0);
    fds[i] = (int)fd;
  }
  return 0;
}

/*
 * As root, an overlay's layers and upper directory are T's idmapped trees
 * (csrc/idmap.c), detached: overlayfs takes only layers it can reach by
 * path. Each is attached at a directory of the scratch area, and its fd
 * becomes that directory's (the mount's root), whose /proc/self/fd path the
 * overlay is given (csrc/newfs.c).
 */
static int bb_idmapped_layers(struct bb_tree *t, int *fds) {
  for (uint32_t i = 0; i < t->sh->req->nmounts; i++) {
    uint32_t kind = t->ops[i].kind;
    if ((kind != BB_M_LOWER && kind != BB_M_OVERLAY) || !bb_idmapped(t->sh, i) || fds[i] < 0) continue;
    char name[24];
    long dir = bb_scratch_dir(t, name);
    long r = dir < 0 ? dir : bb_attach(fds[i], (int)dir);
    if (dir >= 0) bb_sys1(SYS_close, dir);
    bb_sys1(SYS_close, fds[i]);
    fds[i] = (int)(r < 0 ? r : bb_open_in(t->scratch, name, O_DIRECTORY, BB_RESOLVE_NO_SYMLINKS));
    if (fds[i] < 0) return bb_mount_fail(t, BB_ST_OVERLAY, fds[i], bb_str(t->sh, t->ops[i].src_off), " (attaching its idmapped layer)");
  }
  return 0;
}

int bb_mounts_apply(struct bb_shared *sh, int *fds) {
  const struct bb_req *rq = sh->req;
  struct bb_tree t;
  bb_memset(&t, 0, sizeof t);
  t.sh = sh;
  t.ops = (const void *)(sh->base + rq->mounts_off);
  t.fds = fds;
  t.scratch = t.root = t.mask_file = t.image = -1;
  long r = bb_sys5(SYS_mount, 0, "/", 0, MS_REC | MS_PRIVATE, 0);
  if (r < 0) return bb_mount_fail(&t, BB_ST_MOUNT_NAMESPACE, r, "/", 0);
  /* Modes as the plan gives them; B, cloned later, gets the old umask back. */
  long umask = bb_sys1(SYS_umask, 0);
  uint32_t at;
  if (bb_scratch(&t) < 0 || bb_idmapped_layers(&t, fds) < 0 || bb_root_make(&t, rq->nmounts, &at) < 0) return -1;
  const struct bb_mount *root = &t.ops[at - 1];
  bb_mount_points(&t, at, rq->nmounts);
  for (; at < rq->nmounts; at++)
    if (apply_op(&t, at) < 0) return -1;
  if (bb_points_seal(&t) < 0) return -1;
  bb_sys1(SYS_umask, umask);
  return bb_root_enter(&t, root);
}

/*
 * The child T clones into a user namespace of its own, only to hold it
 * while T writes its id maps and opens it for an idmapped mount
 * (csrc/idmap.c): it waits for EOF on a pipe, then exits. arg points at
 * the pipe's two ends; it closes its copy of the write end first.
 */
int bb_child_hold(void *arg) {
  const int *pipe_fds = arg;
  char c;
  bb_sys1(SYS_close, pipe_fds[1]);
  while (bb_sys3(SYS_read, pipe_fds[0], &c, 1) == -EINTR) {
  }
  return 0;
}
