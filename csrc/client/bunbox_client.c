/*
 * bunbox_client.c: the sandboxee's side of bunbox comms (see
 * bunbox_client.h for the API and the wire format). libc only.
 *
 * Reads are exact: first the 8-byte header, then exactly its payload. So a
 * recvmsg never crosses a frame boundary, and the fds of an FD frame are
 * those that arrive with its header bytes (the host attaches them to the
 * sendmsg that begins with the header); fds arriving with payload bytes are
 * a protocol error. Two system calls per frame is cheap next to a sandboxee's
 * work, and it leaves nothing buffered between calls.
 *
 * Every socket call is MSG_DONTWAIT and waits in poll() for the time left
 * before the call's deadline, so a host that stops reading or writing costs
 * at most the time limit.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bunbox_client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "bunbox comms assumes a little-endian target"
#endif

#define HEADER_SIZE 8
/* The kernel's limit of fds in one SCM_RIGHTS message (SCM_MAX_FD). */
#define KERNEL_MAX_FDS 253

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001u
#define MFD_ALLOW_SEALING 0x0002u
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#endif

struct bunbox_comms {
  int fd;
  int timeout_ms;
  uint32_t max_message_size;
  int status;
  bool broken;
  char message[256];
};

/* ---- errors ------------------------------------------------------------ */

static int fail(struct bunbox_comms *c, int status, bool breaks, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct bunbox_comms *c, int status, bool breaks, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->message, sizeof c->message, fmt, ap);
  va_end(ap);
  c->status = status;
  if (breaks) c->broken = true;
  return status;
}

static int check_usable(struct bunbox_comms *c, const char *what) {
  if (!c->broken) return BUNBOX_OK;
  /* Keep the first error's text: it says why the channel broke. */
  char first[sizeof c->message];
  memcpy(first, c->message, sizeof first);
  return fail(c, BUNBOX_ERR_BROKEN, true, "%s: the channel is broken: %.200s", what, first);
}

static const char *tag_name(uint32_t tag, char *buf, size_t cap) {
  static const char *const names[] = {"BOOL",   "INT8",   "INT16",  "INT32", "INT64", "UINT8", "UINT16",
                                      "UINT32", "UINT64", "STRING", "BYTES", "JSON",  "FD"};
  if (tag >= 1 && tag <= BUNBOX_TAG_FD) return names[tag - 1];
  snprintf(buf, cap, tag >= BUNBOX_TAG_USER_MIN ? "USER 0x%x" : "tag %u", tag);
  return buf;
}

/* Payload size of a fixed-size tag, 0 for the others. */
static uint32_t fixed_size(uint32_t tag) {
  switch (tag) {
    case BUNBOX_TAG_BOOL: case BUNBOX_TAG_INT8: case BUNBOX_TAG_UINT8: return 1;
    case BUNBOX_TAG_INT16: case BUNBOX_TAG_UINT16: return 2;
    case BUNBOX_TAG_INT32: case BUNBOX_TAG_UINT32: case BUNBOX_TAG_FD: return 4;
    case BUNBOX_TAG_INT64: case BUNBOX_TAG_UINT64: return 8;
    default: return 0;
  }
}

static bool known_tag(uint32_t tag) { return (tag >= 1 && tag <= BUNBOX_TAG_FD) || tag >= BUNBOX_TAG_USER_MIN; }

static void close_fds(const int *fds, size_t n) {
  for (size_t i = 0; i < n; i++) close(fds[i]);
}

