/*
 * T's part of containment (csrc/spawn.c calls these around its clone of A):
 * the sandbox's cgroups and the owner of its user namespace (the idmapped
 * trees of writable binds are csrc/idmap.c's). TypeScript decides all of it
 * (src/containment/); this applies the request, on a spawner thread, where
 * glibc is fine.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host.h"

#ifndef F_OFD_SETLK
#define F_OFD_SETLK 37
#endif

static const struct bb_cgroup *cgroups(const struct bb_req *rq) {
  return (const void *)((const uint8_t *)rq + rq->cgroups_off);
}

/* ---- cgroups ---- */

/* v2: the directory fd for CLONE_INTO_CGROUP (Linux 5.7), or -1. */
int bb_cgroups_v2_fd(const struct bb_req *rq) {
  const struct bb_cgroup *cg = cgroups(rq);
  for (uint32_t i = 0; i < rq->ncgroups; i++)
    if (cg[i].kind == BB_CG_V2) return cg[i].fd;
  return -1;
}

/*
 * v2 without CLONE_INTO_CGROUP (a kernel before 5.7, or clone3 missing):
 * A, waiting on the gate, is moved by pid. Moving another process takes the
 * kernel's cgroup_threadgroup_rwsem for writing, which waits for an RCU
 * grace period (10-30 ms on an idle machine here), but only on kernels that
 * old. (On v1, A moves itself: csrc/child_a.c join_cgroups.)
 */
int bb_cgroups_place(const struct bb_req *rq, pid_t pid, char *detail, size_t cap) {
  int dir = bb_cgroups_v2_fd(rq);
  if (dir < 0) return 0;
  int fd = openat(dir, "cgroup.procs", O_WRONLY | O_CLOEXEC);
  char num[16];
  int n = snprintf(num, sizeof num, "%d", pid);
  int r = fd < 0 || write(fd, num, (size_t)n) != n ? -errno : 0;
  if (fd >= 0) close(fd);
  if (r < 0) snprintf(detail, cap, "cgroup.procs (moving the sandbox's init into its cgroup)");
  return r;
}

/* ---- the owner of the user namespace ---- */

/*
 * A user namespace belongs to the effective uid of the task that creates it,
 * and the kernel charges what the namespace's processes take of per-user
 * budgets (inotify instances, message-queue bytes, pending signals, the
 * namespaces they make) to that owner as well. As root, the sandbox's own
 * kernel uid must own it, not root: T's effective ids become the sandbox's
 * for the clone. Credentials are per thread in the kernel, and these are raw
 * system calls (glibc's setresuid would change every thread of bunbox). The
 * real and saved uid stay 0, so the capabilities come back with euid 0
 * (capabilities(7), "Effect of user ID changes on capabilities"); the
 * filesystem ids go back to 0 at once, so that A, which inherits them, opens
 * bind sources as root did before (csrc/mounts.c bb_mounts_open).
 * One side effect: the kernel makes bunbox's memory non-dumpable (no core
 * file) on the first such change, as for any process that changed its euid.
 */
int bb_owner_begin(const struct bb_req *rq) {
  if (!(rq->flags & BB_F_CALLER_ROOT)) return 0;
  if (syscall(SYS_setresgid, -1, rq->gid_outside, -1) < 0) return -errno;
  if (syscall(SYS_setresuid, -1, rq->uid_outside, -1) < 0) {
    int err = errno;
    if (syscall(SYS_setresgid, -1, 0, -1) < 0) abort();
    return -err;
  }
  syscall(SYS_setfsuid, 0);
  syscall(SYS_setfsgid, 0);
  return 0;
}

/* Root again: with ruid 0 this cannot fail; if it did, the thread would go on unprivileged. */
void bb_owner_end(const struct bb_req *rq) {
  if (!(rq->flags & BB_F_CALLER_ROOT)) return;
  if (syscall(SYS_setresuid, -1, 0, -1) < 0 || syscall(SYS_setresgid, -1, 0, -1) < 0) abort();
}

/* ---- OFD locks, for the uid allocator (src/containment/uids.ts) ---- */

/*
 * An exclusive open-file-description lock on [start, start + len) of fd, or
 * (unlock) its release, without waiting: 0, or -EAGAIN when another
 * description holds it. OFD locks conflict between descriptions, even of one
 * process, and go with the last fd of theirs: a lock dies with the bunbox
 * that held it.
 */
BB_API int bb_lock_range(int fd, uint64_t start, uint64_t len, int unlock) {
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = unlock ? F_UNLCK : F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = (off_t)start;
  fl.l_len = (off_t)len;
  return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* A pidfd for pid (Linux 5.3), or -errno: the sweep signals leftovers through one. */
BB_API int bb_pidfd_open(int pid) {
  long fd = syscall(SYS_pidfd_open, pid, 0);
  return fd < 0 ? -errno : (int)fd;
}
