/*
 * bunbox_sandbox.c: the sandboxee's side of bunbox's two other executor
 * modes (Sandbox2's SandboxMeHere and fork server), and named fds. Depends on
 * bunbox_client.c and libc only; compile both into the program.
 *
 * sandbox me here — the program starts in its namespaces and mounts but with
 * no seccomp filter, initialises, then calls bunbox_sandbox_me_here(c):
 *
 *   sandboxee -> host   JSON {"op":"sandbox_me_here"}
 *   host -> sandboxee   BYTES  the policy's BPF program (struct sock_filter[])
 *                       UINT64 the run's exec magic
 *   sandboxee -> host   JSON {"op":"installing","fd":K}
 *   sandboxee           seccomp(SET_MODE_FILTER, NEW_LISTENER|TSYNC|TSYNC_ESRCH)
 *   sandboxee           execveat(-1, "", NULL, NULL, 0, magic): blocks
 *   host                takes the listener, answers that notification "0"
 *
 * K is the lowest free fd, where the kernel will put the listener. After the
 * filter is in, the program may be denied any system call, so it cannot say
 * more; the host takes the listener out of the program's fd table
 * (pidfd_getfd). The execveat with the magic is the one call every bunbox
 * filter sends to the monitor: it blocks until the host holds the listener,
 * has replaced our own copy of it (fd K) with /dev/null, and answers; so the
 * call returns only once the policy is enforced and we cannot answer our own
 * notifications; if the
 * host never finds the listener (another thread took fd K), the program stays
 * blocked and is killed: fail closed. TSYNC puts the filter on every thread;
 * if one cannot take it, the call fails (ESRCH).
 *
 * fork server — a prepared program calls bunbox_fork_server_loop(c), which
 * serves fork requests and returns 0 only in each new child, sandboxed:
 *
 *   server -> host   JSON {"op":"fork_server_ready","pid":P}
 *   host -> server   UINT32 id; BYTES rlimits (n x {u32 resource, u32 pad,
 *                    u64 cur, u64 max}); BYTES the child's BPF program;
 *                    UINT64 the child's exec magic
 *   server -> host   JSON {"op":"forked","id":I,"pid":P,"listener_fd":K}, then an FD frame
 *                    [child pidfd, host end of the child's own comms socket]
 *                    (or {"op":"fork_failed",…})
 *   server -> host   JSON {"op":"exit","pid":P,"wstatus":W,"utime_us":U,
 *                    "stime_us":S,"maxrss_kb":M} when a child ends
 *
 * The child gets its own comms at the same fd number, its own process group
 * (killed with it), the rlimits, and the filter with a listener at fd K,
 * which the host takes from it (pidfd_getfd through the child's pidfd). Like
 * sandbox me here, the child then blocks in execveat(-1, "", …, magic) until
 * the host, holding the listener, has replaced the child's own copy (fd K)
 * with /dev/null and answers 0: it cannot run (or end) unmonitored, nor
 * answer its own notifications. Children share the server's namespaces and
 * mounts: they can see each other in /proc. They stay non-dumpable like the
 * server, so none can open another's (or the server's) memory through
 * /proc/PID/mem or process_vm_writev, not even before its filter is in; the
 * host can, holding CAP_SYS_PTRACE over their user namespace (its own).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bunbox_client.h"

#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1UL << 4)
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

int bunbox_fd(const char *name) {
  const char *env = getenv("BUNBOX_FDS");
  size_t n = strlen(name);
  while (env && *env) {
    const char *eq = strchr(env, '=');
    if (!eq) break;
    if ((size_t)(eq - env) == n && strncmp(env, name, n) == 0) return atoi(eq + 1);
    env = strchr(eq, ',');
    if (env) env++;
  }
  errno = ENOENT;
  return -1;
}

/* The fd number the next open/socket/seccomp will get. */
static int lowest_free_fd(void) {
  int fd = fcntl(0, F_DUPFD, 0);
  if (fd < 0) fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) close(fd);
  return fd;
}

