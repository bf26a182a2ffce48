/*
 * The proxy's control phase (src/net/socket.ts, upstream.ts, proxy.ts): the
 * socket calls TypeScript makes while it reads a request and decides, one
 * call each, never blocking, -errno on failure. The reactor thread
 * (monitor.c) says when to try again; the relay thread (net_relay.c) takes
 * over both sockets once a connection is allowed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sys.h"

/*
 * Checks that `fd` is a TCP socket (listening or connected, as `listening`
 * says), makes it non-blocking and sets TCP_NODELAY on a connected one.
 * -ENOTSOCK, -EPROTOTYPE (not a stream), -EAFNOSUPPORT (not IPv4/IPv6),
 * -EINVAL (listening when it should not be, or the reverse).
 */
BB_API int bb_net_adopt(int fd, int listening) {
  int v = 0;
  socklen_t len = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0) return -errno;
  if (v != SOCK_STREAM) return -EPROTOTYPE;
  len = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0) return -errno;
  if (v != AF_INET && v != AF_INET6) return -EAFNOSUPPORT;
  len = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0) return -errno;
  if (!!v != !!listening) return -EINVAL;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  int one = 1;
  if (!listening && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) return -errno;
  return 0;
}

/* One connection from a non-blocking listener: its fd (non-blocking, close-on-exec) or -errno. */
BB_API int bb_net_accept(int listener) {
  int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

/* recv with MSG_DONTWAIT, and MSG_PEEK when `peek`: bytes, 0 at EOF, or -errno. */
BB_API int bb_net_recv(int fd, void *buf, uint32_t len, int peek) {
  if (len > INT32_MAX) len = INT32_MAX;
  ssize_t n = recv(fd, buf, len, MSG_DONTWAIT | (peek ? MSG_PEEK : 0));
  return n < 0 ? -errno : (int)n;
}

/* send without blocking or SIGPIPE: bytes sent or -errno. */
BB_API int bb_net_send(int fd, const void *buf, uint32_t len) {
  if (len > INT32_MAX) len = INT32_MAX;
  ssize_t n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  return n < 0 ? -errno : (int)n;
}

/*
 * SO_RCVLOWAT: epoll reports the socket readable only once `bytes` are
 * queued (or at EOF). TypeScript peeks without consuming, so without it a
 * partial request would keep the socket readable and the watch would spin.
 */
BB_API int bb_net_rcvlowat(int fd, int bytes) {
  return setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof bytes) < 0 ? -errno : 0;
}

/* how: SHUT_RD 0, SHUT_WR 1, SHUT_RDWR 2. */
BB_API int bb_net_shutdown(int fd, int how) { return shutdown(fd, how) < 0 ? -errno : 0; }

/*
 * Starts a non-blocking connect to `addr` (4 or 16 bytes) port `port`: a new
 * socket (close-on-exec, TCP_NODELAY) whose connection is in progress, or
 * -errno. Writable means done; bb_net_sockerr says how it went.
 */
BB_API int bb_net_connect(const uint8_t *addr, uint32_t addrlen, uint32_t port) {
  struct sockaddr_storage ss;
  socklen_t sl;
  memset(&ss, 0, sizeof ss);
  if (addrlen == 4) {
    struct sockaddr_in *s = (struct sockaddr_in *)&ss;
    s->sin_family = AF_INET;
    s->sin_port = htons((uint16_t)port);
    memcpy(&s->sin_addr, addr, 4);
    sl = sizeof *s;
  } else if (addrlen == 16) {
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
    s->sin6_family = AF_INET6;
    s->sin6_port = htons((uint16_t)port);
    memcpy(&s->sin6_addr, addr, 16);
    sl = sizeof *s;
  } else {
    return -EINVAL;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

/*
 * 0 once a connect has completed (a peer address), -ENOTCONN while it is in
 * progress: on loopback it usually completes within connect() itself, and
 * then the proxy need not wait for writability.
 */
BB_API int bb_net_connected(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  return getpeername(fd, (struct sockaddr *)&ss, &len) < 0 ? -errno : 0;
}

/* The outcome of a connect once the socket is writable: 0 or -errno. */
BB_API int bb_net_sockerr(int fd) {
  int e = 0;
  socklen_t len = sizeof e;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0) return -errno;
  return -e;
}

/* The soft RLIMIT_NOFILE: the proxy keeps its fds well inside it. */
BB_API long bb_net_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return -errno;
  return rl.rlim_cur == RLIM_INFINITY ? 1L << 30 : (long)rl.rlim_cur;
}

/*
 * The DNS stub's UDP socket (src/net/dns-stub.ts): one datagram without
 * blocking, and its sender's address as the kernel gave it (at most 28
 * bytes, *addrlen set), to send the answer back to; bytes or -errno.
 */
BB_API int bb_net_recvfrom(int fd, void *buf, uint32_t len, void *addr, uint32_t *addrlen) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (len > INT32_MAX) len = INT32_MAX;
  ssize_t n = recvfrom(fd, buf, len, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&ss, &sl);
  if (n < 0) return -errno;
  if (sl > 28) sl = 28;
  memcpy(addr, &ss, sl);
  *addrlen = sl;
  return n > (ssize_t)len ? -EMSGSIZE : (int)n;
}

/* One datagram to the address bb_net_recvfrom gave, without blocking: bytes or -errno. */
BB_API int bb_net_sendto(int fd, const void *buf, uint32_t len, const void *addr, uint32_t addrlen) {
  if (addrlen > 28) return -EINVAL;
  ssize_t n = sendto(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)addr, addrlen);
  return n < 0 ? -errno : (int)n;
}

/* Makes fd non-blocking (the DNS stub's UDP socket, which bb_net_adopt does not take): 0 or -errno. */
BB_API int bb_net_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  return 0;
}
