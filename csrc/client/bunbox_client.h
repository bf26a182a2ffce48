/*
 * bunbox_client.h: the sandboxee's side of bunbox comms (Sandbox2's Comms
 * and Buffer client). Depends only on libc; copy bunbox_client.{h,c} into a
 * program, or compile bunbox_client.c with it. Blocking calls, each with a
 * time limit (poll), so a silent host never hangs the sandboxee forever.
 *
 *   struct bunbox_comms *c = bunbox_comms_open(BUNBOX_COMMS_FD);
 *   char *name;
 *   if (!c || bunbox_comms_recv_string(c, &name, NULL) != BUNBOX_OK) ...
 *   bunbox_comms_send_int32(c, 42);
 *   fprintf(stderr, "comms: %s\n", bunbox_comms_error(c));   // after a failure
 *
 * Wire format (the same as src/comms/wire.ts): a stream of frames over a
 * SOCK_STREAM unix socket, the sandboxee's end at fd 1023 by default.
 *
 *   offset 0  u32 tag      little-endian
 *   offset 4  u32 length   little-endian, payload bytes that follow
 *   offset 8  payload
 *
 *   tag         name    payload
 *   1           BOOL    1 byte, 0 or 1
 *   2..5        INT8, INT16, INT32, INT64     1, 2, 4, 8 bytes, two's complement LE
 *   6..9        UINT8, UINT16, UINT32, UINT64 1, 2, 4, 8 bytes LE
 *   10          STRING  UTF-8 (no NUL terminator)
 *   11          BYTES   raw bytes
 *   12          JSON    UTF-8 JSON text
 *   13          FD      u32 count (1..16); the fds themselves travel as
 *                       SCM_RIGHTS on the sendmsg whose data begins with
 *                       this frame's header
 *   >= 0x80000000       user tags, raw bytes (Sandbox2's custom tags)
 *
 * Every other tag is an error. A receiver checks the header before it
 * allocates anything: an unknown tag, a length over its maximum message size
 * (default 64 MiB), or a length wrong for a fixed-size tag is a protocol
 * error. So are an FD frame whose count differs from the fds that came with
 * it, fds that come with any other frame, and EOF in the middle of a frame.
 * After a protocol error the channel is broken: every later call fails with
 * BUNBOX_ERR_BROKEN. A receive that times out before any byte of its frame
 * arrived leaves the channel usable; one that times out half-way does not.
 *
 * Received fds are O_CLOEXEC (clear it with fcntl before passing one to a
 * program you exec). Functions return BUNBOX_OK (0) or a negative
 * bunbox_status; bunbox_comms_error() then says what went wrong.
 * Little-endian targets only (x86_64, aarch64).
 */
#ifndef BUNBOX_CLIENT_H
#define BUNBOX_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Where the executor puts the sandboxee's end of the comms socket. */
#define BUNBOX_COMMS_FD 1023
#define BUNBOX_COMMS_DEFAULT_MAX_MESSAGE_SIZE (64u * 1024u * 1024u)
#define BUNBOX_COMMS_DEFAULT_TIMEOUT_MS 10000
/* Most fds in one FD frame. */
#define BUNBOX_COMMS_MAX_FDS 16

#define BUNBOX_TAG_BOOL 1u
#define BUNBOX_TAG_INT8 2u
#define BUNBOX_TAG_INT16 3u
#define BUNBOX_TAG_INT32 4u
#define BUNBOX_TAG_INT64 5u
#define BUNBOX_TAG_UINT8 6u
#define BUNBOX_TAG_UINT16 7u
#define BUNBOX_TAG_UINT32 8u
#define BUNBOX_TAG_UINT64 9u
#define BUNBOX_TAG_STRING 10u
#define BUNBOX_TAG_BYTES 11u
#define BUNBOX_TAG_JSON 12u
#define BUNBOX_TAG_FD 13u
/* User tags are 0x80000000..0xffffffff. */
#define BUNBOX_TAG_USER_MIN 0x80000000u