/* Receives a BPF program; *prog is malloc'd. */
static int recv_program(struct bunbox_comms *c, struct sock_fprog *prog) {
  void *data;
  size_t len;
  int r = bunbox_comms_recv_bytes(c, &data, &len);
  if (r != BUNBOX_OK) return r;
  if (len == 0 || len % sizeof(struct sock_filter) != 0 || len / sizeof(struct sock_filter) > BPF_MAXINSNS) {
    free(data);
    return BUNBOX_ERR_PROTOCOL;
  }
  prog->len = (unsigned short)(len / sizeof(struct sock_filter));
  prog->filter = data;
  return BUNBOX_OK;
}

int bunbox_sandbox_me_here(struct bunbox_comms *c) {
  int r = bunbox_comms_send_json(c, "{\"op\":\"sandbox_me_here\"}");
  if (r != BUNBOX_OK) return r;
  struct sock_fprog prog;
  uint64_t magic;
  if ((r = recv_program(c, &prog)) != BUNBOX_OK) return r;
  if ((r = bunbox_comms_recv_uint64(c, &magic)) != BUNBOX_OK) return r;
  char msg[64];
  snprintf(msg, sizeof msg, "{\"op\":\"installing\",\"fd\":%d}", lowest_free_fd());
  if ((r = bunbox_comms_send_json(c, msg)) != BUNBOX_OK) return r;
  /* prog.filter is not freed: free() may make a system call the policy forbids. */
  long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                    SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_TSYNC_ESRCH,
                    &prog);
  if (fd < 0) return BUNBOX_ERR_IO;
  /* Returns (0) only once bunbox monitors us; see above. */
  long ok = syscall(SYS_execveat, -1, "", NULL, NULL, 0, magic);
  return ok == 0 ? BUNBOX_OK : BUNBOX_ERR_IO;
}

/* ---- fork server ---- */

struct limit {
  uint32_t resource, pad;
  uint64_t cur, max;
};

static int send_exit(struct bunbox_comms *c, pid_t pid, int status, const struct rusage *ru) {
  char msg[256];
  snprintf(msg, sizeof msg,
           "{\"op\":\"exit\",\"pid\":%d,\"wstatus\":%d,\"utime_us\":%lld,\"stime_us\":%lld,\"maxrss_kb\":%ld}",
           (int)pid, status, (long long)ru->ru_utime.tv_sec * 1000000LL + ru->ru_utime.tv_usec,
           (long long)ru->ru_stime.tv_sec * 1000000LL + ru->ru_stime.tv_usec, ru->ru_maxrss);
  return bunbox_comms_send_json(c, msg);
}

static int reap(struct bunbox_comms *c) {
  for (;;) {
    int status;
    struct rusage ru;
    pid_t pid = wait4(-1, &status, WNOHANG, &ru);
    if (pid <= 0) return BUNBOX_OK;
    kill(-pid, SIGKILL); /* whatever the child left in its process group */
    int r = send_exit(c, pid, status, &ru);
    if (r != BUNBOX_OK) return r;
  }
}

/* The child: its comms, process group, limits, filter; then back to the caller. */
static int become_child(struct bunbox_comms *c, int sfd, int child_end, int host_end, const struct limit *lim,
                        size_t nlim, struct sock_fprog *prog, uint64_t magic, volatile int *shared) {
  close(sfd);
  close(host_end);
  if (dup3(child_end, bunbox_comms_fd(c), 0) < 0) _exit(125);
  close(child_end);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGCHLD, SIG_DFL);
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  for (size_t i = 0; i < nlim; i++) {
    struct rlimit64 rl = {lim[i].cur, lim[i].max};
    if (prlimit64(0, (int)lim[i].resource, &rl, NULL) < 0) _exit(125);
  }
  long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, prog);
  /* From here on only memory writes: the policy may forbid any system call. */
  __atomic_store_n(shared, fd < 0 ? -1 : (int)fd, __ATOMIC_RELEASE);
  if (fd < 0) _exit(125);
  /* Blocks until the host holds our listener (see the top of this file). */
  if (syscall(SYS_execveat, -1, "", NULL, NULL, 0, magic) != 0) _exit(125);
  return 0;
}

