/*
 * Host side of comms (src/comms/, Sandbox2's Comms and Buffer): the socket
 * and shared-memory system calls TypeScript cannot make itself. They return
 * -errno on failure. Socket calls never block: each passes MSG_DONTWAIT
 * rather than setting O_NONBLOCK, which would change the open file
 * description for every other holder of the fd; the reactor thread
 * (monitor.c) tells TypeScript when to try again.
 *
 * Why sendmsg/recvmsg and not read/write: file descriptors travel as
 * SCM_RIGHTS ancillary data, and the receive side must see them with the
 * bytes they came with (src/comms/reader.ts decides which frame owns them).
 * Received fds are installed O_CLOEXEC (MSG_CMSG_CLOEXEC), so a fd the peer
 * sent can never leak into a later spawn by accident.
 *
 * Buffers are memfds sealed against shrinking: a peer that could truncate a
 * file we have mapped would turn our next read of the mapping into SIGBUS,
 * which would kill bunbox. bb_buffer_check refuses (or seals) such fds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sys.h"

/* One call moves at most this much, so byte counts fit the i32 return. */
#define CHUNK_MAX (1u << 30)
/* The kernel's own limit of fds in one SCM_RIGHTS message (SCM_MAX_FD). */
#define FDS_MAX 253

#ifndef F_SEAL_SEAL
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#endif

/* Both ends O_CLOEXEC: the executor maps the sandboxee's end explicitly. */
BB_API int bb_comms_socketpair(int32_t *out) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return -errno;
  out[0] = sv[0];
  out[1] = sv[1];
  return 0;
}

/*
 * A second fd on the same socket, for the write watch: epoll keys its
 * interest list by (file, fd), and the reactor allows one watch per fd, so
 * waiting for EPOLLIN and EPOLLOUT at once needs two fd numbers.
 */
BB_API int bb_comms_dup(int fd) {
  int r = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  return r < 0 ? -errno : r;
}

/*
 * One sendmsg of a frame, header then body (no copy into one buffer), from
 * byte `skip` on (after a partial send). fds go only with the first byte of
 * the frame (skip 0): the receiver finds them with the frame's header.
 * Returns the bytes sent or -errno (-EAGAIN: wait for EPOLLOUT).
 */
BB_API int bb_comms_send(int fd, const uint8_t *head, uint32_t headlen, const uint8_t *body, uint64_t bodylen,
                         uint64_t skip, const int32_t *fds, uint32_t nfds) {
  struct iovec iov[2];
  int n = 0;
  uint64_t room = CHUNK_MAX;
  if (nfds > FDS_MAX || (nfds > 0 && skip != 0)) return -EINVAL;
  if (skip < headlen) {
    iov[n].iov_base = (void *)(head + skip);
    iov[n].iov_len = headlen - skip;
    room -= iov[n].iov_len;
    n++;
    skip = 0;
  } else {
    skip -= headlen;
  }
  if (bodylen > skip && body) {
    uint64_t len = bodylen - skip;
    iov[n].iov_base = (void *)(body + skip);
    iov[n].iov_len = len < room ? len : room;
    n++;
  }
  if (n == 0) return 0;
  union {
    char buf[CMSG_SPACE(sizeof(int) * FDS_MAX)];
    struct cmsghdr align;
  } ctl;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = iov;
  msg.msg_iovlen = (size_t)n;
  if (nfds > 0) {
    memset(&ctl, 0, sizeof ctl);
    msg.msg_control = ctl.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    for (uint32_t i = 0; i < nfds; i++) {
      int v = fds[i];
      memcpy(CMSG_DATA(c) + i * sizeof(int), &v, sizeof v);
    }
  }
  ssize_t r;
  do r = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : (int)r;
}

/*
 * One recvmsg into buf. Received fds go to fds[0..cap); info[0] = how many,
 * info[1] = bit 0: the kernel truncated the control data (MSG_CTRUNC, fds
 * lost), bit 1: more fds than cap came (the extra ones are closed here).
 * Returns the bytes read (0: EOF) or -errno (-EAGAIN: wait for EPOLLIN).
 */
BB_API int bb_comms_recv(int fd, uint8_t *buf, uint64_t len, int32_t *fds, uint32_t cap, int32_t *info) {
  struct iovec iov = {.iov_base = buf, .iov_len = len < CHUNK_MAX ? len : CHUNK_MAX};
  union {
    char buf[CMSG_SPACE(sizeof(int) * FDS_MAX)];
    struct cmsghdr align;
  } ctl;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  ssize_t r;
  do r = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  info[0] = 0;
  info[1] = 0;
  if (r < 0) return -errno;
  if (msg.msg_flags & MSG_CTRUNC) info[1] |= 1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int v;
      memcpy(&v, CMSG_DATA(c) + i * sizeof(int), sizeof v);
      if ((uint32_t)info[0] < cap) {
        fds[info[0]++] = v;
      } else {
        close(v);
        info[1] |= 2;
      }
    }
  }
  return (int)r;
}

/* SO_PEERCRED: the peer's pid, uid, gid as of connect/socketpair time. */
BB_API int bb_comms_peercred(int fd, uint32_t *out) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return -errno;
  out[0] = (uint32_t)cred.pid;
  out[1] = cred.uid;
  out[2] = cred.gid;
  return 0;
}

/*
 * A new buffer: a memfd of `size` bytes, sealed so that nobody (the peer
 * included) can change its size or its seals. Returns the fd or -errno.
 */
BB_API int bb_buffer_create(const char *name, uint64_t size) {
  int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -errno;
  if (ftruncate(fd, (off_t)size) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

/*
 * Before mapping a fd that came from elsewhere: it must be a regular file
 * that cannot shrink under us. A memfd that allows sealing gets F_SEAL_SHRINK
 * here (seals belong to the file, so the sender is bound too). out[0] = size.
 * -EBADFD: not a regular file; -EINVAL: the file does not support seals (not
 * a memfd); -EPERM: sealing is closed (F_SEAL_SEAL) and shrinking is allowed.
 */
BB_API int bb_buffer_check(int fd, uint64_t *out) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  if (!S_ISREG(st.st_mode)) return -EBADFD;
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) return -errno;
  if (!(seals & F_SEAL_SHRINK) && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0) return -errno;
  /* The size only after the seal: before it, the file could still shrink. */
  if (fstat(fd, &st) < 0) return -errno;
  out[0] = (uint64_t)st.st_size;
  return 0;
}

/* mmap(MAP_SHARED, read-write) of the whole file; out[0] = the address. */
BB_API int bb_buffer_map(int fd, uint64_t size, uint64_t *out) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return -errno;
  out[0] = (uint64_t)(uintptr_t)p;
  return 0;
}

BB_API int bb_buffer_unmap(void *addr, uint64_t size) { return munmap(addr, size) < 0 ? -errno : 0; }
