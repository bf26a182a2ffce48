/*
 * B: pid 2, the sandboxee, from A's clone until its own execveat. Rules:
 * csrc/child.h.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "child.h"

/* T cloned A with every signal blocked (csrc/spawn.c), and B inherited it. */
static void unblock_signals(void) {
  uint64_t none = 0;
  bb_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, SIGSET_BYTES);
}

static int apply_rlimits(struct bb_shared *sh) {
  const struct bb_req *rq = sh->req;
  const struct bb_rlimit *l = (const void *)(sh->base + rq->rlimits_off);
  for (uint32_t i = 0; i < rq->nrlimits; i++) {
    struct {
      uint64_t cur, max;
    } v = {l[i].cur, l[i].max}, old;
    /* Capabilities are gone: a limit can only be lowered, so clamp to ours. */
    long r = bb_sys4(SYS_prlimit64, 0, l[i].resource, 0, &old);
    if (r == 0 && v.max > old.max) v.max = old.max;
    if (v.cur > v.max) v.cur = v.max;
    if (r == 0) r = bb_sys4(SYS_prlimit64, 0, l[i].resource, &v, 0);
    if (r < 0) {
      char num[24];
      bb_utoa(l[i].resource, num);
      return bb_fail(sh, BB_ST_RLIMITS, r, num), -1;
    }
  }
  return 0;
}

/*
 * Only stdio, the mapped fds and (until exec) the status pipe survive; every
 * other inherited fd is closed, not just marked close-on-exec, so that the
 * listener seccomp() creates gets a number under a low RLIMIT_NOFILE. The
 * status pipe and every source first move above all targets, so that no
 * target clobbers a source or the pipe.
 */
static int remap_fds(struct bb_shared *sh, int *status_fd, int *hold_fd) {
  const struct bb_req *rq = sh->req;
  const struct bb_fdmap *m = (const void *)(sh->base + rq->fds_off);
  int tmp[BB_FDS_MAX], keep[BB_FDS_MAX + 2];
  int top = (sh->status_w > sh->hold_r ? sh->status_w : sh->hold_r) + 1;
  for (uint32_t i = 0; i < rq->nfds; i++) {
    if (m[i].src + 1 > top) top = m[i].src + 1;
    if (m[i].dst + 1 > top) top = m[i].dst + 1;
  }
  long r = bb_sys3(SYS_fcntl, sh->status_w, F_DUPFD_CLOEXEC, top);
  if (r < 0) return bb_fail(sh, BB_ST_FDS, r, "status pipe"), -1;
  *status_fd = (int)r;
  r = bb_sys3(SYS_fcntl, sh->hold_r, F_DUPFD_CLOEXEC, *status_fd + 1);
  if (r < 0) return bb_fail(sh, BB_ST_FDS, r, "hold pipe"), -1;
  *hold_fd = (int)r;
  for (uint32_t i = 0; i < rq->nfds; i++) {
    r = bb_sys3(SYS_fcntl, m[i].src, F_DUPFD_CLOEXEC, *hold_fd + 1);
    if (r < 0) {
      char num[24];
      bb_utoa((unsigned long)m[i].src, num);
      return bb_fail(sh, BB_ST_FDS, r, num), -1;
    }
    tmp[i] = (int)r;
  }
  for (uint32_t i = 0; i < rq->nfds; i++) {
    r = bb_sys3(SYS_dup3, tmp[i], m[i].dst, 0);
    if (r < 0) {
      char num[24];
      bb_utoa((unsigned long)m[i].dst, num);
      return bb_fail(sh, BB_ST_FDS, r, num), -1;
    }
  }
  int n = 0;
  for (uint32_t i = 0; i < rq->nfds; i++)
    if (m[i].dst >= 3) keep[n++] = m[i].dst;
  keep[n++] = *status_fd;
  keep[n++] = *hold_fd;
  close_all_but(keep, n);
  return 0;
}

/*
 * The pty A opened becomes our controlling terminal (we lead a new session,
 * with none yet) and the std fds the request names; the master and the
 * slave's own fd go with the other inherited fds in remap_fds. Before
 * remap_fds: bb_check_request refuses a mapping from or to those std fds.
 */
static int take_terminal(struct bb_shared *sh) {
  const struct bb_req *rq = sh->req;
  long r = bb_sys3(SYS_ioctl, sh->pty_slave, TIOCSCTTY, 0);
  if (r < 0) return bb_fail(sh, BB_ST_TERMINAL, r, "TIOCSCTTY"), -1;
  for (int fd = 0; fd < 3; fd++) {
    if (!(rq->flags & (BB_F_TTY_STDIN << fd))) continue;
    r = bb_sys3(SYS_dup3, sh->pty_slave, fd, 0);
    if (r < 0) return bb_fail(sh, BB_ST_TERMINAL, r, "dup3(terminal)"), -1;
  }
  return 0;
}

/* execvp's lookup, done before the filter so that failures are reported as
 * "not found" (127) or "not executable" (126) with the path. 0 or -errno. */
