/*
 * The idmapped trees of writable binds as root (csrc/spawn.c makes them
 * before its clone of A, A attaches them: csrc/mounts.c), on a spawner
 * thread, where glibc is fine.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clone.h"
#include "host.h"

#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef MS_PRIVATE
#define MS_PRIVATE (1 << 18)
#endif

/*
 * As root, the sandboxee's kernel uid is its own (src/containment/uids.ts),
 * so a tree of root's bound writable would refuse it (EACCES), and one it
 * could write would fill with files of a uid no one on the host has. An
 * idmapped mount (Linux 5.12) shows the source's owner O as the sandbox's
 * uid X: the sandboxee owns what O owns, and what it creates lands owned by
 * O. Setting the idmap needs privilege over the filesystem's own user
 * namespace (the host's for ext4, xfs, btrfs, tmpfs), which A, root only of
 * its new namespace, lacks: T makes each tree, detached, and A attaches it
 * (csrc/mounts.c). The idmap is a user namespace whose map says "O is X":
 * a child cloned into a namespace of its own holds it while T writes its
 * maps and opens it, then exits (the namespace lives on in the tree). The
 * same for a writable root and for an overlay's layers and upper directory
 * (overlayfs copies a file up with its owner, which the sandbox's user
 * namespace must map): A attaches those in its scratch area and stacks the
 * overlay on them (csrc/mounts.c bb_idmapped_layers, csrc/root.c).
 *
 * Where the filesystem cannot be idmapped (tmpfs before Linux 6.3, NFS,
 * FUSE, ramfs; any filesystem before 5.12), a tree any user may write (mode
 * o+w, as /tmp and its like) is bound as it is, as before idmapped mounts:
 * the sandbox's uid can write it, and what it creates there is that uid's.
 * Any other tree fails at setup, naming the owner, the sandbox's uid and
 * the fix, rather than with EACCES in the middle of a build.
 */

/* A user namespace mapping uid O to X and gid Og to Xg, as an fd; or -errno. */
static int idmap_userns(uid_t o, gid_t og, uid_t x, gid_t xg) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) < 0) return -errno;
  static const size_t size = 16384;
  char stack[16384] __attribute__((aligned(16)));
  int pidfd = -1;
  /* The child shares our memory until it exits: none of Bun's signal
   * handlers may run on its stack (see csrc/spawn.c). */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  long pid = bb_clone(CLONE_VM | CLONE_NEWUSER | CLONE_PIDFD, 0, &pidfd, stack, size, bb_child_hold, pipe_fds);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  int r = (int)pid, ns = -1;
  if (pid >= 0) {
    char path[64], map[64];
    snprintf(path, sizeof path, "/proc/%ld/uid_map", pid);
    snprintf(map, sizeof map, "%u %u 1\n", o, x);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    r = fd >= 0 && write(fd, map, strlen(map)) >= 0 ? 0 : -errno;
    if (fd >= 0) close(fd);
    if (r == 0) {
      snprintf(path, sizeof path, "/proc/%ld/gid_map", pid);
      snprintf(map, sizeof map, "%u %u 1\n", og, xg);
      fd = open(path, O_WRONLY | O_CLOEXEC);
      r = fd >= 0 && write(fd, map, strlen(map)) >= 0 ? 0 : -errno;
      if (fd >= 0) close(fd);
    }
    if (r == 0) {
      snprintf(path, sizeof path, "/proc/%ld/ns/user", pid);
      ns = open(path, O_RDONLY | O_CLOEXEC);
      if (ns < 0) r = -errno;
    }
  }
  close(pipe_fds[1]); /* the child exits */
  close(pipe_fds[0]);
  if (pidfd >= 0) {
    siginfo_t si;
    while (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED | __WALL) < 0 && errno == EINTR) {
    }
    close(pidfd);
  }
  return r < 0 ? r : ns;
}

struct mount_attr_v0 {
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};

/*
 * The attributes csrc/mounts.c gives a bind (bb_attrs_for), plus the idmap;
 * an overlay's lower layer read-only, its upper directory writable.
 */
static uint64_t tree_attrs(const struct bb_mount *m) {
  uint64_t a = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (m->kind == BB_M_LOWER) return a | MOUNT_ATTR_RDONLY;
  if (m->kind == BB_M_OVERLAY) return a;
  if (!(m->flags & BB_MF_RW)) a |= MOUNT_ATTR_RDONLY;
  if (m->flags & BB_MF_DEV) a &= ~(uint64_t)MOUNT_ATTR_NODEV;
  if (m->flags & BB_MF_NOEXEC) a |= MOUNT_ATTR_NOEXEC;
  return a;
}

