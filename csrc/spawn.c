/*
 * bb_spawn_here: the host side of starting one sandbox, on a spawner thread
 * (csrc/spawner.c; T in csrc/shared.h). Reentrant: each call has its own
 * arena and pipes.
 *
 * Why CLONE_VM: Bun is multi-threaded and its heap can be gigabytes; a fork
 * would copy its page tables (~30 ms at 2 GiB). The child instead borrows
 * Bun's address space on a private stack, like posix_spawn, until it execs.
 * Why not CLONE_VFORK: as root, the sandboxee's kernel uid must be an
 * unprivileged one, and a task inside a fresh user namespace cannot map ids
 * other than its own; T writes A's maps while A waits on the gate pipe, so T
 * must keep running. T still waits for both execs (or reaps A) before
 * returning, so the request buffer and the arena outlive every reader.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clone.h"
#include "host.h"

#define STACK_SIZE (256 * 1024)
#define GUARD_SIZE 4096

/* ---- small helpers for T (ordinary thread context: glibc is fine here) ---- */

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, text, strlen(text));
  int err = n < 0 ? errno : 0;
  close(fd);
  return n < 0 ? -err : 0;
}

/* Writes A's uid and gid maps (and setgroups) from the outside. */
static int write_id_maps(const struct bb_req *rq, pid_t pid, char *detail, size_t cap) {
  char path[64], map[64];
  int r;
  if (!(rq->flags & BB_F_CALLER_ROOT)) {
    /* Unprivileged: the kernel only lets us map our own ids, gid after "deny". */
    snprintf(path, sizeof path, "/proc/%d/setgroups", pid);
    if ((r = write_file(path, "deny")) < 0 && r != -ENOENT) {
      snprintf(detail, cap, "%s", path);
      return r;
    }
  }
  snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
  snprintf(map, sizeof map, "%u %u 1\n", rq->uid_inside, rq->uid_outside);
  if ((r = write_file(path, map)) < 0) {
    snprintf(detail, cap, "%s: %u %u 1", path, rq->uid_inside, rq->uid_outside);
    return r;
  }
  snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
  snprintf(map, sizeof map, "%u %u 1\n", rq->gid_inside, rq->gid_outside);
  if ((r = write_file(path, map)) < 0) {
    snprintf(detail, cap, "%s: %u %u 1", path, rq->gid_inside, rq->gid_outside);
    return r;
  }
  return 0;
}

static void out_fail(struct bb_spawn_out *out, int stage, int err, const char *detail) {
  out->stage = stage;
  out->err = err;
  snprintf(out->detail, sizeof out->detail, "%s", detail ? detail : "");
}

/* Waits for A to be gone, killing it first if asked; B is then gone too
 * (A is the init of its pid namespace: see bb_check_request). */
static void reap(int pidfd, int kill_first) {
  if (kill_first) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
  siginfo_t si;
  while (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED | __WALL) < 0 && errno == EINTR) {
  }
}

/*
 * The arena: [guard][stack A][guard][stack B][shared + argv/envp arrays],
 * stacks growing down towards their guard page. NULL with out filled on
 * failure.
 */
