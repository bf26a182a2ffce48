/*
 * --net proxy-transparent (src/net/transparent.ts): a connect() the policy's
 * filter sent to the monitor, taken over by bunbox. Three calls, each while
 * the sandboxee's thread waits in the notification:
 *
 *   bb_net_intercept_addr  the sockaddr it passed, copied out of its memory
 *   bb_net_intercept_take  its socket, taken out of its fd table (a dup),
 *                          if it is a TCP socket of the sandbox's network
 *   bb_net_intercept_join  that socket connected to the proxy's listener on
 *                          the sandbox's loopback; the proxy knows it by
 *                          its local port
 *
 * Each checks, after it has looked at the task, that the notification is
 * still pending (SECCOMP_IOCTL_NOTIF_ID_VALID): a task that died and whose
 * pid was reused meanwhile is not the one that asked. The address is read
 * once and the decision is made on that copy; the original connect() never
 * runs for an address bunbox handles (no CONTINUE), so the sandboxee
 * changing its memory afterwards changes nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sys.h"

#ifndef SO_NETNS_COOKIE /* Linux 5.14 */
#define SO_NETNS_COOKIE 71
#endif
#ifndef PIDFD_THREAD /* Linux 6.9: a pidfd for any thread, not only a leader */
#define PIDFD_THREAD O_EXCL
#endif
#ifndef SECCOMP_IOCTL_NOTIF_ID_VALID
#define SECCOMP_IOCTL_NOTIF_ID_VALID _IOW('!', 2, uint64_t)
#endif

static int still_pending(int listener, uint64_t id) {
  return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0 ? 0 : -ENOENT;
}

/*
 * Copies the sockaddr the waiting task `pid` passed (at most 28 bytes: an
 * IPv6 one) into `out`; its length, or -errno (-ENOENT: the notification is
 * gone). process_vm_readv needs ptrace access: bunbox is the sandbox's
 * ancestor and owns its user namespace.
 */
BB_API int bb_net_intercept_addr(int listener, uint64_t id, int pid, uint64_t addr, uint32_t len, uint8_t *out) {
  if (len > 28) len = 28;
  struct iovec local = {out, len}, remote = {(void *)(uintptr_t)addr, len};
  ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (n < 0) return -errno;
  int r = still_pending(listener, id);
  return r < 0 ? r : (int)n;
}

/* A pidfd for the thread `pid`: PIDFD_THREAD, else (before 6.9) its thread group's leader. */
static int thread_pidfd(int pid) {
  int fd = (int)syscall(SYS_pidfd_open, pid, PIDFD_THREAD);
  if (fd >= 0 || errno != EINVAL) return fd;
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  int s = open(path, O_RDONLY | O_CLOEXEC);
  if (s < 0) return -1;
  ssize_t n = read(s, buf, sizeof buf - 1);
  close(s);
  if (n <= 0) return -1;
  buf[n] = 0;
  const char *t = strstr(buf, "\nTgid:");
  return t ? (int)syscall(SYS_pidfd_open, atoi(t + 6), 0) : (errno = ESRCH, -1);
}

/*
 * The waiting task's socket `fd`, as a dup in bunbox (close-on-exec), when
 * it is a TCP socket in the same network namespace as `ref` (the proxy's
 * listener); else -errno: -ENOENT the notification is gone, -ENOTSOCK,
 * -EPROTOTYPE not TCP, -EXDEV another network namespace (a socket the host
 * mapped in), -EBADF no such fd.
 */
