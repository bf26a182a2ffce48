/*
 * The two children of a spawn, between clone and execve: A (csrc/child_a.c)
 * and B (csrc/child_b.c); csrc/shared.h says who does what.
 *
 * Rules (they run in Bun's address space, on the TLS of the spawner thread
 * that cloned A): raw system calls only (csrc/sys.h), no allocation, no
 * stdio, no locks, no errno or other thread-local storage, touch nothing but
 * the request, the shared struct and their own stacks. The build checks the
 * calls: the child units (these two, csrc/mounts.c and the units it names,
 * csrc/clone.S) are linked on their own and must need nothing from outside
 * (scripts/check-child.ts).
 * Each step names the stage it reports on failure, and the steps read top to
 * bottom in the order the sandbox is entered.
 */
#ifndef BUNBOX_CHILD_H
#define BUNBOX_CHILD_H

#include "shared.h"

#define SIGSET_BYTES 8 /* the kernel's sigset_t, not glibc's */

/* B's entry point, cloned by A. */
BB_HIDDEN int bb_child_b(void *arg);

/* Closes every fd from 3 up but the n in keep (sorted here, duplicates allowed). */
static inline void close_all_but(int *keep, int n) {
  for (int i = 1; i < n; i++) /* insertion sort: at most a few hundred entries */
    for (int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
      int t = keep[j];
      keep[j] = keep[j - 1];
      keep[j - 1] = t;
    }
  unsigned lo = 3;
  for (int i = 0; i <= n; i++) {
    unsigned hi = i < n ? (unsigned)keep[i] : ~0U;
    if (hi > lo && bb_sys3(SYS_close_range, lo, hi - 1, 0) < 0) { /* before Linux 5.9 */
      unsigned last = hi == ~0U ? 65536 : hi;
      for (unsigned fd = lo; fd < last; fd++) bb_sys1(SYS_close, fd);
    }
    if (i < n && (unsigned)keep[i] + 1 > lo) lo = (unsigned)keep[i] + 1;
  }
}

#endif