/* ---- time -------------------------------------------------------------- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_of(const struct bunbox_comms *c) {
  return c->timeout_ms < 0 ? -1 : now_ms() + c->timeout_ms;
}

/* Waits for `events` until the deadline: 0, or BUNBOX_ERR_TIMEOUT / BUNBOX_ERR_IO (errno set). */
static int wait_for(int fd, short events, int64_t deadline) {
  for (;;) {
    int ms = -1;
    if (deadline >= 0) {
      int64_t left = deadline - now_ms();
      if (left <= 0) return BUNBOX_ERR_TIMEOUT;
      ms = left > INT_MAX ? INT_MAX : (int)left;
    }
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, ms);
    if (r > 0) return 0; /* ready, or HUP/ERR: the next call reports which */
    if (r == 0) continue;  /* re-check the deadline */
    if (errno != EINTR) return BUNBOX_ERR_IO;
  }
}

/* ---- sending ----------------------------------------------------------- */

static int send_all(struct bunbox_comms *c, const char *what, uint32_t tag, const void *payload, size_t len,
                    const int *fds, size_t nfds) {
  uint8_t head[HEADER_SIZE];
  uint32_t len32 = (uint32_t)len;
  memcpy(head, &tag, 4);
  memcpy(head + 4, &len32, 4);
  struct iovec iov[2] = {{.iov_base = head, .iov_len = HEADER_SIZE}, {.iov_base = (void *)payload, .iov_len = len}};
  struct iovec *v = iov;
  int nv = len > 0 ? 2 : 1;
  union {
    char buf[CMSG_SPACE(sizeof(int) * BUNBOX_COMMS_MAX_FDS)];
    struct cmsghdr align;
  } ctl;
  size_t total = HEADER_SIZE + len, sent = 0;
  int64_t deadline = deadline_of(c);
  while (sent < total) {
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = v;
    msg.msg_iovlen = (size_t)nv;
    if (sent == 0 && nfds > 0) {
      /* The fds ride with the frame's first byte: the receiver finds them with the header. */
      memset(&ctl, 0, sizeof ctl);
      msg.msg_control = ctl.buf;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
      struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
      memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
    }
    ssize_t r = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        int w = wait_for(c->fd, POLLOUT, deadline);
        if (w == BUNBOX_ERR_TIMEOUT) {
          return fail(c, BUNBOX_ERR_TIMEOUT, sent > 0, "%s: the host did not take the message within %d ms (%zu of %zu bytes sent)",
                      what, c->timeout_ms, sent, total);
        }
        if (w < 0) return fail(c, BUNBOX_ERR_IO, true, "%s: poll failed: %s", what, strerror(errno));
        continue;
      }
      if (errno == EPIPE || errno == ECONNRESET) {
        return fail(c, BUNBOX_ERR_EOF, true, "%s: the host closed the channel (%s)", what, strerror(errno));
      }
      return fail(c, BUNBOX_ERR_IO, true, "%s: sendmsg failed: %s", what, strerror(errno));
    }
    if (r == 0) return fail(c, BUNBOX_ERR_IO, true, "%s: sendmsg sent nothing", what);
    sent += (size_t)r;
    /* Step the iovecs past what went out. */
    size_t n = (size_t)r;
    while (nv > 0 && n >= v->iov_len) {
      n -= v->iov_len;
      v++;
      nv--;
    }
    if (nv > 0) {
      v->iov_base = (uint8_t *)v->iov_base + n;
      v->iov_len -= n;
    }
  }
  return BUNBOX_OK;
}

