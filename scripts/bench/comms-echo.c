/*
 * comms-echo: the C end of the comms benchmark (scripts/bench/comms.ts), on
 * bunbox's C client library, as a sandboxee would use it. No time limit on
 * any call.
 *
 *   comms-echo echo   on fd 3 (Bun.spawn's first extra fd): every frame goes
 *                     back as it came
 *   comms-echo sink   on fd 3: BYTES frames are counted and dropped; a UINT64
 *                     frame asks for the byte count so far (answered as a
 *                     UINT64, then reset to 0)
 *   comms-echo pingpong SIZE COUNT
 *   comms-echo stream SIZE COUNT
 *                     the C-to-C baseline: forks, and parent and child talk
 *                     over a fresh socketpair, both through the library. The
 *                     parent times COUNT round trips of SIZE bytes (prints
 *                     each in µs, one per line) or COUNT messages one way
 *                     (prints payload MB/s), the child echoes or sinks
 *
 * The fd 3 modes end with 0 when the host closes the channel.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bunbox_client.h"

static void die(struct bunbox_comms *c, const char *what) {
  fprintf(stderr, "comms-echo: %s: %s\n", what, c ? bunbox_comms_error(c) : "failed");
  exit(4);
}

/* Serves until EOF: echoes every frame, or counts BYTES and answers UINT64 requests. */
static int serve(struct bunbox_comms *c, int echo) {
  uint64_t total = 0;
  for (;;) {
    uint32_t tag;
    void *payload;
    size_t len, nfds;
    int fds[BUNBOX_COMMS_MAX_FDS];
    int r = bunbox_comms_recv_frame(c, &tag, &payload, &len, fds, BUNBOX_COMMS_MAX_FDS, &nfds);
    if (r == BUNBOX_ERR_EOF) return 0;
    if (r == BUNBOX_OK && echo) {
      r = bunbox_comms_send_frame(c, tag, payload, len, NULL, 0);
    } else if (r == BUNBOX_OK && tag == BUNBOX_TAG_UINT64) {
      r = bunbox_comms_send_uint64(c, total);
      total = 0;
    } else if (r == BUNBOX_OK) {
      total += len;
    }
    free(payload);
    if (r != BUNBOX_OK) die(c, "serve");
  }
}

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* The parent's side of pingpong/stream; the child serves the other end. */
static int drive(int pingpong, size_t size, long count) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) die(NULL, "socketpair");
  pid_t pid = fork();
  if (pid < 0) die(NULL, "fork");
  if (pid == 0) {
    close(sv[0]);
    struct bunbox_comms *c = bunbox_comms_open(sv[1]);
    if (!c) die(NULL, "open");
    bunbox_comms_set_timeout(c, -1);
    _exit(serve(c, pingpong));
  }
  close(sv[1]);
  struct bunbox_comms *c = bunbox_comms_open(sv[0]);
  if (!c) die(NULL, "open");
  bunbox_comms_set_timeout(c, -1);
  void *msg = malloc(size);
  if (!msg) die(NULL, "malloc");
  memset(msg, 0x5a, size);
  if (pingpong) {
    for (long i = 0; i < count; i++) {
      double t = now_us();
      void *back;
      size_t len;
      if (bunbox_comms_send_bytes(c, msg, size) != BUNBOX_OK || bunbox_comms_recv_bytes(c, &back, &len) != BUNBOX_OK) {
        die(c, "round trip");
      }
      printf("%.3f\n", now_us() - t);
      free(back);
    }
  } else {
    double t = now_us();
    uint64_t got;
    for (long i = 0; i < count; i++) {
      if (bunbox_comms_send_bytes(c, msg, size) != BUNBOX_OK) die(c, "send");
    }
    if (bunbox_comms_send_uint64(c, 0) != BUNBOX_OK || bunbox_comms_recv_uint64(c, &got) != BUNBOX_OK) die(c, "count");
    if (got != (uint64_t)size * (uint64_t)count) die(c, "the sink's count");
    printf("%.3f\n", (double)got / (now_us() - t));
  }
  bunbox_comms_close(c);
  int status;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (argc == 4 && (strcmp(mode, "pingpong") == 0 || strcmp(mode, "stream") == 0)) {
    return drive(strcmp(mode, "pingpong") == 0, strtoul(argv[2], NULL, 10), strtol(argv[3], NULL, 10));
  }
  if (argc != 2 || (strcmp(mode, "echo") != 0 && strcmp(mode, "sink") != 0)) {
    fprintf(stderr, "usage: comms-echo echo|sink | comms-echo pingpong|stream SIZE COUNT\n");
    return 2;
  }
  struct bunbox_comms *c = bunbox_comms_open(3);
  if (!c) {
    perror("comms-echo: fd 3");
    return 3;
  }
  bunbox_comms_set_timeout(c, -1);
  return serve(c, strcmp(mode, "echo") == 0);
}
