/*
 * T takes hold of B (csrc/spawn.c calls these as B reports on the status
 * pipe): B's pidfd, out of A's fd table, once B exists (and, with --net
 * proxy, the sockets A bound in the sandbox's network namespace); then B's
 * seccomp listener, out of B's own, with the answer to B's first execveat.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "host.h"

#if defined(__x86_64__)
#define BB_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define BB_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/*
 * The pid a pidfd refers to, from the "Pid:" line of its fdinfo; -1 if
 * unknown. Read here, not by TypeScript (src/native/sys.ts reads the same
 * line of the pidfds it holds), because TypeScript sees B's pidfd only after
 * both execs, when B may have ended and been reaped: fdinfo then says -1.
 */
static int pidfd_pid(int pidfd) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  const char *p = strstr(buf, "\nPid:");
  return p ? atoi(p + 5) : -1;
}

/*
 * B exists: its pidfd, from A's fd table, and its pid. A waits for our ack,
 * so the table is stable, and B, A's child, cannot have been reaped.
 */
int bb_take_sandboxee(struct bb_shared *sh, int pidfd_a, int *sandboxee_pid) {
  int pidfd_b = (int)syscall(SYS_pidfd_getfd, pidfd_a, sh->pidfd_b, 0);
  if (pidfd_b < 0) {
    bb_host_fail(sh, BB_ST_NOTIFY, errno, "pidfd_getfd(sandboxee pidfd)");
    return -1;
  }
  *sandboxee_pid = pidfd_pid(pidfd_b);
  return pidfd_b;
}

/*
 * The master of the sandboxee's terminal (BB_F_TTY_*), from A's fd table:
 * called with bb_take_sandboxee, while A waits for our ack.
 */
int bb_take_terminal(struct bb_shared *sh, int pidfd_a) {
  int fd = (int)syscall(SYS_pidfd_getfd, pidfd_a, sh->pty_master, 0);
  if (fd < 0) bb_host_fail(sh, BB_ST_TERMINAL, errno, "pidfd_getfd(pty master)");
  return fd;
}

/*
 * --net proxy: the proxy listener and the DNS stub's sockets A bound
 * (csrc/child_a.c net_listen), out of A's fd table, at the same point as B's
 * pidfd: A waits for our ack, so its table is stable. On failure the ones
 * taken are closed and fds[] is all -1.
 */
int bb_take_net(struct bb_shared *sh, int pidfd_a, int fds[3]) {
  for (int i = 0; i < 3; i++) {
    fds[i] = (int)syscall(SYS_pidfd_getfd, pidfd_a, sh->net_fds[i], 0);
    if (fds[i] < 0) {
      bb_host_fail(sh, BB_ST_NETWORK, errno, "pidfd_getfd(the proxy's sockets)");
      for (int j = 0; j <= i; j++) {
        if (fds[j] >= 0) close(fds[j]);
        fds[j] = -1;
      }
      for (int j = i + 1; j < 3; j++) fds[j] = -1;
      return -1;
    }
  }
  return 0;
}

/*
 * B is about to install its filter: take the listener out of B's fd table and
 * answer B's first execveat. That is the only notification that can exist
 * yet: a filter binds the task that installs it and the children it makes
 * afterwards; B makes none, and no system call, between its seccomp() and
 * that execveat, and A (B's parent, init once it has exec'd) never runs under
 * it. The
 * listener fd is created close-on-exec, so it must be taken before B's exec,
 * and B cannot tell us it exists without a system call its own policy may
 * forbid; it stores the number and we wait the few microseconds of its
 * seccomp() call.
 */
int bb_take_listener(struct bb_shared *sh, int pidfd_b, long deadline, int *listener_out) {
  const struct bb_req *rq = sh->req;
  /* Called once B said 'L', just before its seccomp(): yield while that runs
   * (tens to hundreds of microseconds), for 0.3 ms at most, then sleep on
   * B's pidfd in 0.1 ms steps (ppoll: poll's 1 ms steps overslept B's end
   * by up to a millisecond, and a spin to the next millisecond tick lasted
   * anything from 0 to 1 ms), which also ends if B dies instead. */
  int state;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  long long spin_until = now.tv_sec * 1000000000LL + now.tv_nsec + 300000;
  while ((state = __atomic_load_n(&sh->listener_state, __ATOMIC_ACQUIRE)) == 0) {
    if (bb_failed(sh) || bb_now_ms() > deadline) break;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec * 1000000000LL + now.tv_nsec < spin_until) {
      sched_yield();
      continue;
    }
    struct pollfd pb = {pidfd_b, POLLIN, 0};
    const struct timespec step = {0, 100000};
    if (ppoll(&pb, 1, &step, NULL) > 0) break;
  }
  if (state <= 0) return 0; /* B failed (its own report says why) or died */
  int listener = (int)syscall(SYS_pidfd_getfd, pidfd_b, sh->listener, 0);
  int err = errno;
  if (listener < 0) {
    bb_host_fail(sh, BB_ST_NOTIFY, err, "pidfd_getfd(seccomp listener)");
    return -1;
  }

  /* Wait for B's execveat notification; POLLHUP means B died first. */
  struct pollfd p[1] = {{listener, POLLIN, 0}};
  for (;;) {
    long left = deadline - bb_now_ms();
    if (left <= 0) {
      close(listener);
      bb_host_fail(sh, BB_ST_TIMEOUT, ETIMEDOUT, "waiting for the sandboxee's first execve");
      return -1;
    }
    int n = poll(p, 1, (int)left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      close(listener);
      bb_host_fail(sh, BB_ST_NOTIFY, err, "poll(seccomp listener)");
      return -1;
    }
    if (p[0].revents & POLLIN) break;
    if (p[0].revents & (POLLHUP | POLLERR)) {
      close(listener);
      return 0; /* B is gone; its own report says why */
    }
  }
  struct seccomp_notif notif;
  memset(&notif, 0, sizeof notif);
  if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &notif) < 0) {
    err = errno;
    close(listener);
    if (err == ENOENT) return 0; /* B died while we were waking */
    bb_host_fail(sh, BB_ST_NOTIFY, err, "SECCOMP_IOCTL_NOTIF_RECV");
    return -1;
  }
  uint64_t magic = ((uint64_t)rq->exec_magic_hi << 32) | rq->exec_magic_lo;
  struct seccomp_notif_resp resp;
  memset(&resp, 0, sizeof resp);
  resp.id = notif.id;
  if (notif.data.nr == SYS_execveat && notif.data.arch == BB_AUDIT_ARCH &&
      notif.data.args[5] == magic) {
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  } else {
    resp.error = -EPERM;
  }
  if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno != ENOENT) {
    err = errno;
    close(listener);
    bb_host_fail(sh, BB_ST_NOTIFY, err, "SECCOMP_IOCTL_NOTIF_SEND");
    return -1;
  }
  if (!resp.flags) {
    close(listener);
    bb_host_fail(sh, BB_ST_NOTIFY, EPROTO, "first notification was not the sandboxee's execveat");
    return -1;
  }
  *listener_out = listener;
  return 0;
}