int bunbox_comms_send_frame(struct bunbox_comms *c, uint32_t tag, const void *payload, size_t len, const int *fds,
                            size_t nfds) {
  const char *what = "send";
  int r = check_usable(c, what);
  if (r) return r;
  char nb[32];
  if (!known_tag(tag)) return fail(c, BUNBOX_ERR_ARGUMENT, false, "%s: unknown tag %u", what, tag);
  uint32_t fixed = fixed_size(tag);
  if (fixed && len != fixed) {
    return fail(c, BUNBOX_ERR_ARGUMENT, false, "%s: a %s payload is %u bytes, not %zu", what, tag_name(tag, nb, sizeof nb),
                fixed, len);
  }
  if (len > c->max_message_size) {
    return fail(c, BUNBOX_ERR_ARGUMENT, false, "%s: %zu bytes is over the message size limit of %u bytes", what, len,
                c->max_message_size);
  }
  if (tag == BUNBOX_TAG_FD) {
    uint32_t count;
    memcpy(&count, payload, 4);
    if (nfds < 1 || nfds > BUNBOX_COMMS_MAX_FDS || count != nfds || !fds) {
      return fail(c, BUNBOX_ERR_ARGUMENT, false, "%s: an FD frame carries 1 to %d fds, and its count (%u) says how many (%zu given)",
                  what, BUNBOX_COMMS_MAX_FDS, count, nfds);
    }
  } else if (nfds > 0) {
    return fail(c, BUNBOX_ERR_ARGUMENT, false, "%s: only FD frames carry fds", what);
  }
  return send_all(c, what, tag, payload, len, fds, nfds);
}

#define SEND_FIXED(name, type, tag)                                        \
  int bunbox_comms_send_##name(struct bunbox_comms *c, type v) {           \
    return bunbox_comms_send_frame(c, tag, &v, sizeof v, NULL, 0);         \
  }
SEND_FIXED(int8, int8_t, BUNBOX_TAG_INT8)
SEND_FIXED(int16, int16_t, BUNBOX_TAG_INT16)
SEND_FIXED(int32, int32_t, BUNBOX_TAG_INT32)
SEND_FIXED(int64, int64_t, BUNBOX_TAG_INT64)
SEND_FIXED(uint8, uint8_t, BUNBOX_TAG_UINT8)
SEND_FIXED(uint16, uint16_t, BUNBOX_TAG_UINT16)
SEND_FIXED(uint32, uint32_t, BUNBOX_TAG_UINT32)
SEND_FIXED(uint64, uint64_t, BUNBOX_TAG_UINT64)

int bunbox_comms_send_bool(struct bunbox_comms *c, bool v) {
  uint8_t b = v ? 1 : 0;
  return bunbox_comms_send_frame(c, BUNBOX_TAG_BOOL, &b, 1, NULL, 0);
}

int bunbox_comms_send_string(struct bunbox_comms *c, const char *s) {
  return bunbox_comms_send_frame(c, BUNBOX_TAG_STRING, s, strlen(s), NULL, 0);
}

int bunbox_comms_send_bytes(struct bunbox_comms *c, const void *data, size_t len) {
  return bunbox_comms_send_frame(c, BUNBOX_TAG_BYTES, data, len, NULL, 0);
}

int bunbox_comms_send_json(struct bunbox_comms *c, const char *json) {
  return bunbox_comms_send_frame(c, BUNBOX_TAG_JSON, json, strlen(json), NULL, 0);
}

int bunbox_comms_send_fds(struct bunbox_comms *c, const int *fds, size_t n) {
  uint32_t count = (uint32_t)n;
  return bunbox_comms_send_frame(c, BUNBOX_TAG_FD, &count, 4, fds, n);
}

int bunbox_comms_send_fd(struct bunbox_comms *c, int fd) { return bunbox_comms_send_fds(c, &fd, 1); }

int bunbox_comms_send_tagged(struct bunbox_comms *c, uint32_t tag, const void *data, size_t len) {
  if (tag < BUNBOX_TAG_USER_MIN) {
    return fail(c, BUNBOX_ERR_ARGUMENT, false, "send_tagged: %u is not a user tag (0x80000000..0xffffffff)", tag);
  }
  return bunbox_comms_send_frame(c, tag, data, len, NULL, 0);
}

/* ---- receiving --------------------------------------------------------- */

/*
 * Reads exactly len bytes. fds that arrive go to fds[*nfds..] when fds is
 * given (the header), and are a protocol error otherwise (the payload).
 * *got counts the bytes of this frame read so far, for messages and for
 * whether a timeout breaks the channel.
 */
