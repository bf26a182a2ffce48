/*
 * State shared by the three tasks of one spawn. They all run in Bun's address
 * space until they exec (CLONE_VM), so this struct, in the spawn arena, is how
 * they talk without system calls:
 *
 *   T  the thread in bb_spawn (csrc/spawn.c), a spawner thread of the shim
 *      (csrc/spawner.c) or the JavaScript thread: clones A, writes A's id
 *      maps, takes the seccomp listener, answers the first execveat, waits
 *      for exec.
 *   A  pid 1 inside (csrc/child.c): mounts, pivot_root, hostname, credentials,
 *      then clones B and execs init (csrc/init.c) from a sealed memfd.
 *   B  pid 2 inside, the sandboxee: session, rlimits, fds; waits until A has
 *      exec'd (so pid 1 no longer shares Bun's memory or fds when sandboxee
 *      code first runs); seccomp, execveat.
 *
 * A and B report a failure by filling stage/err/detail and exiting; T reads it
 * after the status pipe reaches EOF (every write end is close-on-exec, so EOF
 * means both children have exec'd or died).
 */
#ifndef BUNBOX_SHARED_H
#define BUNBOX_SHARED_H

#include <stddef.h>
#include <stdint.h>

#include "plan.h"
#include "sys.h"

struct bb_shared {
  const struct bb_req *req;
  const uint8_t *base; /* == (const uint8_t *)req */
  char **argv, **envp; /* pointer arrays built by T in the arena */

  int gate_r;   /* A reads T's go (id maps written) and ack (B's pidfd taken) here */
  int status_w; /* A and B hold it; A writes 'B' once B exists; EOF: both exec'd */
  int report_w; /* becomes init's fd 3 */
  int init_fd;  /* sealed, read-only memfd holding the init program */
  int hold_r;   /* B waits here for EOF: A has exec'd init (only A held the write end) */

  void *stack_b;
  size_t stack_b_size;

  /* Failure report, first writer wins (A and B never fail at once). */
  volatile int32_t stage;
  volatile int32_t err;
  char detail[512];

  /* Set by B after seccomp(): 1 with `listener` valid, -1 on failure. */
  volatile int32_t listener_state;
  volatile int32_t listener;
  /* Written by clone3(CLONE_PIDFD) in A: B's pidfd in A's fd table. */
  int32_t pidfd_b;

  /* Monotonic nanoseconds at each step, for BUNBOX_TRACE_SPAWN=1. */
  uint64_t marks[16];
};

enum bb_mark { MK_CLONE, MK_GATE, MK_IDS, MK_MOUNTS, MK_CAPS, MK_CLONE_B, MK_B_READY, MK_INIT_OK, MK_DONE, MK_COUNT };

static inline void bb_mark(struct bb_shared *sh, int m) {
  struct { long s, ns; } ts;
  bb_sys2(SYS_clock_gettime, 1 /* CLOCK_MONOTONIC */, &ts);
  sh->marks[m] = (uint64_t)ts.s * 1000000000u + (uint64_t)ts.ns;
}

/* Records a failure; the detail (a path or value) may be NULL. */
static inline void bb_fail(struct bb_shared *sh, int stage, long err, const char *detail) {
  if (sh->stage) return;
  sh->err = (int32_t)(err < 0 ? -err : err);
  if (detail) {
    size_t i = 0;
    for (; detail[i] && i + 1 < sizeof sh->detail; i++) sh->detail[i] = detail[i];
    sh->detail[i] = 0;
  }
  __atomic_store_n(&sh->stage, stage, __ATOMIC_RELEASE);
}

static inline const char *bb_str(const struct bb_shared *sh, uint32_t off) {
  return off ? (const char *)sh->base + off : NULL;
}

int bb_child_a(void *arg);
const char *bb_check_request(const uint8_t *buf, uint32_t len);
int bb_init_fd(int *err);
int bb_mounts_open(struct bb_shared *sh, int *fds);
int bb_mounts_apply(struct bb_shared *sh, const int *fds);

#endif