BB_API int bb_net_intercept_take(int listener, uint64_t id, int pid, int fd, int ref) {
  int pidfd = thread_pidfd(pid);
  if (pidfd < 0) return -errno;
  int r = still_pending(listener, id);
  int sock = r < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
  if (r == 0 && sock < 0) r = -errno;
  close(pidfd);
  if (r < 0) return r;
  int type = 0, proto = 0, domain = 0;
  uint64_t ns = 0, ref_ns = 1;
  socklen_t l = sizeof type;
  if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &l) < 0) r = -errno;
  l = sizeof proto;
  if (r == 0 && getsockopt(sock, SOL_SOCKET, SO_PROTOCOL, &proto, &l) < 0) r = -errno;
  l = sizeof domain;
  if (r == 0 && getsockopt(sock, SOL_SOCKET, SO_DOMAIN, &domain, &l) < 0) r = -errno;
  if (r == 0 && (type != SOCK_STREAM || proto != IPPROTO_TCP || (domain != AF_INET && domain != AF_INET6))) r = -EPROTOTYPE;
  l = sizeof ns;
  if (r == 0 && getsockopt(sock, SOL_SOCKET, SO_NETNS_COOKIE, &ns, &l) < 0) r = -errno;
  l = sizeof ref_ns;
  if (r == 0 && getsockopt(ref, SOL_SOCKET, SO_NETNS_COOKIE, &ref_ns, &l) < 0) r = -errno;
  if (r == 0 && ns != ref_ns) r = -EXDEV;
  if (r < 0) {
    close(sock);
    return r;
  }
  return sock;
}

/*
 * Connects `sock` (the sandboxee's socket, through bunbox's dup) to
 * 127.0.0.1:port of its own namespace, the proxy's listener, and returns
 * its local port, by which the proxy knows the connection; or -errno. The
 * socket's file status flags are the sandboxee's too (one open file): the
 * connect runs non-blocking and the flags are put back. On loopback it
 * completes at once unless the listener's queue is full; waited for 100 ms.
 */
BB_API int bb_net_intercept_join(int sock, uint32_t port) {
  int fl = fcntl(sock, F_GETFL);
  if (fl < 0) return -errno;
  int domain = 0;
  socklen_t l = sizeof domain;
  if (getsockopt(sock, SOL_SOCKET, SO_DOMAIN, &domain, &l) < 0) return -errno;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sl;
  if (domain == AF_INET) {
    struct sockaddr_in *s = (struct sockaddr_in *)&ss;
    s->sin_family = AF_INET;
    s->sin_port = htons((uint16_t)port);
    s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sl = sizeof *s;
  } else {
    /* An IPv6 socket reaches the IPv4 listener as ::ffff:127.0.0.1 (not with IPV6_V6ONLY: EAFNOSUPPORT then). */
    int v6only = 0;
    l = sizeof v6only;
    if (getsockopt(sock, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &l) == 0 && v6only) return -EAFNOSUPPORT;
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
    s->sin6_family = AF_INET6;
    s->sin6_port = htons((uint16_t)port);
    s->sin6_addr.s6_addr[10] = s->sin6_addr.s6_addr[11] = 0xff;
    s->sin6_addr.s6_addr[12] = 127;
    s->sin6_addr.s6_addr[15] = 1;
    sl = sizeof *s;
  }
  if (!(fl & O_NONBLOCK) && fcntl(sock, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  int r = connect(sock, (struct sockaddr *)&ss, sl) < 0 ? -errno : 0;
  if (r == -EINPROGRESS) {
    struct pollfd p = {sock, POLLOUT, 0};
    int n = poll(&p, 1, 100);
    if (n == 0) r = -ETIMEDOUT;
    else if (n < 0) r = -errno;
    else {
      int e = 0;
      l = sizeof e;
      r = getsockopt(sock, SOL_SOCKET, SO_ERROR, &e, &l) < 0 ? -errno : -e;
    }
  }
  if (!(fl & O_NONBLOCK)) fcntl(sock, F_SETFL, fl);
  if (r < 0) return r;
  l = sizeof ss;
  if (getsockname(sock, (struct sockaddr *)&ss, &l) < 0) return -errno;
  return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* The remote port of a connected TCP socket (the proxy's accepted one: the joined socket's local port), or -errno. */
BB_API int bb_net_peer_port(int sock) {
  struct sockaddr_storage ss;
  socklen_t l = sizeof ss;
  if (getpeername(sock, (struct sockaddr *)&ss, &l) < 0) return -errno;
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return -EAFNOSUPPORT;
}
