/*
 * syscall-loop NR COUNT [ARG...]: makes system call NR COUNT times with the
 * given arguments (default 0) and prints how long one call took on average,
 * and what the last call returned. The benchmark runs it on the host and
 * inside bunbox to price the seccomp filter for one syscall number; the
 * result of the call itself does not matter, only that it is cheap and
 * harmless (an error return is fine: the filter runs before the kernel
 * looks at the arguments).
 *
 * Output: ns_per_call=X ret=R errno=NAME
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: syscall-loop NR COUNT [ARG...]\n");
    return 2;
  }
  long nr = strtol(argv[1], NULL, 0);
  long n = strtol(argv[2], NULL, 0);
  long a[6] = {0};
  for (int i = 0; i < 6 && i + 3 < argc; i++) a[i] = strtol(argv[i + 3], NULL, 0);
  if (n <= 0) return 2;

  long r = 0;
  int err = 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; i++) r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  err = errno;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / (double)n;
  printf("ns_per_call=%.1f ret=%ld errno=%s\n", ns, r, r < 0 ? strerrorname_np(err) : "0");
  return 0;
}
