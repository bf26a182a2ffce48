/*
 * A: pid 1 of the new namespaces, until it execs init (csrc/init.c). Rules:
 * csrc/child.h.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/errno.h>
#include <linux/prctl.h>
#include <linux/securebits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "child.h"
#include "clone.h"

#ifndef TIOCGPTPEER /* Linux 4.13; older headers */
#define TIOCGPTPEER _IO('T', 0x41)
#endif

/* Every handler back to SIG_DFL: SIG_IGN survives execve, so a SIGPIPE that
 * Bun ignores would otherwise be ignored by the sandboxee too. */
static void reset_signal_handlers(void) {
  struct {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
  } dfl = {SIG_DFL, 0, 0, 0};
  for (int sig = 1; sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    bb_sys4(SYS_rt_sigaction, sig, &dfl, 0, SIGSET_BYTES);
  }
}

static void child_exit(int code) {
  for (;;) bb_sys1(SYS_exit_group, code);
}

/*
 * The inside ids, before the mounts: files A creates in the new root need an
 * fsuid mapped in the user namespace (as root, kernel uid 0 is not mapped).
 * Capabilities in the namespace survive the switch (no uid involved is the
 * namespace's root), and are dropped once the tree is built.
 */
static int set_ids(struct bb_shared *sh) {
  const struct bb_req *rq = sh->req;
  long r;
  /* As root the supplementary groups are root's; drop them (setgroups is only
   * allowed because T left /proc/A/setgroups at "allow" for root). */
  if (rq->flags & BB_F_CALLER_ROOT) {
    r = bb_sys2(SYS_setgroups, 0, 0);
    if (r < 0) return bb_fail(sh, BB_ST_CREDENTIALS, r, "setgroups(0)"), -1;
  }
  r = bb_sys5(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0);
  if (r < 0) return bb_fail(sh, BB_ST_CREDENTIALS, r, "PR_SET_KEEPCAPS"), -1;
  r = bb_sys3(SYS_setresgid, rq->gid_inside, rq->gid_inside, rq->gid_inside);
  if (r < 0) return bb_fail(sh, BB_ST_CREDENTIALS, r, "setresgid"), -1;
  r = bb_sys3(SYS_setresuid, rq->uid_inside, rq->uid_inside, rq->uid_inside);
  if (r < 0) return bb_fail(sh, BB_ST_CREDENTIALS, r, "setresuid"), -1;
  return 0;
}

