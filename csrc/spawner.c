/*
 * Spawner threads: bb_spawn off the JavaScript thread.
 *
 * Most of a bb_spawn is waiting: for A to build the mount tree, for B to
 * install its filter, for both to exec. On the JavaScript thread that wait
 * blocks the event loop, and with many runs in flight it caps throughput at
 * one spawn at a time. Here a few persistent threads run bb_spawn (unchanged:
 * it is reentrant, each call has its own arena and pipes) and signal each
 * job's eventfd when it is done; TypeScript watches that eventfd through the
 * reactor (csrc/monitor.c) and collects the result on its own thread.
 *
 * The threads never exit: A sets PR_SET_PDEATHSIG, which fires when the
 * *thread* that created it ends, so a spawner thread that stopped would kill
 * every sandbox it started. They block all signals (none of Bun's handlers
 * may run on them) and wait on a condition variable when idle.
 *
 * A job owns a copy of the request, so the caller's buffer may be freed at
 * once; bb_spawn_collect copies struct bb_spawn_out back and frees the job.
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

#include "plan.h"
#include "sys.h"

#define SPAWNERS 4

struct job {
  struct job *next;
  int efd;
  int rc;
  uint32_t len;
  struct bb_spawn_out out;
  uint8_t buf[];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t more = PTHREAD_COND_INITIALIZER;
static struct job *head, *tail;
static int started;

static void *spawner(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&lock);
    while (!head) pthread_cond_wait(&more, &lock);
    struct job *j = head;
    head = j->next;
    if (!head) tail = NULL;
    pthread_mutex_unlock(&lock);

    j->rc = bb_spawn_here(j->buf, j->len, &j->out);
    uint64_t one = 1;
    /* An eventfd write of 1 cannot fail short of a bug; the caller's
     * deadline would then report it. */
    if (write(j->efd, &one, sizeof one) < 0) {
    }
  }
  return NULL;
}

/* Starts the threads once; 0 or -errno. Called with the lock held. */
static int start_locked(void) {
  if (started) return 0;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int r = 0;
  for (int i = 0; i < SPAWNERS; i++) {
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

/* An eventfd for one job, made first so that the caller can watch it before
 * anything is queued. */
BB_API int bb_spawn_eventfd(void) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  return fd < 0 ? -errno : fd;
}

/*
 * Queues a spawn of the request (copied); `efd` (bb_spawn_eventfd) becomes
 * readable when it is done. Returns the job, or NULL with -errno in *err.
 */
BB_API void *bb_spawn_submit(const uint8_t *buf, uint32_t len, int32_t efd, int32_t *err) {
  struct job *j = malloc(sizeof *j + len);
  if (!j) {
    *err = -ENOMEM;
    return NULL;
  }
  memset(j, 0, sizeof *j);
  memcpy(j->buf, buf, len);
  j->len = len;
  j->efd = efd;
  bb_spawn_env();
  pthread_mutex_lock(&lock);
  int r = start_locked();
  if (r < 0) {
    pthread_mutex_unlock(&lock);
    free(j);
    *err = r;
    return NULL;
  }
  if (tail) tail->next = j;
  else head = j;
  tail = j;
  pthread_cond_signal(&more);
  pthread_mutex_unlock(&lock);
  return j;
}

/*
 * After the eventfd was readable: copies the outcome into *out and frees the
 * job; the caller closes the eventfd (after its watch is gone). Returns
 * bb_spawn's return value, or -EAGAIN (nothing freed) if the job is not done.
 */
BB_API int bb_spawn_collect(void *job, struct bb_spawn_out *out) {
  struct job *j = job;
  uint64_t v;
  if (read(j->efd, &v, sizeof v) != sizeof v) return -EAGAIN;
  *out = j->out;
  int rc = j->rc;
  free(j);
  return rc;
}