static int read_exact(struct bunbox_comms *c, const char *what, uint8_t *buf, size_t len, int64_t deadline,
                      int *fds, size_t *nfds, size_t *got) {
  size_t have = 0;
  while (have < len) {
    struct iovec iov = {.iov_base = buf + have, .iov_len = len - have};
    union {
      char buf[CMSG_SPACE(sizeof(int) * KERNEL_MAX_FDS)];
      struct cmsghdr align;
    } ctl;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    ssize_t r = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        int w = wait_for(c->fd, POLLIN, deadline);
        if (w == BUNBOX_ERR_TIMEOUT) {
          if (*got == 0) return fail(c, BUNBOX_ERR_TIMEOUT, false, "%s: no message within %d ms", what, c->timeout_ms);
          return fail(c, BUNBOX_ERR_TIMEOUT, true, "%s: the rest of a frame did not come within %d ms (%zu bytes of it arrived)",
                      what, c->timeout_ms, *got);
        }
        if (w < 0) return fail(c, BUNBOX_ERR_IO, true, "%s: poll failed: %s", what, strerror(errno));
        continue;
      }
      return fail(c, BUNBOX_ERR_IO, true, "%s: recvmsg failed: %s", what, strerror(errno));
    }
    /* Take the fds first, so that every error path below can close them. */
    size_t stray = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
      size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n; i++) {
        int fd;
        memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
        if (fds && *nfds < KERNEL_MAX_FDS) {
          fds[(*nfds)++] = fd;
        } else {
          close(fd);
          stray++;
        }
      }
    }
    if (msg.msg_flags & MSG_CTRUNC) {
      return fail(c, BUNBOX_ERR_PROTOCOL, true, "%s: the host sent more fds than one message may carry", what);
    }
    if (stray > 0) {
      return fail(c, BUNBOX_ERR_PROTOCOL, true, "%s: %zu fd(s) arrived in the middle of a frame", what, stray);
    }
    if (r == 0) {
      if (*got == 0) return fail(c, BUNBOX_ERR_EOF, true, "%s: the host closed the channel", what);
      return fail(c, BUNBOX_ERR_PROTOCOL, true, "%s: the host closed the channel in the middle of a frame (%zu bytes of it arrived)",
                  what, *got);
    }
    have += (size_t)r;
    *got += (size_t)r;
  }
  return BUNBOX_OK;
}

/*
 * One whole frame, checked: header (with its fds), then the payload into a
 * malloc'd buffer with a NUL after it. The fds of an FD frame go to fds.
 */
