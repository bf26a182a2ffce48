/*
 * bb_fail (csrc/shared.h) from two threads at once, as T and A or B may call
 * it: whoever wins, the recorded stage, errno and detail must all be one
 * caller's. Built and run by test/native/bb_fail.test.ts.
 *
 *   bb_fail claimed   a slot claimed by another caller is not written
 *   bb_fail race N    N rounds of two threads failing at once
 * Prints "ok", or what was wrong, and exits 0 or 1.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../csrc/shared.h"

static struct bb_shared sh;
static pthread_barrier_t barrier;
static int rounds;

static void *writer(void *arg) {
  long id = (long)arg; /* 1 or 2: its stage, errno id * 100, detail of 'a' + id */
  char detail[BB_DETAIL_MAX];
  memset(detail, (int)('a' + id), sizeof detail - 1);
  detail[sizeof detail - 1] = 0;
  for (int i = 0; i < rounds; i++) {
    pthread_barrier_wait(&barrier); /* go */
    bb_fail(&sh, (int)id, id * 100, detail);
    pthread_barrier_wait(&barrier); /* done: main checks */
    pthread_barrier_wait(&barrier); /* main has reset the slot */
  }
  return NULL;
}

static const char *inconsistent(void) {
  int stage = bb_failed(&sh);
  if (stage != 1 && stage != 2) return "no stage recorded";
  if (sh.err != stage * 100) return "errno of the other caller";
  for (size_t i = 0; i + 1 < sizeof sh.detail; i++)
    if (sh.detail[i] != 'a' + stage) return "detail (partly) of the other caller";
  return NULL;
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "claimed")) {
    memset(&sh, 0, sizeof sh);
    sh.claim = 1; /* another caller is between its claim and its publication */
    int won = bb_fail(&sh, BB_ST_TIMEOUT, 110, "late");
    if (won || sh.stage || sh.err || sh.detail[0]) return puts("a claimed slot was written"), 1;
    return puts("ok"), 0;
  }
  if (argc < 3 || strcmp(argv[1], "race")) return fputs("usage: bb_fail claimed | race N\n", stderr), 2;
  rounds = atoi(argv[2]);
  pthread_barrier_init(&barrier, NULL, 3);
  pthread_t t[2];
  for (long id = 1; id <= 2; id++) pthread_create(&t[id - 1], NULL, writer, (void *)id);
  for (int i = 0; i < rounds; i++) {
    memset(&sh, 0, sizeof sh);
    pthread_barrier_wait(&barrier);
    pthread_barrier_wait(&barrier);
    const char *bad = inconsistent();
    if (bad) return printf("round %d: %s\n", i, bad), 1;
    pthread_barrier_wait(&barrier);
  }
  return puts("ok"), 0;
}