static struct bb_shared *arena_new(const uint8_t *buf, struct bb_spawn_out *out, size_t *size) {
  const struct bb_req *rq = (const void *)buf;
  size_t ptrs = ((size_t)rq->argc + 1 + (size_t)rq->envc + 1) * sizeof(char *);
  size_t tail = (sizeof(struct bb_shared) + ptrs + 4095) & ~(size_t)4095;
  *size = 2 * (GUARD_SIZE + STACK_SIZE) + tail;
  uint8_t *arena = mmap(NULL, *size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (arena == MAP_FAILED) {
    out_fail(out, BB_ST_RESOURCES, errno, "mmap(spawn arena)");
    return NULL;
  }
  /* Without its guard page, a child's stack overflow would write into
   * whatever of Bun's lies below: fail rather than run unguarded. (mprotect
   * can fail with ENOMEM, when splitting the mapping would pass
   * vm.max_map_count.) */
  if (mprotect(arena, GUARD_SIZE, PROT_NONE) < 0 ||
      mprotect(arena + GUARD_SIZE + STACK_SIZE, GUARD_SIZE, PROT_NONE) < 0) {
    out_fail(out, BB_ST_RESOURCES, errno, "mprotect(stack guard page)");
    munmap(arena, *size);
    return NULL;
  }
  struct bb_shared *sh = (void *)(arena + 2 * (GUARD_SIZE + STACK_SIZE));
  sh->req = rq;
  sh->base = buf;
  sh->stack_a = arena + GUARD_SIZE;
  sh->stack_b = arena + 2 * GUARD_SIZE + STACK_SIZE;
  sh->stack_size = STACK_SIZE;
  sh->argv = (char **)(sh + 1);
  sh->envp = sh->argv + rq->argc + 1;
  const uint32_t *av = (const void *)(buf + rq->argv_off);
  const uint32_t *ev = (const void *)(buf + rq->envp_off);
  for (uint32_t i = 0; i < rq->argc; i++) sh->argv[i] = (char *)buf + av[i];
  for (uint32_t i = 0; i < rq->envc; i++) sh->envp[i] = (char *)buf + ev[i];
  sh->listener = -1;
  sh->pty_master = sh->pty_slave = -1;
  sh->pidfd_b = -1;
  for (int i = 0; i < 3; i++) sh->net_fds[i] = -1;
  return sh;
}

/*
 * The clone of A, into the sandbox's v2 cgroup (CLONE_INTO_CGROUP; on v1 A
 * moves itself in, csrc/child_a.c) and with the sandbox's kernel ids as T's
 * effective ids, so that they own A's user namespace (csrc/contain.c says
 * why). A makes the cgroup namespace itself, once it is in its cgroup
 * (csrc/child_a.c): made here, its root would be bunbox's cgroup. *placed is
 * 0 when A still has to be moved into its v2 cgroup (no CLONE_INTO_CGROUP on
 * this kernel). Returns A's pid, or -errno with out filled.
 */
static long clone_a(const struct bb_req *rq, struct bb_shared *sh, int *pidfd, int *placed, struct bb_spawn_out *out) {
  uint64_t flags = CLONE_VM | CLONE_PIDFD | (rq->clone_flags & ~(uint64_t)BB_CLONE_NEWCGROUP);
  long r = bb_owner_begin(rq);
  if (r < 0) {
    out_fail(out, BB_ST_CLONE, (int)-r, "taking the sandbox's kernel ids to create its user namespace");
    return r;
  }
  int cgroup = bb_cgroups_v2_fd(rq);
  bb_mark(sh, BB_MK_CLONE);
  long pid = bb_clone_into(flags, 0, pidfd, sh->stack_a, sh->stack_size, cgroup, bb_child_a, sh);
  if (cgroup >= 0 && (pid == -EINVAL || pid == -E2BIG || pid == -ENOSYS)) {
    /* Before Linux 5.7, or without clone3: placed after the clone. */
    *placed = 0;
    pid = bb_clone(flags, 0, pidfd, sh->stack_a, sh->stack_size, bb_child_a, sh);
  }
  bb_owner_end(rq);
  if (pid < 0) {
    const char *hint = pid == -EPERM || pid == -ENOSPC || pid == -EINVAL
                           ? "creating namespaces"
                           : "clone of the sandbox's init";
    out_fail(out, BB_ST_CLONE, (int)-pid, hint);
  }
  return pid;
}

int bb_spawn_here(const uint8_t *buf, uint32_t len, struct bb_spawn_out *out) {
  memset(out, 0, sizeof *out);
  out->pidfd = out->listener = out->report = out->sandboxee_pidfd = out->pty_master = -1;
  out->net_proxy = out->net_dns_udp = out->net_dns_tcp = -1;
  char bad[BB_DETAIL_MAX];
  if (bb_check_request(buf, len, bad, sizeof bad) < 0) {
    out_fail(out, BB_ST_REQUEST, EINVAL, bad);
    return -1;
  }
  const struct bb_req *rq = (const void *)buf;
  int init_err;
  int init_fd = bb_init_fd(&init_err);
  if (init_fd < 0) {
    out_fail(out, BB_ST_INIT, init_err, "memfd for the sandbox init");
    return -1;
  }
  size_t size;
  struct bb_shared *sh = arena_new(buf, out, &size);
  if (!sh) return -1;
  sh->init_fd = init_fd;
  if (bb_idmaps_make(sh, out) < 0) {
    munmap(sh->stack_a - GUARD_SIZE, size);
    return -1;
  }

  int gate[2] = {-1, -1}, status[2] = {-1, -1}, report[2] = {-1, -1};
  if (pipe2(gate, O_CLOEXEC) < 0 || pipe2(status, O_CLOEXEC) < 0 ||
      pipe2(report, O_CLOEXEC) < 0) {
    out_fail(out, BB_ST_RESOURCES, errno, "pipe2");
    bb_idmaps_close(sh);
    for (int i = 0; i < 2; i++) {
      if (gate[i] >= 0) close(gate[i]);
      if (status[i] >= 0) close(status[i]);
      if (report[i] >= 0) close(report[i]);
    }
    munmap(sh->stack_a - GUARD_SIZE, size);
    return -1;
  }
  sh->gate_r = gate[0];
  sh->status_w = status[1];
  sh->report_w = report[1];

  /*
   * All signals blocked across the clone: A starts with Bun's handlers, which
   * must never run on A's stack in Bun's memory. A resets every handler to
   * SIG_DFL before anything can unblock them (what glibc's posix_spawn does).
   * exit_signal 0: Bun or a library calling waitpid(-1) cannot reap A, which
   * only waitid(__WALL) on its pidfd does.
   */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pidfd = -1, placed = 1;
  long pid = clone_a(rq, sh, &pidfd, &placed, out);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  bb_idmaps_close(sh); /* A has its own copies */
  close(gate[0]);
  close(status[1]);
  close(report[1]);
  int result = -1, listener = -1, sandboxee_pid = -1, pidfd_b = -1, pty_master = -1;
  int net[3] = {-1, -1, -1};
  if (pid < 0) goto done; /* clone_a said why */

  long deadline = bb_now_ms() + rq->setup_timeout_ms;
  int r = placed ? 0 : bb_cgroups_place(rq, (pid_t)pid, out->detail, sizeof out->detail);
  if (r < 0) {
    reap(pidfd, 1);
    out->stage = BB_ST_CGROUP;
    out->err = -r;
    goto done;
  }
  r = write_id_maps(rq, (pid_t)pid, out->detail, sizeof out->detail);
  if (r < 0) {
    reap(pidfd, 1);
    out->stage = BB_ST_USER_NAMESPACE;
    out->err = -r;
    goto done;
  }
  /* Open the gate; keep our end open so A can tell, later, that we still live. */
  if (write(gate[1], "g", 1) != 1) {
    reap(pidfd, 1);
    out_fail(out, BB_ST_RESOURCES, errno, "gate pipe");
    goto done;
  }

  /* Until EOF on the status pipe (both children exec'd or died), or the
   * deadline (then A is killed and reaped, and B dies with it). */
  int listening = (rq->flags & BB_F_NOTIFY) && !(rq->flags & BB_F_NO_SECCOMP), reaped = 0;
  struct pollfd p = {status[0], POLLIN, 0};
  for (;;) {
    long left = deadline - bb_now_ms();
    if (left <= 0) {
      bb_host_fail(sh, BB_ST_TIMEOUT, ETIMEDOUT, "sandbox setup");
      reap(pidfd, 1);
      reaped = 1;
      break;
    }
    int n = poll(&p, 1, (int)left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    char c;
    ssize_t got = read(status[0], &c, 1);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break; /* EOF: A and B have exec'd or exited */
    if (c == 'B' && pidfd_b < 0) {
      /* B exists and A waits for our ack: A's fd table holds B's pidfd. */
      pidfd_b = bb_take_sandboxee(sh, pidfd, &sandboxee_pid);
      int failed = pidfd_b < 0;
      if (!failed && (rq->flags & BB_F_TTY)) failed = (pty_master = bb_take_terminal(sh, pidfd)) < 0;
      if (!failed && (rq->flags & BB_F_NET_PROXY)) failed = bb_take_net(sh, pidfd, net) < 0;
      if (!failed && write(gate[1], "a", 1) != 1) {
        bb_host_fail(sh, BB_ST_RESOURCES, errno, "gate pipe (ack)");
        failed = 1;
      }
      if (failed) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    } else if (c == 'L' && pidfd_b >= 0 && listener < 0 && listening) {
      /* B installs its filter once A has exec'd init; its first execveat
       * then waits in its notification for our answer. */
      if (bb_take_listener(sh, pidfd_b, deadline, &listener) < 0) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    }
  }
  bb_mark(sh, BB_MK_EXEC);
  for (int i = 0; i < BB_MARKS; i++)
    out->phase_us[i] = sh->marks[i] ? (uint32_t)((sh->marks[i] - sh->marks[BB_MK_CLONE]) / 1000) : 0;

  /* Both children are past their last bb_fail here: exec'd, or dead. */
  int stage = bb_failed(sh);
  if (stage) {
    if (!reaped) reap(pidfd, 0);
    out_fail(out, stage, sh->err, sh->detail);
    goto done;
  }
  if (__atomic_load_n(&sh->claim, __ATOMIC_ACQUIRE)) {
    /* A child claimed the slot and was killed before it published. */
    if (!reaped) reap(pidfd, 1);
    if (sh->host.stage) out_fail(out, sh->host.stage, sh->host.err, sh->host.detail);
    else out_fail(out, BB_ST_SANDBOXEE, EINTR, "a child of the spawn was killed while reporting a failure");
    goto done;
  }
  out->pidfd = pidfd;
  out->pid = (int32_t)pid;
  out->listener = listener;
  fcntl(report[0], F_SETFL, O_NONBLOCK);
  out->report = report[0];
  out->sandboxee_pid = sandboxee_pid;
  /* B's pidfd is of use only where B installs its filter itself later (sandbox
   * me here, through it the host takes the listener); elsewhere it is closed
   * below, one fd fewer for every run in flight. */
  if (rq->flags & BB_F_NO_SECCOMP) {
    out->sandboxee_pidfd = pidfd_b;
    pidfd_b = -1;
  }
  out->pty_master = pty_master;
  out->net_proxy = net[0];
  out->net_dns_udp = net[1];
  out->net_dns_tcp = net[2];
  pidfd = listener = report[0] = pty_master = net[0] = net[1] = net[2] = -1;
  result = 0;

done:
  if (pidfd >= 0) close(pidfd);
  if (pidfd_b >= 0) close(pidfd_b);
  if (pty_master >= 0) close(pty_master);
  if (listener >= 0) close(listener);
  if (report[0] >= 0) close(report[0]);
  for (int i = 0; i < 3; i++)
    if (net[i] >= 0) close(net[i]);
  close(gate[1]);
  close(status[0]);
  /* Safe on every path: the clone failed, or both children have exec'd (EOF
   * on the status pipe: exec switches mm before it closes fds), or A has
   * been reaped and B with it (bb_check_request: why CLONE_NEWPID). */
  munmap(sh->stack_a - GUARD_SIZE, size);
  return result;
}

/*
 * bb_spawn_here on the calling thread, for a process that runs one sandbox
 * (`bunbox run`: src/native/spawn.ts spawnOnCallingThread): no spawner
 * thread to start and no hand-over between threads. The calling thread must
 * outlive the sandbox (A's parent-death signal follows the thread that
 * cloned it): the JavaScript thread does. Then, for at most wait_ms, it
 * waits for the sandbox to end or to ask its monitor (pidfd or listener
 * readable), so that a command that ends that soon needs no reactor thread
 * either; a signal cuts the wait short (EINTR), for its handler to run.
 * Returns as bb_spawn_here.
 */
BB_API int bb_spawn(const uint8_t *buf, uint32_t len, struct bb_spawn_out *out, int32_t wait_ms) {
  int r = bb_spawn_here(buf, len, out);
  if (r != 0 || wait_ms <= 0) return r;
  struct pollfd p[2] = {{out->pidfd, POLLIN, 0}, {out->listener, POLLIN, 0}}; /* poll skips an fd of -1 */
  long deadline = bb_now_ms() + wait_ms;
  for (long left = wait_ms; left > 0; left = deadline - bb_now_ms()) {
    if (poll(p, 2, (int)left) <= 0) break; /* the time is up, or a signal came */
    if (p[0].revents || (p[1].revents & POLLIN)) break;
    /* The listener hung up alone: no task uses the filter any more (the
     * sandboxee has ended), and init is about to. */
    p[1].fd = -1;
  }
  return r;
}
