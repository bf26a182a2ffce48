/*
 * Fresh filesystems for the sandbox's tree: tmpfs, proc, overlayfs (child
 * code: csrc/child.h's rules).
 *
 * Each is made with the mount API (fsopen, fsconfig, fsmount: Linux 5.2) as
 * a detached mount whose attributes (read-only, nosuid, nodev, noexec) are
 * set before it is ever attached, so it is never visible with fewer; the
 * caller attaches it to a destination fd. A refusal leaves the kernel's
 * reason in the filesystem context's log, which goes into the message.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/errno.h>

#include "mounts.h"

#define FSOPEN_CLOEXEC 1
#define FSCONFIG_SET_FLAG 0
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_CMD_CREATE 6
#define FSMOUNT_CLOEXEC 1

/* "/proc/self/fd/N": how overlayfs is given a directory we hold an fd of
 * (it resolves its layers by path; the magic link leads to exactly the fd's
 * directory). Until pivot_root, /proc is the host's, where A is itself. */
void bb_fd_path(char *buf, long fd) {
  size_t n = bb_strlcpy(buf, "/proc/self/fd/", 32);
  bb_utoa((unsigned long)fd, buf + n);
}

/*
 * A new filesystem of `type`, configured by kv (key, value pairs ending with
 * a NULL key; a NULL value sets a flag), as a detached mount with `attrs`:
 * its fd, or -errno with the kernel's reason in why (if it gave one).
 */
long bb_new_fs(const char *type, const char *const *kv, uint64_t attrs, char *why, size_t cap) {
  if (cap) why[0] = 0;
  long fs = bb_sys2(SYS_fsopen, type, FSOPEN_CLOEXEC);
  if (fs < 0) return fs;
  /* The source /proc/self/mountinfo shows, as mount(2) with the type as source would. */
  long r = bb_sys5(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "source", type, 0);
  for (; r == 0 && kv[0]; kv += 2) {
    r = kv[1] ? bb_sys5(SYS_fsconfig, fs, FSCONFIG_SET_STRING, kv[0], kv[1], 0)
              : bb_sys5(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, kv[0], 0, 0);
  }
  if (r == 0) r = bb_sys5(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, 0, 0, 0);
  if (r == 0) r = bb_sys3(SYS_fsmount, fs, FSMOUNT_CLOEXEC, attrs);
  if (r < 0 && cap > 3) {
    /* The log holds lines like "e overlayfs: failed to clone lowerpath". */
    long got = bb_sys3(SYS_read, fs, why, cap - 1);
    if (got > 2 && why[1] == ' ') {
      size_t i = 0;
      for (long k = 2; k < got && why[k] != '\n'; k++) why[i++] = why[k];
      why[i] = 0;
    } else {
      why[0] = 0;
    }
  }
  bb_sys1(SYS_close, fs);
  return r;
}

long bb_new_tmpfs(uint32_t mode, uint64_t size, uint64_t attrs) {
  char oct[8], num[24], why[8];
  int k = 0;
  oct[k++] = '0';
  for (int shift = 9; shift >= 0; shift -= 3) oct[k++] = (char)('0' + ((mode >> shift) & 7));
  oct[k] = 0;
  bb_utoa(size, num);
  const char *kv[] = {"mode", oct, size ? "size" : 0, num, 0, 0};
  return bb_new_fs("tmpfs", kv, attrs, why, 0);
}

/* dir/name made with mode (an existing directory will do) and opened, refusing symlinks. */
static long sub_dir(int dir, const char *name, unsigned mode) {
  long r = bb_sys3(SYS_mkdirat, dir, name, mode);
  if (r < 0 && r != -EEXIST) return r;
  return bb_open_in(dir, name, O_DIRECTORY, BB_RESOLVE_NO_SYMLINKS | BB_RESOLVE_NO_MAGICLINKS);
}