static int recv_any(struct bunbox_comms *c, const char *what, uint32_t *tag, uint8_t **payload, uint32_t *len,
                    int fds[KERNEL_MAX_FDS], size_t *nfds) {
  int r = check_usable(c, what);
  if (r) return r;
  uint8_t head[HEADER_SIZE];
  size_t got = 0;
  *nfds = 0;
  *payload = NULL;
  int64_t deadline = deadline_of(c);
  r = read_exact(c, what, head, HEADER_SIZE, deadline, fds, nfds, &got);
  if (r) goto drop;
  memcpy(tag, head, 4);
  memcpy(len, head + 4, 4);
  char nb[32];
  const char *name = tag_name(*tag, nb, sizeof nb);
  uint32_t fixed = fixed_size(*tag);
  if (!known_tag(*tag)) {
    r = fail(c, BUNBOX_ERR_PROTOCOL, true, "%s: unknown tag %u (0x%x) in a frame header", what, *tag, *tag);
    goto drop;
  }
  if (fixed && *len != fixed) {
    r = fail(c, BUNBOX_ERR_PROTOCOL, true, "%s: %s frame with a %u-byte payload (%s is exactly %u bytes)", what, name, *len,
             name, fixed);
    goto drop;
  }
  if (*len > c->max_message_size) {
    r = fail(c, BUNBOX_ERR_PROTOCOL, true, "%s: %s frame of %u bytes is over the message size limit of %u bytes", what, name,
             *len, c->max_message_size);
    goto drop;
  }
  if (*tag != BUNBOX_TAG_FD && *nfds > 0) {
    r = fail(c, BUNBOX_ERR_PROTOCOL, true, "%s: %zu fd(s) arrived with a %s frame (only FD frames carry fds)", what, *nfds, name);
    goto drop;
  }
  *payload = malloc((size_t)*len + 1);
  if (!*payload) {
    r = fail(c, BUNBOX_ERR_NOMEM, true, "%s: no memory for a %u-byte %s frame", what, *len, name);
    goto drop;
  }
  r = read_exact(c, what, *payload, *len, deadline, NULL, NULL, &got);
  if (r) goto drop;
  (*payload)[*len] = 0;
  if (*tag == BUNBOX_TAG_FD) {
    uint32_t count;
    memcpy(&count, *payload, 4);
    if (count < 1 || count > BUNBOX_COMMS_MAX_FDS) {
      r = fail(c, BUNBOX_ERR_PROTOCOL, true, "%s: FD frame announces %u fds (an FD frame carries 1 to %d)", what, count,
               BUNBOX_COMMS_MAX_FDS);
      goto drop;
    }
    if (count != *nfds) {
      r = fail(c, BUNBOX_ERR_PROTOCOL, true, "%s: FD frame announces %u fd(s) but %zu arrived with it", what, count, *nfds);
      goto drop;
    }
  }
  if (*tag == BUNBOX_TAG_BOOL && (*payload)[0] > 1) {
    r = fail(c, BUNBOX_ERR_PROTOCOL, true, "%s: BOOL frame holds %u, not 0 or 1", what, (*payload)[0]);
    goto drop;
  }
  return BUNBOX_OK;
drop:
  close_fds(fds, *nfds);
  *nfds = 0;
  free(*payload);
  *payload = NULL;
  return r;
}

/* A frame that must have `tag` (any user tag when tag is BUNBOX_TAG_USER_MIN and any_user). */
static int recv_tag(struct bunbox_comms *c, const char *what, uint32_t want, bool any_user, uint32_t *tag, uint8_t **payload,
                    uint32_t *len, int fds[KERNEL_MAX_FDS], size_t *nfds) {
  int r = recv_any(c, what, tag, payload, len, fds, nfds);
  if (r) return r;
  bool ok = any_user ? *tag >= BUNBOX_TAG_USER_MIN : *tag == want;
  if (ok) return BUNBOX_OK;
  char nb1[32], nb2[32];
  r = fail(c, BUNBOX_ERR_TYPE, true, "%s: expected %s, got %s (%u bytes)", what,
           any_user ? "a USER frame" : tag_name(want, nb1, sizeof nb1), tag_name(*tag, nb2, sizeof nb2), *len);
  close_fds(fds, *nfds);
  *nfds = 0;
  free(*payload);
  *payload = NULL;
  return r;
}

#define RECV_FIXED(name, type, tag)                                                  \
  int bunbox_comms_recv_##name(struct bunbox_comms *c, type *v) {                    \
    uint32_t t, len;                                                                 \
    uint8_t *p;                                                                      \
    int fds[KERNEL_MAX_FDS];                                                         \
    size_t nfds;                                                                     \
    int r = recv_tag(c, "recv_" #name, tag, false, &t, &p, &len, fds, &nfds);        \
    if (r) return r;                                                                 \
    memcpy(v, p, sizeof *v);                                                         \
    free(p);                                                                         \
    return BUNBOX_OK;                                                                \
  }
