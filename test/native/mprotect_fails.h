/*
 * Force-included (gcc -include) into a test build of the shim by
 * test/native/spawn-arena.test.ts: every mprotect fails with ENOMEM, as it
 * does when splitting the spawn arena's mapping would pass vm.max_map_count.
 */
#ifndef __ASSEMBLER__
#define _GNU_SOURCE /* as every unit of the shim, before any header */
#include <errno.h>
#include <stddef.h>
#include <sys/mman.h>

static inline int bb_test_mprotect(void *addr, size_t len, int prot) {
  (void)addr;
  (void)len;
  (void)prot;
  errno = ENOMEM;
  return -1;
}
#define mprotect bb_test_mprotect
#endif
