/*
 * The host's side of a sandboxee's terminal (BB_F_TTY_*, csrc/plan.h): the
 * caller's terminal modes, and a relay between the caller's stdin/stdout and
 * the master of the sandbox's own pty. src/cli/tty.ts drives it.
 *
 * Why a thread of its own and not the event loop: Bun's streams would make
 * the caller's stdin non-blocking (a flag of the open file description,
 * shared with the shell that started bunbox, which would then read EAGAIN),
 * and a relay on the JavaScript thread stalls whenever JavaScript runs. The
 * thread only polls and copies; a plain run (no terminal) never starts it.
 *
 * Flow control: input is read from the caller only once the previous chunk
 * has gone into the master (non-blocking, POLLOUT), so a sandboxee that does
 * not read its input cannot stall its output; output is written to the
 * caller blocking, as any program writing to a terminal does. A caller's
 * stdout that fails (closed, EIO) is dropped and the master still drained,
 * so the sandboxee never blocks on a full pty.
 *
 * Job control: a caller's terminal is read only while bunbox's process
 * group is its foreground one (`bunbox run … &` runs on as `make &` would,
 * its output shown, until `fg`). In the background a read would be EIO (this
 * thread blocks SIGTTIN), so it is not tried: the input is polled again
 * once the group is in the foreground (checked every BG_RECHECK_MS).
 *
 * The relay ends when the master reads EIO or EOF (no slave is open: every
 * process of the sandbox is gone), or when asked (the stop pipe); it then
 * writes one byte to its done pipe, which TypeScript watches.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "sys.h"

/* bb_relay_start flags */
#define RELAY_EOF_TO_VEOF 0x1 /* the caller's input is not a terminal: its EOF becomes the pty's EOF character */

struct relay {
  int master, in, out, stop_r, done_w, flags;
};

static void write_all(int *fd, const char *buf, size_t n) {
  while (*fd >= 0 && n > 0) {
    ssize_t w = write(*fd, buf, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) { /* a non-blocking stdout (set by someone else): wait */
      struct pollfd p = {*fd, POLLOUT, 0};
      poll(&p, 1, 100);
      continue;
    }
    if (w <= 0) {
      *fd = -1; /* gone: drop output from here on, keep draining the master */
      return;
    }
    buf += w;
    n -= (size_t)w;
  }
}

/* The caller's input ended: a pty has no half-close, so in canonical mode
 * the reader is sent its EOF character (a cat reading from a pipe would
 * otherwise wait for ever). */
static void send_eof(int master) {
  struct termios t;
  if (tcgetattr(master, &t) == 0 && (t.c_lflag & ICANON)) {
    char c = (char)t.c_cc[VEOF];
    while (write(master, &c, 1) < 0 && errno == EINTR) {
    }
  }
}

#define BG_RECHECK_MS 200

/* Whether bunbox's process group may read the terminal `fd` now. */
static int in_foreground(int fd) { return tcgetpgrp(fd) == getpgrp(); }

static void *relay_main(void *arg) {
  struct relay r = *(struct relay *)arg;
  free(arg);
  char in_buf[4096], out_buf[16384];
  size_t in_len = 0, in_off = 0;
  int in = r.in;
  int in_tty = in >= 0 && isatty(in);
  for (;;) {
    int background = in_tty && in >= 0 && !in_foreground(in);
    struct pollfd p[3] = {
        {r.master, POLLIN | (in_off < in_len ? POLLOUT : 0), 0},
        {in_off < in_len || background ? -1 : in, POLLIN, 0},
        {r.stop_r, POLLIN, 0},
    };
    if (poll(p, 3, background ? BG_RECHECK_MS : -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[2].revents) break;
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(r.master, out_buf, sizeof out_buf);
      if (n > 0) write_all(&r.out, out_buf, (size_t)n);
      else if (n == 0 || (errno != EINTR && errno != EAGAIN)) break; /* EIO: no slave left */
    }
    if ((p[0].revents & POLLOUT) && in_off < in_len) {
      ssize_t n = write(r.master, in_buf + in_off, in_len - in_off);
      if (n > 0) in_off += (size_t)n;
      else if (n < 0 && errno != EINTR && errno != EAGAIN) in_off = in_len; /* dropped */
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(in, in_buf, sizeof in_buf);
      if (n > 0) {
        in_len = (size_t)n;
        in_off = 0;
      } else if (n < 0 && in_tty && errno == EIO && !in_foreground(in)) {
        /* sent to the background since the check: read again in the foreground */
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        if (r.flags & RELAY_EOF_TO_VEOF) send_eof(r.master);
        in = -1; /* ended: poll ignores a negative fd */
      }
    }
  }
  while (write(r.done_w, "d", 1) < 0 && errno == EINTR) {
  }
  close(r.done_w);
  close(r.stop_r);
  return NULL;
}

