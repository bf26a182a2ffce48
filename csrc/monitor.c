/*
 * Host-side helpers for the monitor (src/monitor/): the reactor thread and the
 * non-blocking system calls TypeScript makes on pidfds and seccomp listeners.
 *
 * The reactor: Bun cannot wait on a pidfd or a seccomp listener, and a blocking
 * wait on the JavaScript thread would freeze the event loop. One C thread
 * blocks in epoll_wait over every watched fd and reports readiness through a
 * bun:ffi threadsafe JSCallback, which Bun queues onto the JavaScript thread.
 * Every watch is EPOLLONESHOT, so an fd that stays ready (an exited pidfd) is
 * reported once, until TypeScript re-arms it; the thread never spins. The
 * token of a watch is TypeScript's (src/native/reactor.ts), which never gives
 * a live watch's token to another. The thread lives as long as the process:
 * it holds no JavaScript state and does not keep the event loop alive
 * (src/native/reactor.ts holds a ref'd timer while anything is watched).
 *
 * A seccomp listener is watched differently (bb_reactor_watch op 3): the
 * reactor thread takes each notification itself (SECCOMP_IOCTL_NOTIF_RECV)
 * the moment it is ready, queues it for TypeScript (bb_notif_pop) and
 * watches the listener again. Why: until a notification is received, the
 * task waiting in it is interruptible, and a signal whose handler lacks
 * SA_RESTART makes its call fail with EINTR (a fork() that "cannot fork");
 * once received, with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19,
 * csrc/child_b.c), only a fatal signal ends the wait. A round trip through
 * the event loop left that window open for milliseconds; a thread blocked
 * in epoll_wait closes it in microseconds. The queue is bounded by the
 * sandbox's tasks: each has at most one notification pending.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plan.h"
#include "sys.h"

typedef void (*bb_ready_fn)(uint32_t token, uint32_t events);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int epfd = -1;
static bb_ready_fn ready;

/* The listeners the reactor receives from, and what it received: under `qlock`. */
struct listener {
  uint32_t token;
  int fd;
};
struct pending {
  struct pending *next;
  uint32_t token;
  struct seccomp_notif n;
};
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static struct listener *listeners;
static size_t nlisteners, caplisteners;
static struct pending *qhead, **qtail = &qhead;

static struct listener *find_listener(uint32_t token) {
  for (size_t i = 0; i < nlisteners; i++)
    if (listeners[i].token == token) return &listeners[i];
  return NULL;
}

/*
 * A listener is ready: receive under qlock, so that a concurrent removal
 * (TypeScript closing the watch, then the fd) cannot slip between the
 * check that it is still watched and the ioctl on its fd.
 */
static void receive(uint32_t token) {
  pthread_mutex_lock(&qlock);
  struct listener *l = find_listener(token);
  if (l) {
    struct pending *p = calloc(1, sizeof *p);
    if (p && ioctl(l->fd, SECCOMP_IOCTL_NOTIF_RECV, &p->n) == 0) {
      p->token = token;
      *qtail = p;
      qtail = &p->next;
    } else {
      free(p); /* ENOENT: the task died meanwhile; nothing to take */
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = token | (1ULL << 32)};
    epoll_ctl(epfd, EPOLL_CTL_MOD, l->fd, &ev);
  }
  pthread_mutex_unlock(&qlock);
}

static void *reactor(void *arg) {
  (void)arg;
  /* Under load, how soon this thread wakes is how long a task waits interruptibly (above):
   * the highest CFS priority where allowed (root; otherwise this fails and changes nothing).
   * Its work per wake-up is bounded: a task has at most one notification pending. */
  setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), -20);
  struct epoll_event ev[64];
  for (;;) {
    int n = epoll_wait(epfd, ev, 64, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return NULL;
    for (int i = 0; i < n; i++) {
      uint32_t token = (uint32_t)ev[i].data.u64;
      if ((ev[i].data.u64 >> 32) && (ev[i].events & EPOLLIN)) receive(token);
      ready(token, ev[i].events);
    }
  }
}

/* The oldest notification received from watch `token`: 1 (in *out), or 0 if none. */
BB_API int bb_notif_pop(uint32_t token, struct seccomp_notif *out) {
  int r = 0;
  pthread_mutex_lock(&qlock);
  for (struct pending **pp = &qhead; *pp; pp = &(*pp)->next) {
    struct pending *p = *pp;
    if (p->token != token) continue;
    *out = p->n;
    *pp = p->next;
    if (qtail == &p->next) qtail = pp;
    free(p);
    r = 1;
    break;
  }
  pthread_mutex_unlock(&qlock);
  return r;
}

/* Op 3 and 2 for a listener: (un)register it; removal drops what it had queued. */
static int listener_watch(int fd, uint32_t token, int add) {
  int r = 0;
  pthread_mutex_lock(&qlock);
  if (add) {
    if (nlisteners == caplisteners) {
      size_t cap = caplisteners ? caplisteners * 2 : 16;
      struct listener *grown = realloc(listeners, cap * sizeof *grown);
      if (!grown) {
        r = -ENOMEM;
        goto out;
      }
      listeners = grown;
      caplisteners = cap;
    }
    listeners[nlisteners++] = (struct listener){token, fd};
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = token | (1ULL << 32)};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
      r = -errno;
      nlisteners--;
    }
    goto out;
  }
  struct listener *l = find_listener(token);
  if (!l) goto out;
  epoll_ctl(epfd, EPOLL_CTL_DEL, l->fd, NULL);
  *l = listeners[--nlisteners];
  for (struct pending **pp = &qhead; *pp;) {
    struct pending *p = *pp;
    if (p->token != token) {
      pp = &p->next;
      continue;
    }
    *pp = p->next;
    if (qtail == &p->next) qtail = pp;
    free(p);
  }