enum bunbox_status {
  BUNBOX_OK = 0,
  BUNBOX_ERR_IO = -1,       /* a system call failed (the message names it and errno) */
  BUNBOX_ERR_EOF = -2,      /* the host closed the channel at a frame boundary */
  BUNBOX_ERR_TIMEOUT = -3,  /* nothing (complete) within the time limit */
  BUNBOX_ERR_PROTOCOL = -4, /* a malformed frame (the message says how) */
  BUNBOX_ERR_TYPE = -5,     /* a well-formed frame of another type than asked for */
  BUNBOX_ERR_ARGUMENT = -6, /* a bad argument (too large, bad tag, bad fd count) */
  BUNBOX_ERR_NOMEM = -7,    /* malloc failed */
  BUNBOX_ERR_BROKEN = -8,   /* an earlier error broke the channel */
};

/* Opaque: one end of a comms channel. */
struct bunbox_comms;

/*
 * Wraps `fd` (BUNBOX_COMMS_FD in a sandboxee), a connected AF_UNIX
 * SOCK_STREAM socket; bunbox_comms_close() closes it. NULL with errno set
 * when fd is not such a socket (EBADF, ENOTSOCK, EPROTOTYPE) or on ENOMEM.
 */
struct bunbox_comms *bunbox_comms_open(int fd);
/* Closes the fd and frees `c` (NULL is fine). */
void bunbox_comms_close(struct bunbox_comms *c);
int bunbox_comms_fd(const struct bunbox_comms *c);
/* Time limit of each later call in ms; < 0: none. Default 10 000. */
void bunbox_comms_set_timeout(struct bunbox_comms *c, int timeout_ms);
/* Largest payload accepted and sent. Default 64 MiB. */
void bunbox_comms_set_max_message_size(struct bunbox_comms *c, uint32_t max);
/* What the last failure was ("" when none). Valid until the next call on c. */
const char *bunbox_comms_error(const struct bunbox_comms *c);
/* The status of the last failure (BUNBOX_OK when none). */
int bunbox_comms_last_status(const struct bunbox_comms *c);
bool bunbox_comms_is_broken(const struct bunbox_comms *c);

int bunbox_comms_send_bool(struct bunbox_comms *c, bool v);
int bunbox_comms_send_int8(struct bunbox_comms *c, int8_t v);
int bunbox_comms_send_int16(struct bunbox_comms *c, int16_t v);
int bunbox_comms_send_int32(struct bunbox_comms *c, int32_t v);
int bunbox_comms_send_int64(struct bunbox_comms *c, int64_t v);
int bunbox_comms_send_uint8(struct bunbox_comms *c, uint8_t v);
int bunbox_comms_send_uint16(struct bunbox_comms *c, uint16_t v);
int bunbox_comms_send_uint32(struct bunbox_comms *c, uint32_t v);
int bunbox_comms_send_uint64(struct bunbox_comms *c, uint64_t v);
/* strlen(s) bytes of UTF-8 (not checked here; the host checks). */
int bunbox_comms_send_string(struct bunbox_comms *c, const char *s);
int bunbox_comms_send_bytes(struct bunbox_comms *c, const void *data, size_t len);
/* JSON text, sent as is (the host parses it). */
int bunbox_comms_send_json(struct bunbox_comms *c, const char *json);
/* A duplicate of fd goes to the host; fd stays yours. */
int bunbox_comms_send_fd(struct bunbox_comms *c, int fd);
int bunbox_comms_send_fds(struct bunbox_comms *c, const int *fds, size_t n);
/* tag >= BUNBOX_TAG_USER_MIN. */
int bunbox_comms_send_tagged(struct bunbox_comms *c, uint32_t tag, const void *data, size_t len);

