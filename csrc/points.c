/*
 * Mount points the root lacks, made before anything is mounted into it
 * (child code: csrc/child.h's rules).
 *
 * An image is read-only (--root DIR), and its directories may belong to
 * users the sandbox's user namespace does not map (root, when bunbox runs as
 * root: A's capabilities do not reach files of unmapped owners), so a mount
 * point it lacks (--tmpfs /build, the default /proc of a bare staging
 * directory, --file x:/etc/motd) often cannot be made there. bwrap refuses
 * then. bunbox puts an overlay "point" on the deepest directory the image
 * has on the way: that directory as the lower layer, a small tmpfs owned by
 * A as the upper one (with the directory's mode), where A makes the rest;
 * the point is made read-only once the tree is built. Nothing reaches the
 * image on the host, and the directory reads as before, plus the new names
 * (and owned by the sandbox's own uid, the one uid it maps).
 *
 * Only the root's own directories get points: a destination under another
 * mount of the plan is made on that mount (a tmpfs takes it; a read-only
 * bind refuses it, with a message saying what to do). Not in a writable
 * root (--root-rw, --overlay), whose directories the sandboxee may write
 * where it can: a point there would turn writes into copies kept in a tmpfs.
 * Where the kernel cannot mount overlayfs in a user namespace (before Linux
 * 5.11) the mount point fails, with the reason.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/errno.h>
#include <sys/stat.h>

#include "mounts.h"

#define POINT_SIZE (1u << 20) /* a point's upper layer holds names, not data */

/* Whether dst lies under the destination of an op in [from, j) that puts a
 * new tree there, so that its mount point is made there, not in the root. */
static int covered(const struct bb_tree *t, uint32_t from, uint32_t j, const char *dst) {
  for (uint32_t k = from; k < j; k++) {
    uint32_t kind = t->ops[k].kind;
    if (kind != BB_M_BIND && kind != BB_M_TMPFS && kind != BB_M_PROC && kind != BB_M_DEVPTS && kind != BB_M_OVERLAY) continue;
    const char *d = bb_str(t->sh, t->ops[k].dst_off);
    size_t n = bb_strlen(d);
    int prefix = 1;
    for (size_t i = 0; i < n && prefix; i++) prefix = d[i] == dst[i];
    if (prefix && dst[n] == '/') return 1;
  }
  return 0;
}

/* An overlay point on the deepest directory of the tree on dst's way. */
static int make_point(struct bb_tree *t, const char *dst) {
  if (t->npoints >= BB_POINTS_MAX) return bb_strlcpy(t->points_why, "too many", sizeof t->points_why), -1;
  char path[PATH_CAP];
  size_t len = bb_strlcpy(path, dst, sizeof path), end = 1; /* "/" exists */
  for (size_t i = 1; i <= len; i++) {
    if (path[i] != '/' && path[i] != 0) continue;
    char c = path[i];
    path[i] = 0;
    long fd = bb_open_in(t->root, path + 1, O_DIRECTORY, BB_IN_ROOT);
    path[i] = c;
    if (fd < 0) break;
    bb_sys1(SYS_close, fd);
    end = i;
  }
  path[end] = 0;
  const char *rel = end > 1 ? path + 1 : ".";
  long dir = bb_open_in(t->root, rel, O_DIRECTORY, BB_IN_ROOT);
  if (dir < 0) return -1;
  /* The lower layer is the image's own directory, not what an earlier point
   * shows of it: points never stack (overlayfs nests two deep at most), and
   * no earlier point has anything below this directory (it would have been
   * made there, needing no point here). */
  long lower = bb_open_in(t->image, rel, O_DIRECTORY, BB_IN_ROOT);
  struct stat st;
  long r = lower < 0 ? lower : bb_sys4(SYS_newfstatat, lower, "", &st, BB_AT_EMPTY_PATH);
  struct bb_mount point = {BB_M_OVERLAY, 0, 0, 0, r == 0 ? st.st_mode & 07777 : 0755, 1, POINT_SIZE};
  int low = (int)lower;
  long tree = r < 0 ? r : bb_overlay(t, &point, &low, 1, -1, BB_MOUNT_ATTR_NOSUID | BB_MOUNT_ATTR_NODEV,
                                      t->points_why, sizeof t->points_why);
  if (lower >= 0) bb_sys1(SYS_close, lower);
  if (tree >= 0) {
    r = bb_attach((int)tree, (int)dir);
    if (r == 0) t->points[t->npoints++] = (int)tree;
    else bb_sys1(SYS_close, tree);
  } else if (!t->points_why[0]) {
    bb_strlcpy(t->points_why, tree == -EPERM ? "not permitted" : "refused", sizeof t->points_why);
  }
  bb_sys1(SYS_close, dir);
  /* A point on the root is stacked on it: look up from the top from now on. */
  if (tree >= 0 && r == 0 && end == 1) r = bb_root_reopen(t);
  return tree < 0 || r < 0 ? -1 : 0;
}