RECV_FIXED(int8, int8_t, BUNBOX_TAG_INT8)
RECV_FIXED(int16, int16_t, BUNBOX_TAG_INT16)
RECV_FIXED(int32, int32_t, BUNBOX_TAG_INT32)
RECV_FIXED(int64, int64_t, BUNBOX_TAG_INT64)
RECV_FIXED(uint8, uint8_t, BUNBOX_TAG_UINT8)
RECV_FIXED(uint16, uint16_t, BUNBOX_TAG_UINT16)
RECV_FIXED(uint32, uint32_t, BUNBOX_TAG_UINT32)
RECV_FIXED(uint64, uint64_t, BUNBOX_TAG_UINT64)

int bunbox_comms_recv_bool(struct bunbox_comms *c, bool *v) {
  uint32_t t, len;
  uint8_t *p;
  int fds[KERNEL_MAX_FDS];
  size_t nfds;
  int r = recv_tag(c, "recv_bool", BUNBOX_TAG_BOOL, false, &t, &p, &len, fds, &nfds);
  if (r) return r;
  *v = p[0] == 1;
  free(p);
  return BUNBOX_OK;
}

/* A variable-size frame of `tag` (or any user tag), its payload handed over. */
static int recv_owned(struct bunbox_comms *c, const char *what, uint32_t want, bool any_user, uint32_t *tag, void **data,
                      size_t *len) {
  uint32_t t, n;
  uint8_t *p;
  int fds[KERNEL_MAX_FDS];
  size_t nfds;
  int r = recv_tag(c, what, want, any_user, &t, &p, &n, fds, &nfds);
  if (r) return r;
  if (tag) *tag = t;
  *data = p;
  if (len) *len = n;
  return BUNBOX_OK;
}

int bunbox_comms_recv_string(struct bunbox_comms *c, char **s, size_t *len) {
  return recv_owned(c, "recv_string", BUNBOX_TAG_STRING, false, NULL, (void **)s, len);
}

int bunbox_comms_recv_bytes(struct bunbox_comms *c, void **data, size_t *len) {
  return recv_owned(c, "recv_bytes", BUNBOX_TAG_BYTES, false, NULL, data, len);
}

int bunbox_comms_recv_json(struct bunbox_comms *c, char **json, size_t *len) {
  return recv_owned(c, "recv_json", BUNBOX_TAG_JSON, false, NULL, (void **)json, len);
}

int bunbox_comms_recv_tagged(struct bunbox_comms *c, uint32_t *tag, void **data, size_t *len) {
  return recv_owned(c, "recv_tagged", 0, true, tag, data, len);
}

int bunbox_comms_recv_fds(struct bunbox_comms *c, int *out, size_t cap, size_t *n) {
  uint32_t t, len;
  uint8_t *p;
  int fds[KERNEL_MAX_FDS];
  size_t nfds;
  int r = recv_tag(c, "recv_fds", BUNBOX_TAG_FD, false, &t, &p, &len, fds, &nfds);
  if (r) return r;
  free(p);
  if (nfds > cap) {
    close_fds(fds, nfds);
    return fail(c, BUNBOX_ERR_ARGUMENT, true, "recv_fds: %zu fds arrived, room for %zu", nfds, cap);
  }
  memcpy(out, fds, nfds * sizeof(int));
  *n = nfds;
  return BUNBOX_OK;
}

int bunbox_comms_recv_fd(struct bunbox_comms *c, int *fd) {
  int fds[BUNBOX_COMMS_MAX_FDS];
  size_t n;
  int r = bunbox_comms_recv_fds(c, fds, BUNBOX_COMMS_MAX_FDS, &n);
  if (r) return r;
  if (n != 1) {
    close_fds(fds, n);
    return fail(c, BUNBOX_ERR_TYPE, true, "recv_fd: expected 1 fd, got an FD frame with %zu", n);
  }
  *fd = fds[0];
  return BUNBOX_OK;
}