/*
 * The upper layer of an overlay, in *upper and *work (fds): those of the
 * host directory `host` (upper/ and work/, made if missing), or of a fresh
 * tmpfs of `size` bytes attached in the scratch area (overlayfs takes only
 * layers it can reach by path in this namespace). 0, or -errno with what
 * failed in *what.
 */
static long upper_layer(struct bb_tree *t, int host, uint64_t size, unsigned mode, long *upper, long *work,
                        const char **what) {
  long dir;
  if (host >= 0) {
    *what = "the overlay's upper directory on the host";
    dir = bb_sys3(SYS_fcntl, host, F_DUPFD_CLOEXEC, 0);
  } else {
    *what = "the overlay's tmpfs upper layer";
    long tmp = bb_new_tmpfs(0755, size, BB_MOUNT_ATTR_NOSUID | BB_MOUNT_ATTR_NODEV);
    if (tmp < 0) return tmp;
    char name[24];
    dir = bb_scratch_dir(t, name);
    if (dir >= 0) {
      long r = bb_attach((int)tmp, (int)dir);
      bb_sys1(SYS_close, dir);
      /* Opened again: now the fresh tmpfs's root, not the directory under it. */
      dir = r < 0 ? r : bb_open_in(t->scratch, name, O_DIRECTORY, BB_RESOLVE_NO_SYMLINKS);
    }
    bb_sys1(SYS_close, tmp);
  }
  if (dir < 0) return dir;
  /* The merged root takes the upper directory's mode (a tmpfs upper's is the op's). */
  *upper = sub_dir((int)dir, "upper", host >= 0 ? 0755 : mode);
  *work = *upper < 0 ? *upper : sub_dir((int)dir, "work", 0700);
  bb_sys1(SYS_close, dir);
  if (*upper < 0) return *upper;
  if (*work < 0) {
    bb_sys1(SYS_close, *upper);
    *upper = -1;
    return *work;
  }
  return 0;
}

/*
 * An overlayfs over the directories `lowers` (fds, the bottom layer first),
 * detached, with attrs: its fd, or -errno with the reason in why. Its upper
 * layer: the host directory `upper` (an fd, or -1), else a tmpfs of m->size
 * bytes when the op is writable or sized, else none (read-only). In a user
 * namespace overlayfs keeps its metadata in user.* xattrs (userxattr), and
 * can be mounted there at all only since Linux 5.11.
 */
long bb_overlay(struct bb_tree *t, const struct bb_mount *m, const int *lowers, uint32_t nlowers, int upper,
                uint64_t attrs, char *why, size_t cap) {
  char lower[BB_LOWERS_MAX * 24 + 1], up[32], wk[32];
  size_t n = 0;
  lower[0] = 0;
  why[0] = 0;
  /* overlayfs lists the top layer first. */
  for (uint32_t k = nlowers; k-- > 0;) {
    char p[32];
    bb_fd_path(p, lowers[k]);
    if (n) n = bb_strlcat(lower, n, ":", sizeof lower);
    n = bb_strlcat(lower, n, p, sizeof lower);
  }
  long ufd = -1, wfd = -1;
  if (upper >= 0 || m->size || (m->flags & BB_MF_RW)) {
    const char *what;
    long r = upper_layer(t, upper, m->size, m->mode ? m->mode : 0755, &ufd, &wfd, &what);
    if (r < 0) {
      bb_strlcpy(why, what, cap);
      return r;
    }
    bb_fd_path(up, ufd);
    bb_fd_path(wk, wfd);
  }
  const char *kv[] = {"lowerdir", lower, "userxattr", 0, ufd >= 0 ? "upperdir" : 0, up, "workdir", wk, 0, 0};
  long r = bb_new_fs("overlay", kv, attrs, why, cap);
  if (ufd >= 0) bb_sys1(SYS_close, ufd);
  if (wfd >= 0) bb_sys1(SYS_close, wfd);
  return r;
}
