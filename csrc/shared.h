/*
 * State shared by the three tasks of one spawn. They all run in Bun's address
 * space until they exec (CLONE_VM), so this struct, in the spawn arena, is how
 * they talk without system calls:
 *
 *   T  a spawner thread of the shim (csrc/spawner.c) in bb_spawn_here
 *      (csrc/spawn.c): clones A, writes A's id maps, takes B's pidfd and the
 *      seccomp listener, answers the first execveat, waits for both execs.
 *   A  pid 1 inside (csrc/child_a.c): mounts, pivot_root, hostname,
 *      credentials, then clones B and execs init (csrc/init.c) from a sealed
 *      memfd.
 *   B  pid 2 inside, the sandboxee (csrc/child_b.c): session, fds, rlimits,
 *      PATH lookup; waits on the hold pipe until A has exec'd init and init
 *      has made itself non-dumpable (so pid 1 no longer shares Bun's memory
 *      or fds, nor can be read, when sandboxee code first runs); seccomp,
 *      execveat.
 *
 * A, B and T report a failure through bb_fail, first writer wins; T reads
 * it after the status pipe reaches EOF (every write end is close-on-exec, so
 * EOF means both children have exec'd or died) or after it has reaped A.
 */
#ifndef BUNBOX_SHARED_H
#define BUNBOX_SHARED_H

#include <stddef.h>
#include <stdint.h>

#include "plan.h"
#include "sys.h"

/* Any of the std fds on a pty of the sandbox's own (csrc/plan.h). */
#define BB_F_TTY (BB_F_TTY_STDIN | BB_F_TTY_STDOUT | BB_F_TTY_STDERR)

struct bb_shared {
  const struct bb_req *req;
  const uint8_t *base; /* == (const uint8_t *)req */
  char **argv, **envp; /* pointer arrays built by T in the arena */

  int gate_r;   /* A reads T's go (id maps written) and ack (B's pidfd taken) here */
  int status_w; /* A and B hold it; A writes 'B' once B exists; EOF: both exec'd */
  int report_w; /* becomes init's fd 3 */
  int init_fd;  /* sealed, read-only memfd holding the init program */
  int hold_r;   /* B waits here for EOF: A has exec'd init (only A held the write end) */

  uint8_t *stack_a, *stack_b; /* lowest addresses, each above its guard page */
  size_t stack_size;

  /* Failure report (bb_fail): `claim` goes 0 -> 1 once, by compare-and-swap;
   * the claimer writes err and detail, then publishes stage (release). */
  int32_t claim;
  volatile int32_t stage;
  volatile int32_t err;
  char detail[BB_DETAIL_MAX];

  /* T's own first failure, kept apart too (csrc/spawn.c host_fail). Only T
   * touches it. */
  struct {
    int32_t stage, err;
    const char *detail;
  } host;

  /* Set by B after seccomp(): 1 with `listener` valid, -1 on failure. */
  volatile int32_t listener_state;
  volatile int32_t listener;
  /* B's pidfd in A's fd table, stored by the kernel at A's clone of B
   * (CLONE_PIDFD); T takes a copy with pidfd_getfd. */
  int32_t pidfd_b;
  /* With BB_F_TTY_*: the pty A opened (csrc/child_a.c open_terminal), in A's
   * fd table and B's; T takes a copy of the master with pidfd_getfd. */
  int32_t pty_master, pty_slave;
  /* With BB_F_NET_PROXY: the proxy listener and the DNS stub's UDP and TCP
   * sockets A bound (csrc/child_a.c net_listen), in A's fd table; T takes
   * copies with pidfd_getfd. -1 where absent. */
  int32_t net_fds[3];

  /* Monotonic nanoseconds at each enum bb_mark (csrc/plan.h), 0 if not reached. */
  uint64_t marks[BB_MARKS];

  /* Per mount: the detached, idmapped tree T made for a BB_MF_IDMAP bind
   * (csrc/idmap.c), which A inherits at the same number and attaches;
   * -ENOENT for an optional source that is missing; BB_IDMAP_NONE for a
   * BB_MF_IDMAP bind made as a plain one; -1 for other mounts. */
  int32_t idmap_fd[BB_MOUNTS_MAX];
};

/* A writable bind whose filesystem cannot be idmapped, on a tree any user
 * may write (mode o+w, as /tmp): bound as it is (csrc/idmap.c says why). */
#define BB_IDMAP_NONE (-2)

/* Whether mount i is attached from T's idmapped tree. */
static inline int bb_idmapped(const struct bb_shared *sh, uint32_t i) {
  const struct bb_mount *m = (const void *)(sh->base + sh->req->mounts_off);
  return (m[i].flags & BB_MF_IDMAP) && sh->idmap_fd[i] != BB_IDMAP_NONE;
}

static inline void bb_mark(struct bb_shared *sh, enum bb_mark m) {
  struct { long s, ns; } ts;
  bb_sys2(SYS_clock_gettime, 1 /* CLOCK_MONOTONIC */, &ts);
  sh->marks[m] = (uint64_t)ts.s * 1000000000u + (uint64_t)ts.ns;
}

/*
 * Records a failure unless one is recorded already; the detail (a path or
 * value) may be NULL. T may call this while A or B does: the claim decides
 * who writes, and a reader that sees stage (acquire) sees that writer's err
 * and detail. Returns 1 if this call's failure is the one recorded.
 */
static inline int bb_fail(struct bb_shared *sh, int stage, long err, const char *detail) {
  int32_t unclaimed = 0;
  if (!__atomic_compare_exchange_n(&sh->claim, &unclaimed, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
    return 0;
  sh->err = (int32_t)(err < 0 ? -err : err);
  size_t i = 0;
  for (; detail && detail[i] && i + 1 < sizeof sh->detail; i++) sh->detail[i] = detail[i];
  sh->detail[i] = 0;
  __atomic_store_n(&sh->stage, stage, __ATOMIC_RELEASE);
  return 1;
}

/* The recorded failure's stage, 0 if none is published. */
static inline int bb_failed(const struct bb_shared *sh) {
  return __atomic_load_n(&sh->stage, __ATOMIC_ACQUIRE);
}

static inline const char *bb_str(const struct bb_shared *sh, uint32_t off) {
  return off ? (const char *)sh->base + off : NULL;
}

/* Child side (csrc/child.h): raw system calls only. */
BB_HIDDEN int bb_child_a(void *arg);
BB_HIDDEN int bb_child_hold(void *arg);
BB_HIDDEN int bb_mounts_open(struct bb_shared *sh, int *fds);
BB_HIDDEN int bb_mounts_apply(struct bb_shared *sh, int *fds);

/* Host side (T). */
int bb_check_request(const uint8_t *buf, uint32_t len, char *detail, size_t cap);
int bb_spawn_here(const uint8_t *buf, uint32_t len, struct bb_spawn_out *out);
int bb_init_fd(int *err);

#endif
