/*
 * bunbox-init: pid 1 of every sandbox, exec'd by A from a sealed memfd.
 *
 * Why a separate init: the kernel drops every signal sent to a pid
 * namespace's init for which it has no handler, so a sandboxee running as
 * pid 1 would ignore the SIGTERM that bunbox forwards; and orphans must be
 * reaped. Why exec'd: A shares Bun's memory; a long-lived pid 1 in that
 * address space would expose the host's argv through /proc/1/cmdline.
 *
 * It forwards signals to the sandboxee's process group (pid 2 after setsid),
 * reaps every child, and when pid 2 ends (exits or is killed: nothing else
 * ends it) writes struct bb_report to fd 3 and exits, which makes the kernel
 * kill whatever is left in the namespace.
 * Freestanding (no libc): built with -nostdlib -static, a few KiB.
 */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/prctl.h>
#include <linux/ptrace.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include "plan.h"
#include "sys.h"

#define SANDBOXEE 2

void *memset(void *p, int c, size_t n) {
  unsigned char *d = p;
  while (n--) *d++ = (unsigned char)c;
  return p;
}

/* The entry point, in top-level assembly: GCC before 14 has no naked
 * functions on aarch64. */
#if defined(__x86_64__)
#define INIT_ARCH AUDIT_ARCH_X86_64
__asm__(".text\n.globl _start\n.type _start, @function\n_start:\n"
        "\txor %ebp, %ebp\n\tand $-16, %rsp\n\tcall init_main\n\thlt\n");
#elif defined(__aarch64__)
#define INIT_ARCH AUDIT_ARCH_AARCH64
__asm__(".text\n.globl _start\n.type _start, %function\n_start:\n"
        "\tmov x29, xzr\n\tmov x30, xzr\n\tbl init_main\n\tbrk #0\n");
#endif

static __attribute__((noreturn)) void die(int code) {
  for (;;) bb_sys1(SYS_exit_group, code);
}

#define ALLOW_NR(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define ARG0_LO offsetof(struct seccomp_data, args[0]) /* little-endian: x86_64 and aarch64 */
#define ARG0_HI (offsetof(struct seccomp_data, args[0]) + 4)

/* init needs only these (ptrace only to detach: see reap); anything else
 * means it was subverted. */
static void confine(void) {
  static const struct sock_filter f[] = { /* static: no memcpy to the stack */
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, INIT_ARCH, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      ALLOW_NR(SYS_read),
      ALLOW_NR(SYS_write),
      ALLOW_NR(SYS_wait4),
      ALLOW_NR(SYS_kill),
      ALLOW_NR(SYS_exit_group),
      ALLOW_NR(SYS_exit),
      ALLOW_NR(SYS_restart_syscall),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 5),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_HI),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_LO),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PTRACE_DETACH, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
  };
  struct sock_fprog prog = {sizeof f / sizeof f[0], (struct sock_filter *)f};
  if (bb_sys3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) die(125);
}

/* Initialised, so that they are in .data, not .bss (scripts/build-shim.ts
 * builds init with -fno-zero-initialized-in-bss and says why). */
static int done = 0;
static struct bb_report report = {0};

/*
 * Reaps every child that has ended; only an exit or a death ends one. The
 * one other status wait4 reports without WUNTRACED or WCONTINUED is a
 * ptrace-stop, and only to the tracer: a child (pid 2, or an orphan we
 * inherited) makes init its tracer with PTRACE_TRACEME, which a policy that
 * relaxes the ptrace safety rule lets it do. init is no debugger: it detaches
 * at once, delivering the signal that stopped the child, which then runs on
 * untraced.
 */
static void reap(void) {
  for (;;) {
    int status = 0;
    struct rusage ru;
    long pid = bb_sys4(SYS_wait4, -1, &status, WNOHANG | __WALL, &ru);
    if (pid <= 0) return;
    if (WIFSTOPPED(status)) {
      bb_sys4(SYS_ptrace, PTRACE_DETACH, pid, 0, WSTOPSIG(status));
      continue;
    }
    if (!WIFEXITED(status) && !WIFSIGNALED(status)) continue;
    if (pid == SANDBOXEE) {
      report.magic = BB_REPORT_MAGIC;
      report.wstatus = status;
      report.utime_us = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec;
      report.stime_us = (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
      report.maxrss_kb = (uint64_t)ru.ru_maxrss;
      done = 1;
    }
  }
}

__attribute__((used, noreturn)) void init_main(void) {
  /* Out of the sandboxee's reach (no /proc/1/mem, fd or environ) before it
   * runs: it waits for EOF on the hold pipe, our fd 5 (csrc/child_a.c). */
  if (bb_sys5(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) die(125);
  bb_sys1(SYS_close, 5);
  /* Every signal stays blocked (inherited from A) and is read from a signalfd. */
  uint64_t all = ~0ULL;
  long sfd = bb_sys4(SYS_signalfd4, -1, &all, 8, SFD_CLOEXEC);
  if (sfd < 0) die(125);
  confine();

  reap();
  while (!done) {
    struct signalfd_siginfo si;
    long n = bb_sys3(SYS_read, sfd, &si, sizeof si);
    if (n != (long)sizeof si) continue;
    if (si.ssi_signo == SIGCHLD) {
      reap();
    } else if (bb_sys2(SYS_kill, -SANDBOXEE, si.ssi_signo) < 0) {
      bb_sys2(SYS_kill, SANDBOXEE, si.ssi_signo);
    }
  }
  bb_sys3(SYS_write, 3, &report, sizeof report);
  die(0);
}
