/*
 * The sandbox's mount tree, built by A (pid 1) in its new mount namespace.
 *
 *   0. (bb_mounts_open, before A changes ids) every bind source is opened
 *      O_PATH: as root A still has kernel uid 0, so sources under root-only
 *      directories are reachable; after the switch to the unprivileged kernel
 *      uid they would not be
 *   1. make every mount private: nothing we do propagates back to the host
 *   2. a tmpfs on /tmp becomes the new root (so sources under the host's /tmp
 *      must be opened first: step 0)
 *   3. the plan's operations, in order; binds mount /proc/self/fd/N
 *   4. pivot_root(".", ".") in the new root, then detach the old root stacked
 *      on top of it (pivot_root(2), "NOTES")
 *   5. the new root itself read-only
 *
 * Same rules as A and B (csrc/child.h: raw system calls only), and checked
 * with them.
 * Attributes are applied with mount_setattr (Linux 5.12), which only adds
 * flags and so needs no knowledge of the flags the kernel locked on the
 * source; older kernels fall back to a remount that carries over the flags
 * statfs reports (not recursive).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/errno.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "shared.h"
#include "sys.h"

#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x1
#define MOUNT_ATTR_NOSUID 0x2
#define MOUNT_ATTR_NODEV 0x4
#define MOUNT_ATTR_NOEXEC 0x8
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

#define PATH_CAP 4200
#define NEWROOT "/tmp"

struct mount_attr_v0 {
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};

struct open_how_v0 {
  uint64_t flags, mode, resolve;
};

static int fail(struct bb_shared *sh, int stage, long err, const char *path) {
  bb_fail(sh, stage, err, path);
  return -1;
}

/* prefix + path into buf; refuses ".." components (TypeScript already did). */
static int join(char *buf, const char *prefix, const char *path) {
  size_t n = bb_strlcpy(buf, prefix, PATH_CAP);
  if (bb_strlcat(buf, n, path, PATH_CAP) >= PATH_CAP - 1) return -ENAMETOOLONG;
  for (const char *p = path; *p; p++)
    if (p[0] == '/' && p[1] == '.' && p[2] == '.' && (p[3] == '/' || p[3] == 0)) return -EINVAL;
  return 0;
}

/* mkdir -p of every component of path after `skip` bytes, refusing symlinks:
 * a destination must not be redirected by a link inside a bound directory. */
static long make_dirs(char *path, size_t skip, int include_last, unsigned mode) {
  size_t len = bb_strlen(path);
  for (size_t i = skip + 1; i <= len; i++) {
    if (path[i] != '/' && path[i] != 0) continue;
    if (path[i] == 0 && !include_last) break;
    char saved = path[i];
    path[i] = 0;
    long r = bb_sys3(SYS_mkdirat, AT_FDCWD, path, saved ? 0755 : mode);
    if (r == -EEXIST) {
      struct stat st;
      r = bb_sys4(SYS_newfstatat, AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW);
      if (r == 0 && !S_ISDIR(st.st_mode)) r = S_ISLNK(st.st_mode) ? -ELOOP : -ENOTDIR;
    }
    path[i] = saved;
    if (r < 0) return r;
  }
  return 0;
}

static long set_attrs(const char *path, uint64_t attrs, int recursive) {
  struct mount_attr_v0 a = {attrs, 0, 0, 0};
  long r = bb_sys5(SYS_mount_setattr, AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &a, sizeof a);
  if (r != -ENOSYS) return r;
  struct statfs sf;
  r = bb_sys2(SYS_statfs, path, &sf);
  if (r < 0) return r;
  unsigned long keep = (unsigned long)sf.f_flags &
                       (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME |
                        MS_RELATIME);
  unsigned long add = ((attrs & MOUNT_ATTR_RDONLY) ? MS_RDONLY : 0) |
                      ((attrs & MOUNT_ATTR_NOSUID) ? MS_NOSUID : 0) |
                      ((attrs & MOUNT_ATTR_NODEV) ? MS_NODEV : 0) |
                      ((attrs & MOUNT_ATTR_NOEXEC) ? MS_NOEXEC : 0);
  return bb_sys5(SYS_mount, 0, path, 0, MS_REMOUNT | MS_BIND | keep | add, 0);
}

static uint64_t attrs_for(uint32_t flags) {
  uint64_t a = MOUNT_ATTR_NOSUID;
  if (!(flags & BB_MF_RW)) a |= MOUNT_ATTR_RDONLY;
  if (!(flags & BB_MF_DEV)) a |= MOUNT_ATTR_NODEV;
  if (flags & BB_MF_NOEXEC) a |= MOUNT_ATTR_NOEXEC;
  return a;
}

/*
 * A recursive bind of the source fd, its attributes set while still detached
 * (so it is never visible writable), then attached through an fd on the
 * destination opened without following any symlink: nothing between the
 * checks and the mount resolves a path again (open_tree/move_mount, 5.2;
 * mount_setattr, 5.12; openat2, 5.6). -ENOSYS: use the old way.
 */