out:
  pthread_mutex_unlock(&qlock);
  return r;
}

/* Starts the reactor once; later calls only check that it runs. 0 or -errno. */
BB_API int bb_reactor_start(bb_ready_fn fn) {
  int r = 0;
  pthread_mutex_lock(&lock);
  if (epfd >= 0) goto out;
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    r = -errno;
    goto out;
  }
  ready = fn;
  /* The reactor must never run a signal handler meant for Bun's threads. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t thread;
  r = -pthread_create(&thread, NULL, reactor, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (r == 0) {
    pthread_detach(thread);
  } else {
    close(epfd);
    epfd = -1;
  }
out:
  pthread_mutex_unlock(&lock);
  return r;
}

/*
 * op: 0 add, 1 re-arm, 2 remove, 3 add a seccomp listener the reactor
 * receives from (re-armed by the reactor; removed by op 2 like any other).
 * events: EPOLLIN etc.; always one-shot.
 */
BB_API int bb_reactor_watch(int fd, uint32_t token, uint32_t events, int op) {
  if (op == 3) return listener_watch(fd, token, 1);
  if (op == 2) {
    pthread_mutex_lock(&qlock);
    int mine = find_listener(token) != NULL;
    pthread_mutex_unlock(&qlock);
    if (mine) return listener_watch(fd, token, 0);
  }
  struct epoll_event ev = {.events = events | EPOLLONESHOT, .data.u64 = token};
  int cmd = op == 0 ? EPOLL_CTL_ADD : op == 1 ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
  return epoll_ctl(epfd, cmd, fd, &ev) < 0 ? -errno : 0;
}

/*
 * Non-blocking reap of a sandbox's init through its pidfd, with the rusage of
 * init and every process it reaped (the whole sandbox): struct bb_wait_out.
 */
BB_API int bb_wait(int pidfd, struct bb_wait_out *out) {
  siginfo_t si;
  struct rusage ru;
  memset(&si, 0, sizeof si);
  memset(&ru, 0, sizeof ru);
  memset(out, 0, sizeof *out);
  long r = syscall(SYS_waitid, P_PIDFD, pidfd, &si, WEXITED | WNOHANG | __WALL, &ru);
  if (r < 0) return -errno;
  out->reaped = si.si_pid != 0;
  out->code = si.si_code;
  out->status = si.si_status;
  out->utime_us = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec;
  out->stime_us = (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
  out->maxrss_kb = (uint64_t)ru.ru_maxrss;
  return 0;
}

/* Duplicates the process's fd `fd` into ours (pidfd_getfd, Linux 5.6). */
BB_API int bb_pidfd_getfd(int pidfd, int fd) {
  long r = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
  return r < 0 ? -errno : (int)r;
}

BB_API int bb_pidfd_signal(int pidfd, int sig) {
  return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

BB_API int bb_notif_send(int listener, uint64_t id, int32_t error, int64_t val, uint32_t flags) {
  struct seccomp_notif_resp resp = {.id = id, .val = val, .error = error, .flags = flags};
  return ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 ? -errno : 0;
}

/*
 * Puts our `srcfd` at fd `newfd` in the notifying task, replacing what was
 * there (SECCOMP_IOCTL_NOTIF_ADDFD with SETFD, Linux 5.9). Used to take a
 * sandboxee's own copy of its listener away (sandbox me here, fork server).
 */
BB_API int bb_notif_addfd(int listener, uint64_t id, int srcfd, int newfd) {
  struct seccomp_notif_addfd a = {
      .id = id, .flags = SECCOMP_ADDFD_FLAG_SETFD, .srcfd = (uint32_t)srcfd, .newfd = (uint32_t)newfd,
      .newfd_flags = O_CLOEXEC};
  long r = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
  return r < 0 ? -errno : (int)r;
}

/*
 * Whether notification `id` is still pending: its task is alive and blocked
 * in it (SECCOMP_IOCTL_NOTIF_ID_VALID, Linux 5.0). 0 if so, -ENOENT if not.
 * Checked after reading the task's memory by its pid: had the task died and
 * its pid been reused meanwhile, what was read belongs to another process
 * and is thrown away.
 */
BB_API int bb_notif_id_valid(int listener, uint64_t id) {
  return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) < 0 ? -errno : 0;
}

/*
 * Copies up to `len` bytes at `addr` of process `pid` into `buf`
 * (process_vm_readv, Linux 3.2): the bytes read, or -errno. A read that
 * crosses into an unmapped page stops there (a short count), which is how a
 * string at the end of a mapping is read.
 */
BB_API long bb_mem_read(int pid, uint64_t addr, void *buf, uint32_t len) {
  struct iovec local = {.iov_base = buf, .iov_len = len};
  struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
  long n = syscall(SYS_process_vm_readv, pid, &local, 1UL, &remote, 1UL, 0UL);
  return n < 0 ? -errno : n;
}

BB_API long bb_read(int fd, void *buf, uint32_t len) {
  long n = read(fd, buf, len);
  return n < 0 ? -errno : n;
}

BB_API int bb_close(int fd) { return close(fd) < 0 ? -errno : 0; }