static long lookup(struct bb_shared *sh, char *out, size_t cap) {
  const char *file = bb_str(sh, sh->req->file_off);
  struct stat st;
  int has_slash = 0;
  for (const char *p = file; *p; p++) has_slash |= *p == '/';
  if (has_slash) {
    bb_strlcpy(out, file, cap);
    long r = bb_sys4(SYS_newfstatat, AT_FDCWD, out, &st, 0);
    if (r == 0 && S_ISDIR(st.st_mode)) r = -EACCES;
    if (r == 0) r = bb_sys3(SYS_faccessat, AT_FDCWD, out, X_OK);
    if (r < 0) return bb_fail(sh, BB_ST_LOOKUP, r, out), r;
    return 0;
  }
  const char *path = bb_str(sh, sh->req->search_path_off);
  long denied = 0;
  while (path && *path) {
    size_t n = 0;
    while (path[n] && path[n] != ':') n++;
    size_t len = 0;
    if (n == 0) {
      len = bb_strlcpy(out, ".", cap);
    } else {
      for (; len < n && len + 1 < cap; len++) out[len] = path[len];
      out[len] = 0;
    }
    len = bb_strlcat(out, len, "/", cap);
    bb_strlcat(out, len, file, cap);
    long r = bb_sys4(SYS_newfstatat, AT_FDCWD, out, &st, 0);
    if (r == 0 && S_ISREG(st.st_mode)) {
      r = bb_sys3(SYS_faccessat, AT_FDCWD, out, X_OK);
      if (r == 0) return 0;
      denied = r;
    }
    path += n;
    if (*path == ':') path++;
  }
  if (denied) return bb_fail(sh, BB_ST_LOOKUP, denied, file), denied;
  return bb_fail(sh, BB_ST_LOOKUP, -ENOENT, file), -ENOENT;
}

#define BB_WAIT_KILLABLE_RECV (1UL << 5) /* SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, not in older headers */

static int install_filter(struct bb_shared *sh) {
  const struct bb_req *rq = sh->req;
  struct sock_fprog prog = {(unsigned short)rq->bpf_len,
                            (struct sock_filter *)(sh->base + rq->bpf_off)};
  /* WAIT_KILLABLE_RECV (Linux 5.19): once the monitor has a notification, a
   * signal no longer cuts the call short with EINTR (csrc/monitor.c says why
   * that matters); before 5.19 the flag is EINVAL and is left out. */
  unsigned long flags = (rq->flags & BB_F_NOTIFY) ? SECCOMP_FILTER_FLAG_NEW_LISTENER | BB_WAIT_KILLABLE_RECV : 0;
  long r = bb_sys3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
  if (r == -EINVAL && (flags & BB_WAIT_KILLABLE_RECV)) {
    flags &= ~BB_WAIT_KILLABLE_RECV;
    r = bb_sys3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
  }
  /* From here on every system call goes through the policy. */
  if (r < 0) {
    bb_fail(sh, BB_ST_SECCOMP, r, (rq->flags & BB_F_NOTIFY) ? "with user notification" : 0);
    __atomic_store_n(&sh->listener_state, -1, __ATOMIC_RELEASE);
    return -1;
  }
  if (rq->flags & BB_F_NOTIFY) {
    sh->listener = (int32_t)r;
    __atomic_store_n(&sh->listener_state, 1, __ATOMIC_RELEASE);
  }
  return 0;
}

int bb_child_b(void *arg) {
  struct bb_shared *sh = arg;
  const struct bb_req *rq = sh->req;
  char path[4096];

  bb_mark(sh, BB_MK_SANDBOXEE);
  long r = bb_sys0(SYS_setsid);
  if (r < 0) return bb_fail(sh, BB_ST_SESSION, r, 0), 125;
  if ((rq->flags & BB_F_TTY) && take_terminal(sh) < 0) return 125;
  int status_fd, hold_fd;
  if (remap_fds(sh, &status_fd, &hold_fd) < 0) return 125; /* before rlimits: NOFILE may be low */
  if (apply_rlimits(sh) < 0) return 125;
  r = lookup(sh, path, sizeof path);
  if (r < 0) return r == -ENOENT ? 127 : 126;
  bb_mark(sh, BB_MK_LOOKUP);
  /* EOF: A has exec'd init (or died: then A's report, or the namespace's end). */
  char c;
  while (bb_sys3(SYS_read, hold_fd, &c, 1) == -EINTR) {
  }
  if (bb_failed(sh)) return 125;
  unblock_signals();
  /* 'L': T may start waiting for the listener, which takes only as long as
   * seccomp() does (the wait until here may be long: init's exec). */
  if ((rq->flags & BB_F_NOTIFY) && !(rq->flags & BB_F_NO_SECCOMP)) bb_sys3(SYS_write, status_fd, "L", 1);
  if (!(rq->flags & BB_F_NO_SECCOMP) && install_filter(sh) < 0) return 125;
  /* No system call but the execveat from here on: the policy may allow none. */

  /* The filter lets exactly this execveat through: its 6th argument (unused
   * by the kernel) is a per-spawn random magic, and the notification it raises
   * is answered by T before anyone else holds the listener. */
  r = bb_sys6(SYS_execveat, AT_FDCWD, (long)path, (long)sh->argv, (long)sh->envp, 0,
              (long)(((uint64_t)rq->exec_magic_hi << 32) | rq->exec_magic_lo));
  bb_fail(sh, BB_ST_EXEC, r, path);
  return r == -ENOENT ? 127 : 126;
}