/* The parent of dst ("/a/b" -> "/a", "/a" -> "/") into buf; returns the offset of dst's last name. */
static size_t parent_of(const char *dst, char *buf) {
  size_t n = bb_strlcpy(buf, dst, PATH_CAP), slash = n;
  while (slash > 0 && buf[slash - 1] != '/') slash--;
  buf[slash > 1 ? slash - 1 : 1] = 0;
  return slash;
}

/*
 * Makes the mount points of ops[from..n) that lie in the root itself, with
 * points where needed; a symlink or directory op made here is marked done.
 * What cannot be made is left for the op, which reports it.
 */
int bb_mount_points(struct bb_tree *t, uint32_t from, uint32_t n) {
  const struct bb_mount *root = &t->ops[from - 1];
  int may_point = root->kind == BB_M_BIND && !(root->flags & BB_MF_RW);
  /* The image as bound, before any point is put on it. */
  t->image = may_point ? (int)bb_sys3(SYS_fcntl, t->root, F_DUPFD_CLOEXEC, 0) : -1;
  if (t->image < 0) may_point = 0;
  for (uint32_t j = from; j < n; j++) {
    const struct bb_mount *o = &t->ops[j];
    const char *dst = bb_str(t->sh, o->dst_off);
    if (o->kind == BB_M_LOWER || o->kind == BB_M_MASK || o->kind == BB_M_READONLY) continue;
    if (o->kind == BB_M_BIND && t->fds[j] < 0) continue; /* missing: skipped or reported by the op */
    if (covered(t, from, j, dst)) continue;
    int make = BB_DST_DIR;
    unsigned mode = o->kind == BB_M_DIR ? o->mode : o->kind == BB_M_PROC ? 0555 : 0755;
    if (o->kind == BB_M_FILE) make = BB_DST_FILE, mode = 0644;
    if (o->kind == BB_M_BIND) {
      struct stat st;
      if (bb_sys4(SYS_newfstatat, t->fds[j], "", &st, BB_AT_EMPTY_PATH) < 0) continue;
      if (!S_ISDIR(st.st_mode)) make = BB_DST_FILE, mode = 0644;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
      long r;
      if (o->kind == BB_M_SYMLINK) {
        char parent[PATH_CAP];
        size_t name = parent_of(dst, parent);
        r = bb_open_dst(t->root, parent, BB_DST_DIR, 0755);
        if (r >= 0) {
          long dir = r;
          r = bb_sys3(SYS_symlinkat, bb_str(t->sh, o->src_off), dir, dst + name);
          bb_sys1(SYS_close, dir);
        }
      } else {
        r = bb_open_dst(t->root, dst, make, mode);
        if (r >= 0) bb_sys1(SYS_close, r);
      }
      if (r >= 0 && (o->kind == BB_M_SYMLINK || o->kind == BB_M_DIR)) t->done[j / 8] |= (uint8_t)(1u << (j % 8));
      if (r >= 0 || attempt || !may_point || (r != -EROFS && r != -EACCES)) break;
      if (make_point(t, dst) < 0) break;
    }
  }
  return 0;
}

/* The points read-only, now that every mount point is made. */
int bb_points_seal(struct bb_tree *t) {
  if (t->image >= 0) bb_sys1(SYS_close, t->image);
  t->image = -1;
  for (int i = 0; i < t->npoints; i++) {
    long r = bb_set_attrs_fd(t->points[i], BB_MOUNT_ATTR_RDONLY | BB_MOUNT_ATTR_NOSUID | BB_MOUNT_ATTR_NODEV, 0);
    bb_sys1(SYS_close, t->points[i]);
    if (r < 0) return bb_mount_fail(t, BB_ST_MOUNT, r, "a mount point's overlay", " (read-only)");
  }
  t->npoints = 0;
  return 0;
}
