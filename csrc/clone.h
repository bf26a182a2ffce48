/*
 * clone3 on a private stack, calling fn(arg) in the child.
 *
 * glibc has no public clone3 wrapper, and a raw clone3 with a new stack returns
 * in the child with nothing on that stack to return to; so this trampoline
 * makes the call and, in the child, calls fn and exits with its result.
 * The kernel sets the child's stack pointer to stack + stack_size (clone3
 * takes the lowest address and the size, unlike clone, and aligns nothing):
 * callers pass a 16-byte aligned top.
 */
#ifndef BUNBOX_CLONE_H
#define BUNBOX_CLONE_H

#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <stdint.h>

#include "sys.h"

typedef int (*bb_child_fn)(void *);

#if defined(__x86_64__)
__attribute__((naked, noinline, used)) static long bb_clone3_raw(
    __attribute__((unused)) struct clone_args *args, __attribute__((unused)) size_t size,
    __attribute__((unused)) bb_child_fn fn, __attribute__((unused)) void *arg) {
  __asm__ volatile(
      "mov %rdx, %r9\n\t" /* fn: r9 survives the syscall */
      "mov %rcx, %r8\n\t" /* arg: rcx does not */
      "mov $435, %eax\n\t"
      "syscall\n\t"
      "test %rax, %rax\n\t"
      "jz 1f\n\t"
      "ret\n"
      "1:\n\t"
      "xor %ebp, %ebp\n\t"
      "mov %r8, %rdi\n\t"
      "call *%r9\n\t"
      "mov %eax, %edi\n\t"
      "mov $231, %eax\n\t" /* exit_group */
      "syscall\n\t"
      "hlt\n");
}
#elif defined(__aarch64__)
__attribute__((naked, noinline, used)) static long bb_clone3_raw(
    __attribute__((unused)) struct clone_args *args, __attribute__((unused)) size_t size,
    __attribute__((unused)) bb_child_fn fn, __attribute__((unused)) void *arg) {
  __asm__ volatile(
      "mov x9, x2\n\t"  /* fn */
      "mov x10, x3\n\t" /* arg */
      "mov x8, #435\n\t"
      "svc #0\n\t"
      "cbz x0, 1f\n\t"
      "ret\n"
      "1:\n\t"
      "mov x29, xzr\n\t"
      "mov x30, xzr\n\t"
      "mov x0, x10\n\t"
      "blr x9\n\t"
      "mov x8, #94\n\t" /* exit_group */
      "svc #0\n\t"
      "brk #0\n");
}
#endif

/*
 * Starts fn(arg) in a child on [stack, stack + size). Returns the child's pid
 * or -errno. With CLONE_PIDFD the pidfd is stored at *pidfd.
 * clone3 needs Linux 5.3; where it is missing (ENOSYS, which container
 * runtimes' seccomp profiles also return for clone3) this falls back to
 * clone(2), which has taken CLONE_PIDFD since 5.2.
 */
static inline long bb_clone(uint64_t flags, int exit_signal, int *pidfd, void *stack, size_t size,
                            bb_child_fn fn, void *arg) {
  struct clone_args args;
  bb_memset(&args, 0, sizeof args);
  args.flags = flags;
  args.pidfd = (uint64_t)(uintptr_t)pidfd;
  args.exit_signal = (uint64_t)exit_signal;
  args.stack = (uint64_t)(uintptr_t)stack;
  args.stack_size = size;
  long pid = bb_clone3_raw(&args, sizeof args, fn, arg);
  if (pid != -ENOSYS) return pid;
  int err_before = errno;
  long r = clone(fn, (char *)stack + size, (int)(flags | (uint64_t)exit_signal), arg, pidfd, NULL,
                 NULL);
  long result = r < 0 ? -errno : r;
  errno = err_before;
  return result;
}

#endif
