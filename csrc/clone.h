/*
 * clone3, or clone where clone3 is missing, on a private stack, calling
 * fn(arg) in the child; raw system calls only, since A calls this too
 * (csrc/child_a.c): no glibc wrapper, no errno.
 *
 * fn must be defined in a child-side unit (csrc/child.h lists them):
 * the build checks that nothing reachable there calls into libc
 * (scripts/check-child.ts).
 */
#ifndef BUNBOX_CLONE_H
#define BUNBOX_CLONE_H

#include <linux/errno.h>
#include <linux/sched.h>
#include <stdint.h>

#include "sys.h"

typedef int (*bb_child_fn)(void *);

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* The trampolines (csrc/clone.S says how they work). */
BB_HIDDEN long bb_clone3_raw(struct clone_args *args, size_t size, bb_child_fn fn, void *arg);
BB_HIDDEN long bb_clone_raw(unsigned long flags, void *stack_top, int *pidfd, bb_child_fn fn,
                            void *arg);

/*
 * Starts fn(arg) in a child on [stack, stack + size), size a multiple of 16,
 * in the cgroup v2 directory cgroup_fd unless it is -1 (CLONE_INTO_CGROUP,
 * Linux 5.7; older kernels refuse it, and without clone3 there is no
 * fallback: the caller then clones without it and places the child itself).
 * Returns the child's pid or -errno. With CLONE_PIDFD the pidfd is stored at
 * *pidfd. clone3 needs Linux 5.3; where it is missing (ENOSYS, which
 * container runtimes' seccomp profiles also return for clone3) this falls
 * back to clone(2), which has taken CLONE_PIDFD since 5.2.
 */
static inline long bb_clone_into(uint64_t flags, int exit_signal, int *pidfd, void *stack, size_t size,
                                 int cgroup_fd, bb_child_fn fn, void *arg) {
  struct clone_args args;
  bb_memset(&args, 0, sizeof args);
  args.flags = flags;
  args.pidfd = (uint64_t)(uintptr_t)pidfd;
  args.exit_signal = (uint64_t)exit_signal;
  args.stack = (uint64_t)(uintptr_t)stack;
  args.stack_size = size;
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = (uint64_t)cgroup_fd;
  }
  long pid = bb_clone3_raw(&args, sizeof args, fn, arg);
  if (pid != -ENOSYS || cgroup_fd >= 0) return pid;
  return bb_clone_raw((unsigned long)flags | (unsigned long)exit_signal, (char *)stack + size, pidfd,
                      fn, arg);
}

/* bb_clone_into without a cgroup. */
static inline long bb_clone(uint64_t flags, int exit_signal, int *pidfd, void *stack, size_t size,
                            bb_child_fn fn, void *arg) {
  return bb_clone_into(flags, exit_signal, pidfd, stack, size, -1, fn, arg);
}

#endif
