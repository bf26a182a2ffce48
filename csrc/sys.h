/*
 * Raw system calls for code that runs between clone and execve.
 *
 * The spawn child shares its address space with Bun (CLONE_VM), so it must not
 * touch anything Bun's other threads may be using. glibc's wrappers write the
 * calling thread's errno, and the child runs on a copy of the *parent thread's*
 * TLS pointer: every glibc wrapper would scribble on the errno of the Bun thread
 * that is waiting for us. These wrappers return -errno instead and touch no
 * memory but their arguments.
 */
#ifndef BUNBOX_SYS_H
#define BUNBOX_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
static inline long bb_sys6(long n, long a, long b, long c, long d, long e, long f) {
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
static inline long bb_sys6(long n, long a, long b, long c, long d, long e, long f) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc #0"
                   : "+r"(x0)
                   : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                   : "memory");
  return x0;
}
#else
#error "bunbox supports x86_64 and aarch64"
#endif

/* Only the functions TypeScript calls are exported from the shim. */
#define BB_API __attribute__((visibility("default")))
/* Functions one unit defines and another calls or takes the address of:
 * declared hidden, the compiler reaches them directly, never through the GOT
 * or the PLT (scripts/check-child.ts holds the child units to it). */
#define BB_HIDDEN __attribute__((visibility("hidden")))

#define bb_sys0(n) bb_sys6((n), 0, 0, 0, 0, 0, 0)
#define bb_sys1(n, a) bb_sys6((n), (long)(a), 0, 0, 0, 0, 0)
#define bb_sys2(n, a, b) bb_sys6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define bb_sys3(n, a, b, c) bb_sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define bb_sys4(n, a, b, c, d) bb_sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define bb_sys5(n, a, b, c, d, e) \
  bb_sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

/* Numbers that older headers may lack. */
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

/* Async-signal-safe string helpers (no locale, no allocation). */
static inline size_t bb_strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

/* Copies src into dst (capacity cap, always NUL-terminated); returns chars copied. */
static inline size_t bb_strlcpy(char *dst, const char *src, size_t cap) {
  size_t n = 0;
  if (cap == 0) return 0;
  while (src[n] && n + 1 < cap) {
    dst[n] = src[n];
    n++;
  }
  dst[n] = 0;
  return n;
}

/* Appends src at dst[len] (capacity cap); returns the new length. */
static inline size_t bb_strlcat(char *dst, size_t len, const char *src, size_t cap) {
  return len + bb_strlcpy(dst + len, src, cap > len ? cap - len : 0);
}

static inline void bb_memset(void *p, int c, size_t n) {
  volatile unsigned char *d = p;
  while (n--) *d++ = (unsigned char)c;
}

/* Unsigned decimal into buf; returns length. */
static inline size_t bb_utoa(unsigned long v, char *buf) {
  char tmp[24];
  size_t n = 0, i = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) buf[i++] = tmp[--n];
  buf[i] = 0;
  return i;
}

#endif