static long attach_bind(int srcfd, const char *dst, uint64_t attrs) {
  struct open_how_v0 how = {O_PATH | O_CLOEXEC, 0, 0x04 /* RESOLVE_NO_SYMLINKS */};
  long dfd = bb_sys4(437 /* openat2 */, AT_FDCWD, dst, &how, sizeof how);
  if (dfd < 0) return dfd;
  long tree = bb_sys3(428 /* open_tree */, srcfd, "", 1 /* OPEN_TREE_CLONE */ | O_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
  long r = tree;
  if (tree >= 0) {
    struct mount_attr_v0 a = {attrs, 0, 0, 0};
    r = bb_sys5(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a);
    if (r == 0) r = bb_sys5(429 /* move_mount */, tree, "", dfd, "", 0x4 /* F_EMPTY_PATH */ | 0x40 /* T_EMPTY_PATH */);
    bb_sys1(SYS_close, tree);
  }
  bb_sys1(SYS_close, dfd);
  return r;
}

static int op_bind(struct bb_shared *sh, const struct bb_mount *m, int fd, char *dst) {
  const char *host = bb_str(sh, m->src_off);
  if (fd == -ENOENT && (m->flags & BB_MF_OPTIONAL)) return 0;
  if (fd < 0) return fail(sh, BB_ST_MOUNT, fd, host);
  struct stat st;
  long r = bb_sys4(SYS_newfstatat, fd, "", &st, AT_EMPTY_PATH);
  if (r < 0) return fail(sh, BB_ST_MOUNT, r, host);
  size_t skip = sizeof NEWROOT - 1;
  if (S_ISDIR(st.st_mode)) {
    r = make_dirs(dst, skip, 1, 0755);
  } else {
    r = make_dirs(dst, skip, 0, 0755);
    if (r == 0) {
      /* O_NONBLOCK: a FIFO planted at the destination must fail (ENXIO), not block. */
      r = bb_sys4(SYS_openat, AT_FDCWD, dst, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
      if (r >= 0) r = bb_sys1(SYS_close, r);
    }
  }
  if (r == -ELOOP) {
    /* The destination is a symlink the tree already holds (from a parent bind). */
    char msg[PATH_CAP];
    size_t n = bb_strlcpy(msg, dst + skip, sizeof msg);
    bb_strlcat(msg, n, " (a symlink inside the sandbox: mount its target instead)", sizeof msg);
    return fail(sh, BB_ST_MOUNT, r, msg);
  }
  if (r < 0) return fail(sh, BB_ST_MOUNT, r, dst + skip);
  r = attach_bind(fd, dst, attrs_for(m->flags));
  if (r == -ENOSYS) { /* before Linux 5.12: by path, attributes after */
    char src[40];
    size_t n = bb_strlcpy(src, "/proc/self/fd/", sizeof src);
    bb_utoa((unsigned long)fd, src + n);
    r = bb_sys5(SYS_mount, src, dst, 0, MS_BIND | MS_REC, 0);
    if (r < 0) return fail(sh, BB_ST_MOUNT, r, host);
    r = set_attrs(dst, attrs_for(m->flags), 1);
  }
  if (r < 0) return fail(sh, BB_ST_MOUNT, r, dst + skip);
  return 0;
}

static int op_tmpfs(struct bb_shared *sh, const struct bb_mount *m, char *dst) {
  size_t skip = sizeof NEWROOT - 1;
  long r = make_dirs(dst, skip, 1, 0755);
  if (r < 0) return fail(sh, BB_ST_MOUNT, r, dst + skip);
  char opts[96];
  size_t n = bb_strlcpy(opts, "mode=0", sizeof opts);
  char oct[8];
  int k = 0;
  for (int shift = 9; shift >= 0; shift -= 3) oct[k++] = (char)('0' + ((m->mode >> shift) & 7));
  oct[k] = 0;
  n = bb_strlcat(opts, n, oct, sizeof opts);
  if (m->size) {
    char num[24];
    bb_utoa(m->size, num);
    n = bb_strlcat(opts, n, ",size=", sizeof opts);
    n = bb_strlcat(opts, n, num, sizeof opts);
  }
  unsigned long flags = MS_NOSUID | MS_NODEV | ((m->flags & BB_MF_NOEXEC) ? MS_NOEXEC : 0);
  r = bb_sys5(SYS_mount, "tmpfs", dst, "tmpfs", flags, opts);
  if (r == 0 && !(m->flags & BB_MF_RW)) r = set_attrs(dst, attrs_for(m->flags), 0);
  if (r < 0) return fail(sh, BB_ST_MOUNT, r, dst + skip);
  return 0;
}

static int op_proc(struct bb_shared *sh, char *dst) {
  size_t skip = sizeof NEWROOT - 1;
  long r = make_dirs(dst, skip, 1, 0555);
  if (r == 0) r = bb_sys5(SYS_mount, "proc", dst, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0);
  if (r < 0) return fail(sh, BB_ST_MOUNT, r, dst + skip);
  return 0;
}

static int op_symlink(struct bb_shared *sh, const char *target, char *dst) {
  size_t skip = sizeof NEWROOT - 1;
  long r = make_dirs(dst, skip, 0, 0755);
  if (r == 0) r = bb_sys3(SYS_symlinkat, target, AT_FDCWD, dst);
  if (r < 0) return fail(sh, BB_ST_MOUNT, r, dst + skip);
  return 0;
}

/*
 * A devpts of the sandbox's own (newinstance: none of the host's ptys is in
 * it), its ptmx usable by anyone inside; no gid= option, since the host's
 * tty group is not mapped in the user namespace. devpts clears the nodev a
 * mount made in a user namespace gets, so its nodes work.
 */
static int op_devpts(struct bb_shared *sh, char *dst) {
  size_t skip = sizeof NEWROOT - 1;
  long r = make_dirs(dst, skip, 1, 0755);
  if (r == 0)
    r = bb_sys5(SYS_mount, "devpts", dst, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
  if (r < 0) return fail(sh, BB_ST_MOUNT, r, dst + skip);
  return 0;
}

static int apply_op(struct bb_shared *sh, const struct bb_mount *m, int fd) {
  char dst[PATH_CAP];
  const char *s = bb_str(sh, m->src_off), *d = bb_str(sh, m->dst_off);
  long r = join(dst, NEWROOT, d);
  if (r < 0) return fail(sh, BB_ST_MOUNT, r, d);
  switch (m->kind) {
    case BB_M_BIND:
      return op_bind(sh, m, fd, dst);
    case BB_M_TMPFS:
      return op_tmpfs(sh, m, dst);
    case BB_M_PROC:
      return op_proc(sh, dst);
    case BB_M_SYMLINK:
      return op_symlink(sh, s ? s : "", dst);
    case BB_M_DEVPTS:
      return op_devpts(sh, dst);
  }
  return fail(sh, BB_ST_REQUEST, -EINVAL, "unknown mount operation"); /* bb_check_request refused it */
}

/*
 * Step 0: an O_PATH fd (or -errno) per bind source, in fds[]. TypeScript
 * resolved every symlink in the source paths (src/sandbox/mounts.ts
 * checkSource says why); RESOLVE_NO_SYMLINKS (openat2, Linux 5.6) makes a
 * link that appeared since then an error instead of a redirection.
 */
int bb_mounts_open(struct bb_shared *sh, int *fds) {
  const struct bb_req *rq = sh->req;
  const struct bb_mount *m = (const void *)(sh->base + rq->mounts_off);
  for (uint32_t i = 0; i < rq->nmounts; i++) {
    fds[i] = -1;
    if (m[i].kind != BB_M_BIND) continue;
    const char *src = bb_str(sh, m[i].src_off);
    struct open_how_v0 how = {O_PATH | O_CLOEXEC, 0, 0x04 /* RESOLVE_NO_SYMLINKS */};
    long fd = bb_sys4(437 /* openat2 */, AT_FDCWD, src, &how, sizeof how);
    if (fd == -ENOSYS) fd = bb_sys4(SYS_openat, AT_FDCWD, src, O_PATH | O_CLOEXEC, 0);
    fds[i] = (int)fd;
  }
  return 0;
}

int bb_mounts_apply(struct bb_shared *sh, const int *fds) {
  const struct bb_req *rq = sh->req;
  long r = bb_sys5(SYS_mount, 0, "/", 0, MS_REC | MS_PRIVATE, 0);
  if (r < 0) return fail(sh, BB_ST_MOUNT_NAMESPACE, r, "/");

  char opts[32] = "mode=0";
  char oct[8];
  int k = 0;
  unsigned mode = rq->root_mode ? rq->root_mode : 0755;
  for (int shift = 9; shift >= 0; shift -= 3) oct[k++] = (char)('0' + ((mode >> shift) & 7));
  oct[k] = 0;
  bb_strlcat(opts, bb_strlen(opts), oct, sizeof opts);
  r = bb_sys5(SYS_mount, "tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, opts);
  if (r < 0) return fail(sh, BB_ST_ROOT, r, NEWROOT " (the new root's mount point)");

  const struct bb_mount *m = (const void *)(sh->base + rq->mounts_off);
  for (uint32_t i = 0; i < rq->nmounts; i++)
    if (apply_op(sh, &m[i], fds[i]) < 0) return -1;

  if ((r = bb_sys1(SYS_chdir, NEWROOT)) < 0 || (r = bb_sys2(SYS_pivot_root, ".", ".")) < 0)
    return fail(sh, BB_ST_PIVOT_ROOT, r, NEWROOT);
  if ((r = bb_sys2(SYS_umount2, ".", MNT_DETACH)) < 0)
    return fail(sh, BB_ST_PIVOT_ROOT, r, "detach the host's root");
  if ((r = bb_sys1(SYS_chdir, "/")) < 0) return fail(sh, BB_ST_PIVOT_ROOT, r, "/");
  r = set_attrs("/", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0);
  if (r < 0) return fail(sh, BB_ST_ROOT, r, "/ read-only");
  return 0;
}