int bb_idmaps_make(struct bb_shared *sh, struct bb_spawn_out *out) {
  const struct bb_req *rq = sh->req;
  const struct bb_mount *m = (const void *)(sh->base + rq->mounts_off);
  for (uint32_t i = 0; i < rq->nmounts; i++) sh->idmap_fd[i] = -1;
  /* Namespaces made for this spawn, by owner: binds of one owner share one. */
  struct { uid_t o; gid_t og; int fd; } made[8];
  int nmade = 0, r = 0;
  for (uint32_t i = 0; i < rq->nmounts && r == 0; i++) {
    if (!(m[i].flags & BB_MF_IDMAP)) continue;
    const char *src = (const char *)sh->base + m[i].src_off;
    /* As csrc/mounts.c opens bind sources: no symlink followed (5.6). */
    struct { uint64_t flags, mode, resolve; } how = {O_PATH | O_CLOEXEC, 0, 0x04 /* RESOLVE_NO_SYMLINKS */};
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, src, &how, sizeof how);
    if (fd < 0 && errno == ENOSYS) fd = open(src, O_PATH | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT && (m[i].flags & BB_MF_OPTIONAL)) {
        sh->idmap_fd[i] = -ENOENT;
        continue;
      }
      r = -errno;
      snprintf(out->detail, sizeof out->detail, "%s", src);
      out->stage = BB_ST_MOUNT;
      break;
    }
    struct stat st;
    memset(&st, 0, sizeof st);
    int ns = -1, ns_once = 0;
    if (fstat(fd, &st) < 0) r = -errno;
    for (int k = 0; r == 0 && k < nmade; k++)
      if (made[k].o == st.st_uid && made[k].og == st.st_gid) ns = made[k].fd;
    if (r == 0 && ns < 0) {
      ns = idmap_userns(st.st_uid, st.st_gid, rq->uid_outside, rq->gid_outside);
      if (ns < 0) r = ns;
      else if (nmade < 8) made[nmade++] = (typeof(made[0])){st.st_uid, st.st_gid, ns};
      else ns_once = 1;
    }
    int tree = -1;
    if (r == 0) {
      tree = (int)syscall(SYS_open_tree, fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
      if (tree < 0) r = -errno;
    }
    if (r == 0) {
      /* Private: a mount A or the plan makes below it must never propagate to the host's peer. */
      struct mount_attr_v0 a = {tree_attrs(&m[i]), 0, MS_PRIVATE, (uint64_t)ns};
      if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) < 0) r = -errno;
    }
    if (ns_once) close(ns);
    close(fd);
    /* A lower layer is only read: as before idmapped mounts, whoever owns it. */
    if ((r == -EINVAL || r == -ENOSYS) && ((st.st_mode & S_IWOTH) || m[i].kind == BB_M_LOWER)) {
      if (tree >= 0) close(tree);
      sh->idmap_fd[i] = BB_IDMAP_NONE;
      r = 0;
      continue;
    }
    if (r < 0) {
      if (tree >= 0) close(tree);
      out->stage = BB_ST_IDMAP;
      snprintf(out->detail, sizeof out->detail, "%s (owner uid %u, gid %u; the sandbox's uid %u)", src, st.st_uid,
               st.st_gid, rq->uid_outside);
      break;
    }
    sh->idmap_fd[i] = tree;
  }
  for (int k = 0; k < nmade; k++) close(made[k].fd);
  if (r < 0) {
    out->err = -r;
    bb_idmaps_close(sh);
  }
  return r;
}

/*
 * Closes T's copies of the trees. The numbers stay in sh->idmap_fd: A, cloned
 * without CLONE_FILES, holds its own copies at the same numbers from the
 * clone on and reads them there (csrc/child_a.c, csrc/mounts.c).
 */
void bb_idmaps_close(struct bb_shared *sh) { /* BB_IDMAP_NONE, -ENOENT, -1: nothing to close */
  for (uint32_t i = 0; i < sh->req->nmounts; i++)
    if (sh->idmap_fd[i] >= 0) close(sh->idmap_fd[i]);
}