static int serve_fork(struct bunbox_comms *c, int sfd, int *is_child) {
  uint32_t id;
  int r = bunbox_comms_recv_uint32(c, &id);
  if (r != BUNBOX_OK) return r;
  void *ldata;
  size_t llen;
  if ((r = bunbox_comms_recv_bytes(c, &ldata, &llen)) != BUNBOX_OK) return r;
  struct sock_fprog prog;
  uint64_t magic = 0;
  if (llen % sizeof(struct limit) != 0 || (r = recv_program(c, &prog)) != BUNBOX_OK) {
    free(ldata);
    return r != BUNBOX_OK ? r : BUNBOX_ERR_PROTOCOL;
  }
  if ((r = bunbox_comms_recv_uint64(c, &magic)) != BUNBOX_OK) {
    free(ldata);
    free(prog.filter);
    return r;
  }
  char msg[256];
  int sp[2] = {-1, -1};
  volatile int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  const char *fail = NULL;
  pid_t pid = -1;
  if (shared == MAP_FAILED) fail = "mmap";
  else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) fail = "socketpair";
  else {
    *shared = -2;
    pid = fork();
    if (pid < 0) fail = "fork";
  }
  if (pid == 0) {
    *is_child = 1;
    return become_child(c, sfd, sp[1], sp[0], ldata, llen / sizeof(struct limit), &prog, magic, shared);
  }
  free(ldata);
  free(prog.filter);
  int fds[2] = {-1, sp[0]};
  if (!fail) {
    fds[0] = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fds[0] < 0) fail = "pidfd_open";
  }
  /* Wait for the child's listener: a few yields, then sleep on its pidfd. */
  for (int i = 0; !fail && __atomic_load_n(shared, __ATOMIC_ACQUIRE) == -2; i++) {
    if (i < 64) {
      sched_yield();
      continue;
    }
    struct pollfd p = {fds[0], POLLIN, 0};
    if (poll(&p, 1, 1) > 0) fail = "child died before its filter was in";
  }
  int k = -1; /* the child's own listener fd */
  if (!fail) {
    k = __atomic_load_n(shared, __ATOMIC_ACQUIRE);
    if (k < 0) fail = "child's seccomp()";
  }
  if (shared != MAP_FAILED) munmap((void *)shared, 4096);
  if (sp[1] >= 0) close(sp[1]);
  if (fail) {
    if (pid > 0) kill(pid, SIGKILL);
    snprintf(msg, sizeof msg, "{\"op\":\"fork_failed\",\"id\":%u,\"error\":\"%s: %s\"}", id, fail, strerror(errno));
    r = bunbox_comms_send_json(c, msg);
  } else {
    snprintf(msg, sizeof msg, "{\"op\":\"forked\",\"id\":%u,\"pid\":%d,\"listener_fd\":%d}", id, (int)pid, k);
    r = bunbox_comms_send_json(c, msg);
    if (r == BUNBOX_OK) r = bunbox_comms_send_fds(c, fds, 2);
  }
  for (int i = 0; i < 2; i++)
    if (fds[i] >= 0) close(fds[i]);
  return r;
}

int bunbox_fork_server_loop(struct bunbox_comms *c) {
  /* The server has no filter, and its children share its uid and /proc: as
   * long as it is dumpable, a child could write into its memory through
   * /proc/PID/mem and run code outside any filter. Non-dumpable, only a
   * capability the children lack opens it. */
  if (prctl(PR_SET_DUMPABLE, 0) < 0) return BUNBOX_ERR_IO;
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0) return BUNBOX_ERR_IO;
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return BUNBOX_ERR_IO;
  char hello[64];
  snprintf(hello, sizeof hello, "{\"op\":\"fork_server_ready\",\"pid\":%d}", (int)getpid());
  int r = bunbox_comms_send_json(c, hello);
  bunbox_comms_set_timeout(c, 10000);
  while (r == BUNBOX_OK) {
    struct pollfd p[2] = {{bunbox_comms_fd(c), POLLIN, 0}, {sfd, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      r = BUNBOX_ERR_IO;
      break;
    }
    if (p[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {
      }
      r = reap(c);
      if (r != BUNBOX_OK) break;
    }
    if (p[0].revents & (POLLIN | POLLHUP)) {
      int is_child = 0;
      r = serve_fork(c, sfd, &is_child);
      if (is_child) return BUNBOX_OK; /* in the new, sandboxed child */
    }
  }
  close(sfd);
  return r;
}
