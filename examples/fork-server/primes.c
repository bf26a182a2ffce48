/*
 * primes: a prime-counting service with an expensive start-up, run as a
 * bunbox fork server (Sandbox2's custom fork server; see README.md).
 *
 * Start-up sieves every number below LIMIT and builds a table of prime
 * counts per 64-number block (~60 ms here). Then bunbox_fork_server_loop()
 * waits for the host's fork requests; each request becomes a fresh child
 * that already has the table, runs under the host's child policy, answers
 * exactly one query over its own comms channel, and exits. A child can wreck
 * its copy of the table or be killed without touching the next one.
 *
 * Query (host -> child): UINT64 n. Answer (child -> host): JSON
 *   {"n":N,"primes":P,"init_ms":T}     P = the primes <= n
 *   {"n":N,"error":"..."}              n out of range
 * where T is the server's start-up time, the same in every child: it was
 * paid once.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bunbox_client.h"

#define LIMIT (1u << 24)
#define BLOCKS (LIMIT / 64)

/* Bit i of composite[] set: i is not prime. */
static uint64_t composite[BLOCKS];
/* before[b]: primes below 64 * b. */
static uint32_t before[BLOCKS + 1];

static void build_table(void) {
  composite[0] |= 3; /* 0 and 1 */
  for (uint64_t i = 2; i * i < LIMIT; i++) {
    if (composite[i / 64] >> (i % 64) & 1) continue;
    for (uint64_t j = i * i; j < LIMIT; j += i) composite[j / 64] |= 1ull << (j % 64);
  }
  for (uint32_t b = 0; b < BLOCKS; b++) before[b + 1] = before[b] + (uint32_t)__builtin_popcountll(~composite[b]);
}

/* Primes <= n (n < LIMIT): whole blocks from the table, then the bits of the last block. */
static uint32_t count_primes(uint64_t n) {
  uint64_t b = n / 64, bits = n % 64 + 1;
  uint64_t mask = bits == 64 ? ~0ull : (1ull << bits) - 1;
  return before[b] + (uint32_t)__builtin_popcountll(~composite[b] & mask);
}

static double ms_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* A child: one query, one answer. Only comms, memory and exit are allowed here. */
static int serve_one(struct bunbox_comms *c, double init_ms) {
  uint64_t n;
  if (bunbox_comms_recv_uint64(c, &n) != BUNBOX_OK) return 3;
  char answer[160];
  if (n >= LIMIT) {
    snprintf(answer, sizeof answer, "{\"n\":%llu,\"error\":\"n must be below %u\"}", (unsigned long long)n, LIMIT);
  } else {
    snprintf(answer, sizeof answer, "{\"n\":%llu,\"primes\":%u,\"init_ms\":%.1f}", (unsigned long long)n,
             count_primes(n), init_ms);
  }
  return bunbox_comms_send_json(c, answer) == BUNBOX_OK ? 0 : 4;
}

int main(void) {
  struct bunbox_comms *c = bunbox_comms_open(BUNBOX_COMMS_FD);
  if (!c) {
    perror("primes: no comms channel at fd 1023 (run me through main.ts)");
    return 5;
  }
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  build_table();
  double init_ms = ms_since(&t0);

  int r = bunbox_fork_server_loop(c);
  if (r == BUNBOX_ERR_EOF) return 0; /* the host closed the server */
  if (r != BUNBOX_OK) {
    fprintf(stderr, "primes: fork server: %s\n", bunbox_comms_error(c));
    return 6;
  }
  /* In a new child, sandboxed. */
  return serve_one(c, init_ms);
}
