/*
 * T's side of a spawn (csrc/shared.h): an ordinary thread, where glibc is
 * fine. Shared by csrc/spawn.c and csrc/handover.c.
 */
#ifndef BUNBOX_HOST_H
#define BUNBOX_HOST_H

#include <time.h>

#include "shared.h"

static inline long bb_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/*
 * T's failures go to the shared slot like the children's, and to sh->host:
 * T kills A after each of them, and a child that had claimed the slot first
 * may die between its claim and its publication.
 */
static inline void bb_host_fail(struct bb_shared *sh, int stage, int err, const char *detail) {
  if (!sh->host.stage) {
    sh->host.stage = stage;
    sh->host.err = err;
    sh->host.detail = detail;
  }
  bb_fail(sh, stage, err, detail);
}

/* csrc/handover.c: B's pidfd (and its pid) from A's fd table, once B exists;
 * then B's seccomp listener, with the answer to B's first execveat. */
int bb_take_sandboxee(struct bb_shared *sh, int pidfd_a, int *sandboxee_pid);
int bb_take_listener(struct bb_shared *sh, int pidfd_b, long deadline, int *listener_out);
/* The master of the sandboxee's terminal, from A's fd table at the same point. */
int bb_take_terminal(struct bb_shared *sh, int pidfd_a);
/* csrc/handover.c: with BB_F_NET_PROXY, the sockets A bound (net_listen), at 'B'. */
int bb_take_net(struct bb_shared *sh, int pidfd_a, int fds[3]);

/* csrc/contain.c: the sandbox's v2 cgroup and the owner of its user
 * namespace, around T's clone of A. */
int bb_cgroups_v2_fd(const struct bb_req *rq);
int bb_cgroups_place(const struct bb_req *rq, pid_t pid, char *detail, size_t cap);
int bb_owner_begin(const struct bb_req *rq);
void bb_owner_end(const struct bb_req *rq);
/* csrc/idmap.c: the idmapped trees of BB_MF_IDMAP binds (sh->idmap_fd), made before the clone, closed after it. */
int bb_idmaps_make(struct bb_shared *sh, struct bb_spawn_out *out);
void bb_idmaps_close(struct bb_shared *sh);

#endif
