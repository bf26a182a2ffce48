/*
 * Mount destinations, resolved inside the sandbox's new root, never against
 * the host (child code: csrc/child.h's rules).
 *
 * Every destination is opened with openat2(root, path, RESOLVE_BB_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS) (Linux 5.6): the root fd is "/" for the lookup, so
 * an absolute symlink in an image (etc/passwd -> /etc/shadow) and any ".."
 * chain end inside the image, as they will for the sandboxee; a magic link
 * (/proc/self/root, /proc/N/fd/M of a proc mounted into the tree) is refused,
 * since it would jump to wherever the kernel says. The mount itself is then
 * attached to the fd (move_mount with T_EMPTY_PATH): no path is resolved
 * again between the check and the mount.
 *
 * A missing destination is made one component at a time: each prefix is
 * opened as above, and a missing name is made with mkdirat/openat(O_EXCL) in
 * the directory its parent resolved to, which follows no link. An existing
 * file is mounted on as it is (a file bound over a file inside a read-only
 * bind needs nothing created: as bwrap does).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/errno.h>

#include "mounts.h"

long bb_open_in(int dirfd, const char *path, int flags, uint64_t resolve) {
  struct open_how_v0 how = {(uint64_t)(O_PATH | O_CLOEXEC | flags), 0, resolve};
  return bb_sys4(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* Makes `name` in the directory `parent` (relative to root; "" is the root itself). */
static long make_one(int root, const char *parent, const char *name, int file, unsigned mode) {
  long dir = bb_open_in(root, *parent ? parent : ".", O_DIRECTORY, BB_IN_ROOT);
  if (dir < 0) return dir;
  long r;
  if (file) {
    /* O_NONBLOCK: a FIFO made meanwhile must fail (ENXIO), not block. */
    r = bb_sys4(SYS_openat, dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
    if (r >= 0) r = bb_sys1(SYS_close, r);
  } else {
    r = bb_sys3(SYS_mkdirat, dir, name, mode);
  }
  bb_sys1(SYS_close, dir);
  /* The parent is there (it was just opened): ENOENT is its filesystem
   * refusing new names (procfs), told apart from a dangling symlink. */
  if (r == -ENOENT) return -EOPNOTSUPP;
  return r == -EEXIST ? 0 : r;
}

/*
 * An O_PATH fd of dst (absolute, normalised, no ".." component: TypeScript
 * and csrc/request.c checked) inside the tree whose root is `root`, or
 * -errno. With `make` (BB_DST_DIR, BB_DST_FILE), a missing dst is made
 * with `mode`, and missing parents as 0755 directories.
 */
long bb_open_dst(int root, const char *dst, int make, unsigned mode) {
  const char *rel = dst[0] == '/' ? dst + 1 : dst;
  long fd = bb_open_in(root, *rel ? rel : ".", 0, BB_IN_ROOT);
  if (fd != -ENOENT || make == BB_DST_OPEN) return fd;
  char path[PATH_CAP];
  size_t len = bb_strlcpy(path, rel, sizeof path);
  if (len >= sizeof path - 1) return -ENAMETOOLONG;
  size_t name = 0; /* where the current component starts */
  for (size_t i = 0; i <= len; i++) {
    if (path[i] != '/' && path[i] != 0) continue;
    int last = i == len;
    path[i] = 0;
    long d = bb_open_in(root, path, 0, BB_IN_ROOT);
    if (d == -ENOENT) {
      char saved = name ? path[name - 1] : 0;
      if (name) path[name - 1] = 0;
      long r = make_one(root, name ? path : "", path + name, last && make == BB_DST_FILE, last ? mode : 0755);
      if (name) path[name - 1] = saved;
      if (r < 0) return r;
      /* Still missing after EEXIST: the name is a dangling symlink. */
      d = bb_open_in(root, path, 0, BB_IN_ROOT);
    }
    if (d < 0 || last) return d;
    bb_sys1(SYS_close, d);
    path[i] = '/';
    name = i + 1;
  }
  return -EINVAL; /* not reached: the loop returns at the last component */
}

/* A destination that could not be opened or made, with what to do about it. */
int bb_dst_fail(struct bb_tree *t, long err, const char *dst) {
  const char *why = 0;
  if ((err == -EROFS || err == -EACCES) && t->points_why[0]) {
    char msg[BB_DETAIL_MAX];
    size_t n = bb_strlcpy(msg, ": not in the read-only root, and no overlay could be put on its parent to make it (",
                          sizeof msg);
    n = bb_strlcat(msg, n, t->points_why, sizeof msg);
    bb_strlcat(msg, n, "; overlayfs in a user namespace needs Linux 5.11+): create it in the image", sizeof msg);
    return bb_mount_fail(t, BB_ST_MOUNT, err, dst, msg);
  }
  if (err == -EACCES)
    why = ": cannot be made, its parent directory is not writable by the sandbox's user (yours; as root, "
          "a uid of the sandbox's own): create it in the image, or make the parent writable";
  /* -EROFS otherwise: src/native/stages.ts's hint for the mount stage says what to do. */
  else if (err == -ENOENT)
    why = ": a dangling symlink in the sandbox's tree (mount its target instead)";
  else if (err == -EOPNOTSUPP)
    why = ": cannot be made there, the filesystem of its parent makes no new names (the sandbox's /proc or /sys): "
          "mount onto a name that is there, or elsewhere";
  else if (err == -ELOOP)
    why = ": too many symlinks inside the sandbox's tree, or a magic link (/proc/N/fd/M, /proc/N/root), "
          "which bunbox does not follow";
  else if (err == -ENOTDIR)
    why = ": a path component inside the sandbox's tree is not a directory";
  else if (err == -EAGAIN)
    why = ": the tree changed while it was being resolved";
  return bb_mount_fail(t, BB_ST_MOUNT, err, dst, why);
}