static int drop_capabilities(struct bb_shared *sh) {
  long r;
  /* Root inside must not regain capabilities on exec, nor keep them on setuid. */
  r = bb_sys5(SYS_prctl, PR_SET_SECUREBITS,
              SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                  SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                  SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
              0, 0, 0);
  if (r < 0) return bb_fail(sh, BB_ST_CAPABILITIES, r, "PR_SET_SECUREBITS"), -1;
  for (int cap = 0; cap < 64; cap++) {
    r = bb_sys5(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0);
    if (r == -EINVAL) break; /* past the kernel's last capability */
    if (r < 0) return bb_fail(sh, BB_ST_CAPABILITIES, r, "PR_CAPBSET_DROP"), -1;
  }
  r = bb_sys5(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (r < 0 && r != -EINVAL) return bb_fail(sh, BB_ST_CAPABILITIES, r, "PR_CAP_AMBIENT"), -1;
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  bb_memset(data, 0, sizeof data);
  r = bb_sys2(SYS_capset, &hdr, data);
  if (r < 0) return bb_fail(sh, BB_ST_CAPABILITIES, r, "capset"), -1;
  return 0;
}

/*
 * The sandbox dies with the bunbox thread that started it. The death signal is
 * cleared by credential changes, so it is set after them; and since our parent
 * may have died before it was set, check that T still holds the gate pipe.
 */
static int die_with_parent(struct bb_shared *sh) {
  long r = bb_sys5(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (r < 0) return bb_fail(sh, BB_ST_DEATH_SIGNAL, r, "PR_SET_PDEATHSIG"), -1;
  struct pollfd p = {sh->gate_r, 0, 0};
  struct timespec zero = {0, 0};
  r = bb_sys5(SYS_ppoll, &p, 1, &zero, 0, SIGSET_BYTES);
  if (r > 0 && (p.revents & POLLHUP)) child_exit(1); /* bunbox is gone */
  return 0;
}

/*
 * cgroup v1: into the sandbox's cgroup of each hierarchy, before anything
 * else, by writing "0" (this thread) to its `tasks` file, which bunbox
 * opened (the kernel checks the opener's credentials, not ours). A thread
 * moving itself skips the kernel's cgroup_threadgroup_rwsem, which moving
 * another process takes for writing and which waits for an RCU grace period
 * (10-30 ms here); and the clone's own kernel allocations (the namespaces)
 * stay bunbox's, as with v2's CLONE_INTO_CGROUP. Every process of the
 * sandbox descends from us, so all of them are in it. (v2: T's clone3
 * started us there.)
 */
static int join_cgroups(struct bb_shared *sh) {
  const struct bb_req *rq = sh->req;
  const struct bb_cgroup *cg = (const void *)(sh->base + rq->cgroups_off);
  for (uint32_t i = 0; i < rq->ncgroups; i++) {
    if (cg[i].kind != BB_CG_V1) continue;
    long r = bb_sys3(SYS_write, cg[i].fd, "0", 1);
    if (r != 1) return bb_fail(sh, BB_ST_CGROUP, r < 0 ? r : -EIO, "joining the sandbox's cgroup (tasks)"), -1;
    bb_sys1(SYS_close, cg[i].fd);
  }
  return 0;
}

/*
 * The cgroup namespace, made here rather than by T's clone: we are in the
 * sandbox's cgroups now, and a cgroup namespace's root is its creator's
 * cgroup at that moment, so the sandboxee sees its own cgroup as / (made at
 * the clone, / would be bunbox's).
 */
static int cgroup_namespace(struct bb_shared *sh) {
  if (!(sh->req->clone_flags & BB_CLONE_NEWCGROUP)) return 0;
  long r = bb_sys1(SYS_unshare, CLONE_NEWCGROUP);
  if (r < 0) return bb_fail(sh, BB_ST_CGROUP, r, "unshare(CLONE_NEWCGROUP)"), -1;
  return 0;
}

/*
 * Per-user-namespace limits (/proc/sys/user/...: inotify instances and
 * watches, namespaces of each kind), written as root of our new namespace,
 * whose sysctls these files show (the kernel looks them up in the writer's
 * user namespace). Each bounds what the sandbox may take of its owner's
 * budget: the kernel checks every level up to the host's, so a value here
 * only ever lowers a limit. After set_ids: with kernel uid 0 gone, a path
 * outside /proc/sys/user could not reach a host file (csrc/request.c also
 * refuses one).
 */
static int user_limits(struct bb_shared *sh) {
  const struct bb_req *rq = sh->req;
  const struct bb_sysctl *s = (const void *)(sh->base + rq->sysctls_off);
  for (uint32_t i = 0; i < rq->nsysctls; i++) {
    const char *path = bb_str(sh, s[i].path_off), *value = bb_str(sh, s[i].value_off);
    long fd = bb_sys4(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC, 0);
    long r = fd;
    if (fd >= 0) {
      size_t n = bb_strlen(value);
      r = bb_sys3(SYS_write, fd, value, n);
      if (r >= 0 && (size_t)r != n) r = -EIO;
      bb_sys1(SYS_close, fd);
    }
    if (r < 0) return bb_fail(sh, BB_ST_SYSCTL, r, path), -1;
  }
  return 0;
}

/* --net loopback: the new network namespace's lo, up (it starts down). */
static int loopback_up(struct bb_shared *sh) {
  long fd = bb_sys3(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return bb_fail(sh, BB_ST_NETWORK, fd, "socket(AF_INET)"), -1;
  struct ifreq ifr;
  bb_memset(&ifr, 0, sizeof ifr);
  bb_strlcpy(ifr.ifr_name, "lo", sizeof ifr.ifr_name);
  ifr.ifr_flags = IFF_UP | IFF_RUNNING;
  long r = bb_sys3(SYS_ioctl, fd, SIOCSIFFLAGS, &ifr);
  bb_sys1(SYS_close, fd);
  if (r < 0) return bb_fail(sh, BB_ST_NETWORK, r, "lo up"), -1;
  return 0;
}

static int exec_init(struct bb_shared *sh, int hold_w) {
  /* init gets only its report pipe (fd 3); its program is fd 4, close-on-exec.
   * Our own fds sit at 64 and up (relocate), so neither dup3 clobbers one.
   * The rest is marked close-on-exec, not closed: the status and hold pipes
   * must reach EOF only once the exec has left Bun's address space. */
  long r = bb_sys3(SYS_dup3, sh->report_w, 3, 0);
  if (r < 0) return bb_fail(sh, BB_ST_INIT, r, "dup3(report pipe)"), -1;
  r = bb_sys3(SYS_dup3, sh->init_fd, 4, O_CLOEXEC);
  if (r < 0) return bb_fail(sh, BB_ST_INIT, r, "dup3(init program)"), -1;
  /* The hold pipe's write end goes on into init as fd 5: init closes it once
   * it is non-dumpable, and only then may the sandboxee run (csrc/init.c). */
  r = bb_sys3(SYS_dup3, hold_w, 5, 0);
  if (r < 0) return bb_fail(sh, BB_ST_INIT, r, "dup3(hold pipe)"), -1;
  for (int fd = 0; fd < 3; fd++) bb_sys1(SYS_close, fd);
  r = bb_sys3(SYS_close_range, 6, ~0U, 4 /* CLOSE_RANGE_CLOEXEC, Linux 5.11 */);
  if (r < 0) {
    for (int fd = 6; fd < 65536; fd++) bb_sys3(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
  }
  static char *const init_argv[] = {"bunbox-init", 0};
  static char *const init_envp[] = {0};
  r = bb_sys5(SYS_execveat, 4, "", init_argv, init_envp, AT_EMPTY_PATH);
  return bb_fail(sh, BB_ST_INIT, r, "execveat(init)"), -1;
}

/* Moves *fd to 64 or above, close-on-exec (see exec_init). */
static int relocate(struct bb_shared *sh, int *fd) {
  long r = bb_sys3(SYS_fcntl, *fd, F_DUPFD_CLOEXEC, 64);
  if (r < 0) return bb_fail(sh, BB_ST_RESOURCES, r, "relocating an fd"), -1;
  bb_sys1(SYS_close, *fd);
  *fd = (int)r;
  return 0;
}

/*
 * The sandboxee's own terminal (BB_F_TTY_*): a pty of the sandbox's devpts at
 * /dev/pts, so the caller's terminal never enters the sandbox: bunbox relays
 * between the two (src/cli/tty.ts). Unlocked and sized here; the slave is
 * opened through the master (TIOCGPTPEER, Linux 4.13), not by a name. Both
 * end close-on-exec above 64: init gets neither, B makes the slave its
 * controlling terminal, and T takes the master from our fd table.
 */
static int open_terminal(struct bb_shared *sh) {
  const struct bb_req *rq = sh->req;
  long r = bb_sys4(SYS_openat, AT_FDCWD, "/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC, 0);
  if (r < 0) return bb_fail(sh, BB_ST_TERMINAL, r, "/dev/pts/ptmx"), -1;
  sh->pty_master = (int)r;
  if (relocate(sh, &sh->pty_master) < 0) return -1;
  int unlock = 0;
  r = bb_sys3(SYS_ioctl, sh->pty_master, TIOCSPTLCK, &unlock);
  if (r < 0) return bb_fail(sh, BB_ST_TERMINAL, r, "TIOCSPTLCK"), -1;
  if (rq->tty_size) {
    struct winsize ws = {(unsigned short)(rq->tty_size >> 16), (unsigned short)rq->tty_size, 0, 0};
    r = bb_sys3(SYS_ioctl, sh->pty_master, TIOCSWINSZ, &ws);
    if (r < 0) return bb_fail(sh, BB_ST_TERMINAL, r, "TIOCSWINSZ"), -1;
  }
  r = bb_sys3(SYS_ioctl, sh->pty_master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (r < 0) return bb_fail(sh, BB_ST_TERMINAL, r, "TIOCGPTPEER"), -1;
  sh->pty_slave = (int)r;
  return relocate(sh, &sh->pty_slave);
}

/*
 * A socket of `type` bound to 127.0.0.1:port, listening if a stream; -1 on
 * failure, reported with the detail "listen 127.0.0.1:PORT" ("bind … udp").
 */
static int bind_loopback(struct bb_shared *sh, int type, unsigned port) {
  char what[48];
  size_t n = bb_strlcpy(what, type == SOCK_STREAM ? "listen 127.0.0.1:" : "bind udp 127.0.0.1:", sizeof what);
  bb_utoa(port, what + n);
  long fd = bb_sys3(SYS_socket, AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return bb_fail(sh, BB_ST_NETWORK, fd, what), -1;
  struct sockaddr_in sa;
  bb_memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = (unsigned short)(((port & 0xff) << 8) | (port >> 8)); /* htons */
  sa.sin_addr.s_addr = 0x0100007f;                                    /* 127.0.0.1 in network order */
  long r = bb_sys3(SYS_bind, fd, &sa, sizeof sa);
  if (r == 0 && type == SOCK_STREAM) r = bb_sys2(SYS_listen, fd, 1024);
  if (r < 0) {
    bb_sys1(SYS_close, fd);
    return bb_fail(sh, BB_ST_NETWORK, r, what), -1;
  }
  return (int)fd;
}

/*
 * --net proxy: the sockets through which the sandbox reaches bunbox (the
 * proxy, the DNS stub over UDP and TCP), bound here because only a socket
 * made inside the namespace is reachable on its loopback (and port 53 needs
 * the CAP_NET_BIND_SERVICE we still hold). T takes them at 'B'; our copies
 * and B's are close-on-exec, and B closes its own before it runs anything
 * (remap_fds): only bunbox holds them, so nothing inside accepts on them,
 * and nothing inside can bind their ports while the sandbox lives.
 */
static int net_listen(struct bb_shared *sh) {
  const int types[3] = {SOCK_STREAM, SOCK_DGRAM, SOCK_STREAM};
  const unsigned ports[3] = {sh->req->proxy_port, 53, 53};
  for (int i = 0; i < 3; i++) {
    int fd = bind_loopback(sh, types[i], ports[i]);
    if (fd < 0) return -1;
    sh->net_fds[i] = fd;
    if (relocate(sh, &sh->net_fds[i]) < 0) return -1; /* out of exec_init's way */
  }
  return 0;
}

int bb_child_a(void *arg) {
  struct bb_shared *sh = arg;
  const struct bb_req *rq = sh->req;
  char c;

  reset_signal_handlers();
  /* Wait until T has written our id maps; EOF means T gave up. */
  if (bb_sys3(SYS_read, sh->gate_r, &c, 1) != 1) child_exit(1);
  bb_mark(sh, BB_MK_RELEASED);
  if (join_cgroups(sh) < 0 || cgroup_namespace(sh) < 0) return 1;
  /* Out of bunbox's session and process group: signals the caller's
   * terminal sends its foreground group (Ctrl-C, SIGWINCH, a hangup) are
   * bunbox's to pass on, once; they must not reach init (which forwards
   * whatever it gets) too. */
  long sid = bb_sys0(SYS_setsid);
  if (sid < 0) return bb_fail(sh, BB_ST_SESSION, sid, "setsid(init)"), 1;
  /* The host's soft fd limit may sit just above the fds it has open; our
   * fds move above 64 and B's targets (comms: 1023) may lie higher still.
   * The hard limit is ours to take; B's own limit is set later. */
  {
    struct { uint64_t cur, max; } nofile;
    if (bb_sys4(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, &nofile) == 0 && nofile.cur < nofile.max) {
      nofile.cur = nofile.max;
      bb_sys4(SYS_prlimit64, 0, RLIMIT_NOFILE, &nofile, 0);
    }
  }
  /* We hold a copy of the host's whole fd table (no CLONE_FILES): Bun's
   * fds, and the pipes of spawns running on other spawner threads, which
   * would reach EOF only once we exec. Keep only what we and B need: stdio
   * and the mapped fds (B's), our four; closed before our four move up, so
   * that they land just above 64, not above every fd the host had open
   * (B's F_DUPFD past them must stay under the fd limit). */
  {
    const struct bb_fdmap *m = (const void *)(sh->base + rq->fds_off);
    int keep[BB_FDS_MAX + 4 + BB_MOUNTS_MAX], n = 0;
    for (uint32_t i = 0; i < rq->nfds; i++)
      if (m[i].src >= 3) keep[n++] = m[i].src;
    for (uint32_t i = 0; i < rq->nmounts; i++) /* T's idmapped trees (csrc/idmap.c) */
      if (sh->idmap_fd[i] >= 0) keep[n++] = sh->idmap_fd[i];
    keep[n++] = sh->gate_r;
    keep[n++] = sh->status_w;
    keep[n++] = sh->report_w;
    keep[n++] = sh->init_fd;
    close_all_but(keep, n);
  }
  if (relocate(sh, &sh->gate_r) < 0 || relocate(sh, &sh->status_w) < 0 ||
      relocate(sh, &sh->report_w) < 0 || relocate(sh, &sh->init_fd) < 0)
    return 1;

  int fds[BB_MOUNTS_MAX];
  bb_mounts_open(sh, fds);
  if (set_ids(sh) < 0) return 1;
  if (user_limits(sh) < 0) return 1;
  bb_mark(sh, BB_MK_IDS);
  if (bb_mounts_apply(sh, fds) < 0) return 1;
  bb_mark(sh, BB_MK_MOUNTS);
  if ((rq->flags & BB_F_TTY) && open_terminal(sh) < 0) return 1;

  if ((rq->flags & BB_F_LOOPBACK) && loopback_up(sh) < 0) return 1;
  if ((rq->flags & BB_F_NET_PROXY) && net_listen(sh) < 0) return 1;
  const char *hostname = bb_str(sh, rq->hostname_off);
  if (hostname) {
    long r = bb_sys2(SYS_sethostname, hostname, bb_strlen(hostname));
    if (r < 0) return bb_fail(sh, BB_ST_HOSTNAME, r, hostname), 1;
  }
  const char *cwd = bb_str(sh, rq->cwd_off);
  long r = bb_sys1(SYS_chdir, cwd);
  if (r < 0) return bb_fail(sh, BB_ST_CWD, r, cwd), 1;

  if (drop_capabilities(sh) < 0) return 1;
  if (die_with_parent(sh) < 0) return 1;
  r = bb_sys5(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (r < 0) return bb_fail(sh, BB_ST_NO_NEW_PRIVS, r, 0), 1;
  bb_mark(sh, BB_MK_CAPS);

  /*
   * B: the sandboxee, pid 2. It shares Bun's memory until its own exec, and
   * must not let sandboxee code run while we (pid 1, visible to it in /proc)
   * still do, nor before init has made itself non-dumpable: it waits for EOF
   * on the hold pipe, whose only write end is ours, then init's, which init
   * closes once it is out of reach. T meanwhile takes B's pidfd from our fd
   * table ('B', then T's ack on the gate).
   */
  int hold[2];
  r = bb_sys2(SYS_pipe2, hold, O_CLOEXEC);
  if (r < 0) return bb_fail(sh, BB_ST_RESOURCES, r, "pipe2(hold)"), 1;
  sh->hold_r = hold[0];
  if (relocate(sh, &sh->hold_r) < 0 || relocate(sh, &hold[1]) < 0) return 1;
  r = bb_clone(CLONE_VM | CLONE_PIDFD, SIGCHLD, (int *)&sh->pidfd_b, sh->stack_b, sh->stack_size,
               bb_child_b, sh);
  if (r < 0) return bb_fail(sh, BB_ST_SANDBOXEE, r, "clone(sandboxee)"), 1;
  bb_sys1(SYS_close, sh->hold_r);
  bb_sys3(SYS_write, sh->status_w, "B", 1);
  if (bb_sys3(SYS_read, sh->gate_r, &c, 1) != 1) child_exit(1); /* T is gone */
  bb_mark(sh, BB_MK_INIT);
  exec_init(sh, hold[1]);
  return 1; /* exiting kills the sandboxee with the namespace */
}