/*
 * Starts relaying between `master` (made non-blocking) and the caller's
 * `in` (-1: none) and `out`; none of the three is closed by the relay.
 * fds[0]: read end of the done pipe, fds[1]: write end of the stop pipe
 * (both the caller's to close, after the done byte). 0 or -errno.
 */
BB_API int bb_relay_start(int master, int in, int out, int flags, int32_t *fds) {
  int done[2], stop[2];
  if (pipe2(done, O_CLOEXEC) < 0) return -errno;
  if (pipe2(stop, O_CLOEXEC) < 0) {
    int err = errno;
    close(done[0]);
    close(done[1]);
    return -err;
  }
  int fl = fcntl(master, F_GETFL);
  struct relay *r = malloc(sizeof *r);
  int err = 0;
  if (fl < 0 || fcntl(master, F_SETFL, fl | O_NONBLOCK) < 0) err = errno;
  else if (!r) err = ENOMEM;
  if (!err) {
    *r = (struct relay){master, in, out, stop[0], done[1], flags};
    /* No signal handler of Bun's may run on this thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t thread;
    err = pthread_create(&thread, NULL, relay_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!err) {
      pthread_detach(thread);
      fds[0] = done[0];
      fds[1] = stop[1];
      return 0;
    }
  }
  free(r);
  close(done[0]);
  close(done[1]);
  close(stop[0]);
  close(stop[1]);
  return -err;
}

/* Whether fd is a terminal (1 or 0): node:tty's isatty would load Bun's
 * whole stream stack on every start (README.md, "Start-up"). */
BB_API int bb_isatty(int fd) { return isatty(fd); }

/* rows << 16 | columns of the terminal at fd, or -errno. */
BB_API int bb_tty_size(int fd) {
  struct winsize ws;
  if (ioctl(fd, TIOCGWINSZ, &ws) < 0) return -errno;
  return (int)(((uint32_t)ws.ws_row << 16) | ws.ws_col);
}

/* Gives the pty `master` the size of the terminal at `from`; the kernel then
 * sends SIGWINCH to the pty's foreground process group. 0 or -errno. */
BB_API int bb_tty_copy_size(int from, int master) {
  struct winsize ws;
  if (ioctl(from, TIOCGWINSZ, &ws) < 0 || ioctl(master, TIOCSWINSZ, &ws) < 0) return -errno;
  return 0;
}

/* 1 when bunbox's process group is the foreground one of the terminal at
 * fd (its modes may be changed without SIGTTOU), 0 when not, or -errno. */
BB_API int bb_tty_foreground(int fd) {
  pid_t pg = tcgetpgrp(fd);
  return pg < 0 ? -errno : pg == getpgrp();
}

/* Ends the process at once, without the atexit hooks: Bun's writes back
 * the terminal modes it saw at its start (src/cli/tty.ts says when those are
 * not the ones to leave). */
BB_API void bb_exit_now(int code) { _exit(code); }

/* Bytes a saved terminal state takes (the caller's buffer for bb_tty_raw). */
BB_API int bb_tty_state_size(void) { return (int)sizeof(struct termios); }

/*
 * Saves the modes of the terminal at fd into `saved`, then puts it in raw
 * mode (cfmakeraw: no echo, no line editing, no signals from keys, no output
 * processing: the sandbox's pty does all of that). 0 or -errno.
 */
BB_API int bb_tty_raw(int fd, struct termios *saved) {
  if (tcgetattr(fd, saved) < 0) return -errno;
  struct termios raw = *saved;
  cfmakeraw(&raw);
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  return tcsetattr(fd, TCSADRAIN, &raw) < 0 ? -errno : 0;
}

/* Puts back the modes bb_tty_raw saved. 0 or -errno. */
BB_API int bb_tty_restore(int fd, const struct termios *saved) {
  while (tcsetattr(fd, TCSADRAIN, saved) < 0) {
    if (errno != EINTR) return -errno;
  }
  return 0;
}