int bunbox_comms_recv_bool(struct bunbox_comms *c, bool *v);
int bunbox_comms_recv_int8(struct bunbox_comms *c, int8_t *v);
int bunbox_comms_recv_int16(struct bunbox_comms *c, int16_t *v);
int bunbox_comms_recv_int32(struct bunbox_comms *c, int32_t *v);
int bunbox_comms_recv_int64(struct bunbox_comms *c, int64_t *v);
int bunbox_comms_recv_uint8(struct bunbox_comms *c, uint8_t *v);
int bunbox_comms_recv_uint16(struct bunbox_comms *c, uint16_t *v);
int bunbox_comms_recv_uint32(struct bunbox_comms *c, uint32_t *v);
int bunbox_comms_recv_uint64(struct bunbox_comms *c, uint64_t *v);
/* *s is malloc'd and NUL-terminated (free it); len (may be NULL) excludes the NUL. */
int bunbox_comms_recv_string(struct bunbox_comms *c, char **s, size_t *len);
/* *data is malloc'd (free it), never NULL on success. */
int bunbox_comms_recv_bytes(struct bunbox_comms *c, void **data, size_t *len);
int bunbox_comms_recv_json(struct bunbox_comms *c, char **json, size_t *len);
/* Exactly one fd (O_CLOEXEC), now yours. */
int bunbox_comms_recv_fd(struct bunbox_comms *c, int *fd);
/* The fds of one FD frame into fds[0..cap); *n of them. More than cap: BUNBOX_ERR_ARGUMENT, all closed. */
int bunbox_comms_recv_fds(struct bunbox_comms *c, int *fds, size_t cap, size_t *n);
/* A user-tagged frame; *data malloc'd. */
int bunbox_comms_recv_tagged(struct bunbox_comms *c, uint32_t *tag, void **data, size_t *len);

/*
 * One frame of any type, checked like the typed calls. For FD frames the
 * payload is the u32 count, which must equal nfds; other frames take no fds.
 */
int bunbox_comms_send_frame(struct bunbox_comms *c, uint32_t tag, const void *payload, size_t len, const int *fds,
                            size_t nfds);
/*
 * The next frame, whatever its type: *payload malloc'd (NUL-terminated, never
 * NULL on success), the fds of an FD frame into fds[0..cap), *nfds of them.
 */
int bunbox_comms_recv_frame(struct bunbox_comms *c, uint32_t *tag, void **payload, size_t *len, int *fds,
                            size_t cap, size_t *nfds);

/* SO_PEERCRED of the socket: the host's pid, uid, gid as the kernel saw them. */
int bunbox_comms_peer_credentials(struct bunbox_comms *c, int32_t *pid, uint32_t *uid, uint32_t *gid);

/* Shared memory (Sandbox2's Buffer): a memfd mapped MAP_SHARED. */
struct bunbox_buffer {
  void *data;
  size_t size;
  int fd;
};

/* A new zero-filled buffer, sealed against resizing (so the host may map it). 0 or -errno. */
int bunbox_buffer_create(size_t size, struct bunbox_buffer *b);
/* Maps fd (from bunbox_comms_recv_fd) read-write; takes ownership of fd. 0 or -errno. */
int bunbox_buffer_from_fd(int fd, struct bunbox_buffer *b);
/* Unmaps and closes; b is zeroed (fd -1). */
void bunbox_buffer_close(struct bunbox_buffer *b);

/*
 * The other executor modes, in bunbox_sandbox.c (compile it too; its header
 * comment gives the protocol).
 *
 * bunbox_sandbox_me_here: the program, started without a seccomp filter,
 * asks the host for its policy and applies it now, on every thread (TSYNC;
 * a thread that cannot take it makes the call fail). Call it before reading
 * untrusted input, with no other thread opening fds meanwhile.
 *
 * bunbox_fork_server_loop: serves fork requests from the host; returns
 * BUNBOX_OK only in each new child, which is then sandboxed (its own comms
 * at the same fd, its rlimits, its filter). In the server it returns only on
 * an error or when the host closes the channel.
 *
 * bunbox_fd: the fd the executor mapped under `name` (Ipc.mapFd(fd, n,
 * name), receiveFd(n, name)), or -1 with errno ENOENT.
 */
int bunbox_sandbox_me_here(struct bunbox_comms *c);
int bunbox_fork_server_loop(struct bunbox_comms *c);
int bunbox_fd(const char *name);

#ifdef __cplusplus
}
#endif

#endif
