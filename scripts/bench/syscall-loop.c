/*
 * syscall-loop NR COUNT [ARG...]: makes system call NR COUNT times with the
 * given arguments (default 0) and prints what one call cost. The benchmark
 * runs it on the host and inside bunbox to price the seccomp filter for one
 * syscall number; what the call returns does not matter, only that it is
 * cheap and harmless (an error return is fine: the filter runs before the
 * kernel looks at the arguments).
 *
 * The calls are made in 50 batches. Noise on a busy machine (interrupts,
 * preemption, the other core's work) only ever adds time, so the fastest
 * batch is the best estimate of a call's own cost; the mean of all calls is
 * printed too.
 *
 * Output: ns_per_call=MEAN best_batch_ns=MIN ret=R errno=NAME
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BATCHES 50

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: syscall-loop NR COUNT [ARG...]\n");
    return 2;
  }
  long nr = strtol(argv[1], NULL, 0);
  long n = strtol(argv[2], NULL, 0);
  long a[6] = {0};
  for (int i = 0; i < 6 && i + 3 < argc; i++) a[i] = strtol(argv[i + 3], NULL, 0);
  long per = n / BATCHES;
  if (per <= 0) return 2;

  long r = 0;
  int err = 0;
  double best = 1e300, total = 0;
  for (int b = 0; b < BATCHES; b++) {
    double t0 = now_ns();
    for (long i = 0; i < per; i++) r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    err = errno;
    double dt = now_ns() - t0;
    total += dt;
    if (dt < best) best = dt;
  }
  printf("ns_per_call=%.1f best_batch_ns=%.1f ret=%ld errno=%s\n", total / (per * BATCHES), best / per, r,
         r < 0 ? strerrorname_np(err) : "0");
  return 0;
}
