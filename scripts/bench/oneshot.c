/*
 * oneshot: the smallest sandboxee, for the fork-server benchmark
 * (scripts/bench/forkserver.ts). Built with bunbox's C client library; the
 * comms channel is fd 1023.
 *
 *   oneshot          exits 0 at once
 *   oneshot wait     takes one BOOL over comms (the "request"), exits 0
 *   oneshot serve    a fork server whose every child takes one BOOL, exits 0
 *
 * Why a fork-server child waits for a message instead of exiting at once:
 * the server takes the child's seccomp listener (pidfd_getfd) only after the
 * child has installed its filter and gone on; a child that exits in between
 * takes its listener with it, and the fork fails ("pidfd_getfd(listener):
 * No such process", or "child died before its filter was in"). One message
 * from the host after Sandbox.ready() orders the two. Exec mode's "wait" is
 * there so that both modes do the same work.
 */
#include <stdbool.h>
#include <string.h>

#include "bunbox_client.h"

static int wait_one(struct bunbox_comms *c) {
  bool go;
  return bunbox_comms_recv_bool(c, &go) == BUNBOX_OK ? 0 : 7;
}

int main(int argc, char **argv) {
  if (argc < 2) return 0;
  struct bunbox_comms *c = bunbox_comms_open(BUNBOX_COMMS_FD);
  if (!c) return 5;
  if (strcmp(argv[1], "wait") == 0) return wait_one(c);
  if (strcmp(argv[1], "serve") != 0) return 2;
  int r = bunbox_fork_server_loop(c);
  if (r == BUNBOX_ERR_EOF) return 0; /* the host closed the server */
  if (r != BUNBOX_OK) return 6;
  return wait_one(c); /* a child, sandboxed */
}
