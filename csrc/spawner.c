/*
 * Spawner threads: every spawn runs here, off the JavaScript thread.
 *
 * Most of a spawn is waiting: for A to build the mount tree, for B to
 * install its filter, for both to exec. On the JavaScript thread that wait
 * blocks the event loop, and with many runs in flight it caps throughput at
 * one spawn at a time. Here a few persistent threads run bb_spawn_here (it
 * is reentrant: each call has its own arena and pipes), put each finished
 * job on a done list and signal one eventfd; TypeScript watches that eventfd
 * through the reactor (csrc/monitor.c) and collects the results on its own
 * thread.
 *
 * The threads never exit: A sets PR_SET_PDEATHSIG, which fires when the
 * *thread* that created it ends, so a spawner thread that stopped would kill
 * every sandbox it started. They block all signals (none of Bun's handlers
 * may run on them) and wait on a condition variable when idle.
 *
 * A job owns a copy of the request, so the caller's buffer may be freed at
 * once; bb_spawn_next copies struct bb_spawn_out back and frees the job.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "shared.h"

/* One spawner per CPU, at most four. More set-ups at once raise throughput
 * a little but leave the event loop less CPU: with 200 runs at once on 2
 * CPUs, a 10 ms timer lagged up to 34 ms with 4 threads, 29 ms with 2
 * (18 ms with 1, at 75% of the throughput). */
#define SPAWNERS_MAX 4

struct job {
  struct job *next;
  uint32_t id;
  int rc;
  uint32_t len;
  struct bb_spawn_out out;
  uint8_t buf[] __attribute__((aligned(16))); /* the request has u64 fields */
};

struct list {
  struct job *head, *tail;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t more = PTHREAD_COND_INITIALIZER;
static struct list todo, done;
static int started, done_fd = -1;
static uint32_t last_id;

static void push(struct list *l, struct job *j) {
  j->next = NULL;
  if (l->tail) l->tail->next = j;
  else l->head = j;
  l->tail = j;
}

static struct job *pop(struct list *l) {
  struct job *j = l->head;
  if (j && !(l->head = j->next)) l->tail = NULL;
  return j;
}

static void *spawner(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&lock);
    struct job *j;
    while (!(j = pop(&todo))) pthread_cond_wait(&more, &lock);
    pthread_mutex_unlock(&lock);

    j->rc = bb_spawn_here(j->buf, j->len, &j->out);

    pthread_mutex_lock(&lock);
    push(&done, j);
    pthread_mutex_unlock(&lock);
    /* After the push: whoever consumes this count finds the job listed. An
     * eventfd write of 1 cannot fail short of a bug. */
    uint64_t one = 1;
    if (write(done_fd, &one, sizeof one) < 0) {
    }
  }
  return NULL;
}

/* The eventfd and the threads, once; 0 or -errno. Called with the lock held. */
static int start_locked(void) {
  if (started) return 0;
  if (done_fd < 0 && (done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) return -errno;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int r = 0;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int n = cpus < 1 ? 1 : cpus > SPAWNERS_MAX ? SPAWNERS_MAX : (int)cpus;
  for (int i = 0; i < n; i++) {
    pthread_t t;
    r = -pthread_create(&t, NULL, spawner, NULL);
    if (r) break;
    pthread_detach(t);
    started++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  /* Some threads are enough; none is an error. */
  return started ? 0 : r;
}

/*
 * The eventfd that becomes readable when spawns are done (bb_spawn_next
 * collects them), starting the threads on first use; or -errno. The caller
 * watches it before it submits anything, so no spawn can go uncollected.
 */
BB_API int bb_spawn_events(void) {
  pthread_mutex_lock(&lock);
  int r = start_locked();
  pthread_mutex_unlock(&lock);
  return r < 0 ? r : done_fd;
}

/* Queues a spawn of the request (copied). Returns the job's id (never 0), 0 if out of memory. */
BB_API uint32_t bb_spawn_submit(const uint8_t *buf, uint32_t len) {
  struct job *j = malloc(sizeof *j + len);
  if (!j) return 0;
  memset(j, 0, sizeof *j);
  memcpy(j->buf, buf, len);
  j->len = len;
  pthread_mutex_lock(&lock);
  if (++last_id == 0) last_id = 1;
  uint32_t id = j->id = last_id;
  push(&todo, j);
  pthread_cond_signal(&more);
  pthread_mutex_unlock(&lock);
  return id;
}

/*
 * A finished job: copies its outcome into *out and bb_spawn_here's return value
 * into *rc, frees it and returns its id; 0 when none is done. Call until 0,
 * then re-arm the watch: a job finishing meanwhile leaves the eventfd
 * readable.
 */
BB_API uint32_t bb_spawn_next(struct bb_spawn_out *out, int32_t *rc) {
  pthread_mutex_lock(&lock);
  struct job *j = pop(&done);
  if (!j) {
    /* Consume the count, then look again: a job counted here was listed first. */
    uint64_t v;
    if (read(done_fd, &v, sizeof v) < 0) {
    }
    j = pop(&done);
  }
  pthread_mutex_unlock(&lock);
  if (!j) return 0;
  uint32_t id = j->id;
  *out = j->out;
  *rc = j->rc;
  free(j);
  return id;
}