int bunbox_comms_recv_frame(struct bunbox_comms *c, uint32_t *tag, void **payload, size_t *len, int *out, size_t cap,
                            size_t *n) {
  uint32_t t, l;
  uint8_t *p;
  int fds[KERNEL_MAX_FDS];
  size_t nfds;
  int r = recv_any(c, "recv_frame", &t, &p, &l, fds, &nfds);
  if (r) return r;
  if (nfds > cap) {
    close_fds(fds, nfds);
    free(p);
    return fail(c, BUNBOX_ERR_ARGUMENT, true, "recv_frame: %zu fds arrived, room for %zu", nfds, cap);
  }
  if (nfds) memcpy(out, fds, nfds * sizeof(int));
  if (n) *n = nfds;
  *tag = t;
  *payload = p;
  *len = l;
  return BUNBOX_OK;
}

/* ---- the channel ------------------------------------------------------- */

struct bunbox_comms *bunbox_comms_open(int fd) {
  int type;
  socklen_t tlen = sizeof type;
  if (fd < 0) {
    errno = EBADF;
    return NULL;
  }
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0) return NULL;
  if (type != SOCK_STREAM) {
    errno = EPROTOTYPE;
    return NULL;
  }
  struct bunbox_comms *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->fd = fd;
  c->timeout_ms = BUNBOX_COMMS_DEFAULT_TIMEOUT_MS;
  c->max_message_size = BUNBOX_COMMS_DEFAULT_MAX_MESSAGE_SIZE;
  return c;
}

void bunbox_comms_close(struct bunbox_comms *c) {
  if (!c) return;
  close(c->fd);
  free(c);
}

int bunbox_comms_fd(const struct bunbox_comms *c) { return c->fd; }
void bunbox_comms_set_timeout(struct bunbox_comms *c, int timeout_ms) { c->timeout_ms = timeout_ms; }
void bunbox_comms_set_max_message_size(struct bunbox_comms *c, uint32_t max) { c->max_message_size = max; }
const char *bunbox_comms_error(const struct bunbox_comms *c) { return c->message; }
int bunbox_comms_last_status(const struct bunbox_comms *c) { return c->status; }
bool bunbox_comms_is_broken(const struct bunbox_comms *c) { return c->broken; }

int bunbox_comms_peer_credentials(struct bunbox_comms *c, int32_t *pid, uint32_t *uid, uint32_t *gid) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
    return fail(c, BUNBOX_ERR_IO, false, "peer_credentials: getsockopt(SO_PEERCRED) failed: %s", strerror(errno));
  }
  if (pid) *pid = cred.pid;
  if (uid) *uid = cred.uid;
  if (gid) *gid = cred.gid;
  return BUNBOX_OK;
}

/* ---- shared memory ----------------------------------------------------- */

static int map_buffer(int fd, size_t size, struct bunbox_buffer *b) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    close(fd);
    return -e;
  }
  b->data = p;
  b->size = size;
  b->fd = fd;
  return 0;
}

int bunbox_buffer_create(size_t size, struct bunbox_buffer *b) {
  b->data = NULL;
  b->size = 0;
  b->fd = -1;
  if (size == 0 || size > (size_t)INT64_MAX) return -EINVAL;
  int fd = (int)syscall(SYS_memfd_create, "bunbox-buffer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -errno;
  /* Sealed so that the host, which maps it too, can rely on its size. */
  if (ftruncate(fd, (off_t)size) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return map_buffer(fd, size, b);
}

/* The host seals the buffers it sends (src/comms/buffer.ts), so the size cannot change under us. */
int bunbox_buffer_from_fd(int fd, struct bunbox_buffer *b) {
  struct stat st;
  b->data = NULL;
  b->size = 0;
  b->fd = -1;
  if (fstat(fd, &st) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
    close(fd);
    return -EINVAL;
  }
  return map_buffer(fd, (size_t)st.st_size, b);
}

void bunbox_buffer_close(struct bunbox_buffer *b) {
  if (b->data) munmap(b->data, b->size);
  if (b->fd >= 0) close(b->fd);
  b->data = NULL;
  b->size = 0;
  b->fd = -1;
}
