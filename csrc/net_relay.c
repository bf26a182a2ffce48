/*
 * The relay thread of the proxy (src/net/): it moves the bytes of every
 * allowed connection, once TypeScript has read the request and decided
 * (through the calls of net_socket.c).
 *
 * Why a relay in C: Bun can adopt a connected fd (Bun.connect({ fd })) but
 * reads eagerly into JavaScript buffers, so the proxy could neither peek at a
 * request and leave the rest in the kernel, nor hand a socket on; and moving
 * bulk data through JavaScript cost 2.3x the CPU of splice here. So
 * TypeScript peeks (MSG_PEEK), decides, consumes exactly what it parsed, and
 * hands both fds to this thread, which splices socket -> pipe -> socket and
 * never copies the payload into user space.
 *
 * The relay thread owns every tunnel: TypeScript adds, opens and aborts them
 * through a command queue (a mutex and an eventfd), so a tunnel is freed only
 * by the thread that has its fds in epoll, and a handle carries a generation
 * so that a command for a tunnel that has ended meanwhile does nothing. When
 * a tunnel ends, its fds leave epoll before they are closed (TypeScript may
 * still hold a dup of the client socket), and the thread reports through a
 * threadsafe JSCallback: handle, why it ended, bytes each way.
 *
 * A direction added "gated" does not read until opened, while the other
 * flows. A tunnel's client side is gated while TypeScript peeks at the
 * client's first bytes on its own dup (a TLS ClientHello's SNI; server-first
 * protocols still work); a forwarded HTTP request's server side is gated
 * while TypeScript reads the response head on its dup and sends the client
 * its own version of it (with Connection: close), the request body flowing
 * meanwhile. A gated direction moves no byte, so nothing the relay does
 * interleaves with TypeScript's reads and writes on those dups.
 *
 * Timeouts: a tunnel with no byte moving for idle_ms ends, and once one
 * direction has finished, for halfopen_ms; a sweep every SWEEP_MS checks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sys.h"

/* net_socket.c */
int bb_net_sockerr(int fd);

/* Reasons a tunnel ended, besides -errno: see src/native/net.ts. */
enum { END_CLOSED = 0, END_IDLE = 1, END_HALFOPEN = 2, END_ABORTED = 3 };

#define MAX_TUNNELS (1u << 16)
#define PIPE_BULK (1024 * 1024)
#define SWEEP_MS 50
#define WAKE_KEY UINT64_MAX

struct dir {
  int src, dst, pr, pw; /* sockets, and the pipe between them */
  uint32_t inpipe;      /* bytes read from src not yet written to dst */
  uint32_t cap;         /* the pipe's capacity */
  uint8_t eof, shut;    /* src said EOF; dst was shut down for writing */
  uint8_t grown;        /* the pipe was offered PIPE_BULK once */
  uint64_t bytes;       /* delivered to dst */
};

/* Bits of tunnel.gated: the directions that wait for bb_net_relay_open. */
enum { GATE_UP = 1, GATE_DOWN = 2 };

struct tunnel {
  uint32_t handle;
  int gated; /* GATE_UP: d[0] (client -> upstream) waits; GATE_DOWN: d[1] */
  uint8_t watched[2]; /* each socket is in the epoll set */
  struct dir d[2]; /* d[0] client -> upstream, d[1] upstream -> client */
  uint32_t interest[2];
  uint64_t last_ms, idle_ms, halfopen_ms;
  int err_side; /* the socket an error came from: 0 client, 1 upstream */
};

typedef void (*bb_net_end_fn)(uint32_t handle, int32_t reason, int32_t side, double up, double down);

enum { CMD_ADD, CMD_OPEN, CMD_ABORT };
struct cmd {
  struct cmd *next;
  int op;
  uint32_t handle;
  int gates; /* CMD_OPEN: the GATE_* bits to open */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t thread;
static int epfd = -1, wakefd = -1;
static bb_net_end_fn on_end;
static struct cmd *queue_head, *queue_tail;
/* Slots: written under `lock` by bb_net_relay before its CMD_ADD is queued,
 * read by the relay thread after it took that command from the queue. */
static struct tunnel *slots[MAX_TUNNELS];
static uint16_t gens[MAX_TUNNELS];
static uint32_t free_slots[MAX_TUNNELS], nfree, next_slot;
static uint32_t live;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct tunnel *lookup(uint32_t handle) {
  struct tunnel *t = __atomic_load_n(&slots[handle & 0xffff], __ATOMIC_ACQUIRE);
  return t && t->handle == handle ? t : NULL;
}

static void close_dir_pipe(struct dir *d) {
  if (d->pr >= 0) close(d->pr);
  if (d->pw >= 0) close(d->pw);
}

static void release_slot(uint32_t handle) {
  uint32_t slot = handle & 0xffff;
  pthread_mutex_lock(&lock);
  __atomic_store_n(&slots[slot], NULL, __ATOMIC_RELEASE);
  gens[slot] = (uint16_t)((gens[slot] + 1) & 0x7fff);
  free_slots[nfree++] = slot;
  __atomic_sub_fetch(&live, 1, __ATOMIC_RELAXED);
  pthread_mutex_unlock(&lock);
}

static void end_tunnel(struct tunnel *t, int reason) {
  for (int s = 0; s < 2; s++) {
    if (t->watched[s]) epoll_ctl(epfd, EPOLL_CTL_DEL, t->d[s].src, NULL);
    close_dir_pipe(&t->d[s]);
  }
  close(t->d[0].src);
  close(t->d[1].src);
  uint32_t handle = t->handle;
  int side = t->err_side;
  double up = (double)t->d[0].bytes, down = (double)t->d[1].bytes;
  free(t);
  release_slot(handle);
  on_end(handle, reason, side, up, down);
}

/* What each socket waits for now; side 0 is the client, 1 the upstream. */
/* 0, or -errno when epoll refuses (the tunnel then ends: unwatched, it would hang). */
static int update_interest(struct tunnel *t) {
  for (int s = 0; s < 2; s++) {
    struct dir *in = &t->d[s], *out = &t->d[1 - s]; /* s reads for `in`, writes for `out` */
    uint32_t want = 0;
    if (!in->eof && in->inpipe < in->cap && !(t->gated & (1 << s))) want |= EPOLLIN;
    if (out->inpipe > 0) want |= EPOLLOUT;
    if (want == t->interest[s] && t->watched[s]) continue;
    struct epoll_event ev = {.events = want, .data.u64 = ((uint64_t)t->handle << 1) | (uint64_t)s};
    if (epoll_ctl(epfd, t->watched[s] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, t->d[s].src, &ev) < 0) return -errno;
    t->watched[s] = 1;
    t->interest[s] = want;
  }
  return 0;
}

/*
 * A direction that fills its pipe carries bulk data: a 1 MiB pipe moves it
 * with a quarter of the splices (and half the relay's CPU) of the default
 * 64 KiB. Only then, and once: an unprivileged user's pipes beyond
 * fs.pipe-user-pages-soft (64 MiB) make every new pipe of that user small,
 * so idle and small tunnels keep the default, and past the limit
 * F_SETPIPE_SZ fails (EPERM) and the pipe simply stays as it is.
 */
static void grow(struct dir *d) {
  d->grown = 1;
  int got = fcntl(d->pw, F_SETPIPE_SZ, PIPE_BULK);
  if (got > 0) d->cap = (uint32_t)got;
}

/*
 * Moves what it can in one direction: 1 if bytes moved, 0 if not, -errno on
 * error. Reads only when `readable` (epoll said so, or a command asks to
 * try): an idle direction costs no system call per event of the busy one.
 */
static int pump(struct tunnel *t, int di, int readable) {
  struct dir *d = &t->d[di];
  int moved = 0;
  for (;;) {
    int progress = 0;
    if (readable && !d->eof && d->inpipe < d->cap && !(t->gated & (1 << di))) {
      ssize_t n = splice(d->src, NULL, d->pw, NULL, d->cap - d->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d->inpipe += (uint32_t)n;
        progress = 1;
        if (d->inpipe == d->cap && !d->grown) grow(d);
      } else if (n == 0) {
        d->eof = 1;
      } else if (errno == EAGAIN) {
        readable = 0;
      } else if (errno != EINTR) {
        t->err_side = di;
        return -errno;
      }
    }
    if (d->inpipe > 0) {
      ssize_t n = splice(d->pr, NULL, d->dst, NULL, d->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d->inpipe -= (uint32_t)n;
        d->bytes += (uint64_t)n;
        progress = 1;
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        t->err_side = 1 - di;
        return -errno;
      }
    }
    if (!progress) break;
    moved = 1;
  }
  if (d->eof && d->inpipe == 0 && !d->shut) {
    /* The peer may be gone already; the other direction reports that. */
    shutdown(d->dst, SHUT_WR);
    d->shut = 1;
  }
  return moved;
}

/* After an event on `side` (0 client, 1 upstream; -1: a command, try all). */
static void service(struct tunnel *t, int side, uint32_t events) {
  int moved = 0;
  for (int di = 0; di < 2; di++) {
    int r = pump(t, di, side < 0 || (side == di && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))));
    if (r < 0) {
      end_tunnel(t, r);
      return;
    }
    moved |= r;
  }
  if (t->d[0].shut && t->d[1].shut) {
    end_tunnel(t, END_CLOSED);
    return;
  }
  /* An error or hang-up with nothing left to move would be reported again
   * and again (level-triggered); the connection is over. */
  if (!moved && (events & (EPOLLERR | EPOLLHUP))) {
    int e = bb_net_sockerr(t->d[0].src);
    t->err_side = e == 0;
    if (e == 0) e = bb_net_sockerr(t->d[1].src);
    end_tunnel(t, e ? e : -ECONNRESET);
    return;
  }
  if (moved) t->last_ms = now_ms();
  int r = update_interest(t);
  if (r < 0) end_tunnel(t, r);
}

static void run_commands(void) {
  uint64_t v;
  if (read(wakefd, &v, sizeof v) < 0) {
  }
  pthread_mutex_lock(&lock);
  struct cmd *c = queue_head;
  queue_head = queue_tail = NULL;
  pthread_mutex_unlock(&lock);
  while (c) {
    struct cmd *next = c->next;
    struct tunnel *t = lookup(c->handle);
    if (t && c->op == CMD_ADD) {
      t->last_ms = now_ms();
      service(t, -1, 0);
    } else if (t && c->op == CMD_OPEN && (t->gated & c->gates)) {
      t->gated &= ~c->gates;
      service(t, -1, 0);
    } else if (t && c->op == CMD_ABORT) {
      end_tunnel(t, END_ABORTED);
    }
    free(c);
    c = next;
  }
}

static void sweep(uint64_t now) {
  uint32_t used = __atomic_load_n(&next_slot, __ATOMIC_ACQUIRE);
  for (uint32_t i = 0; i < used; i++) {
    struct tunnel *t = __atomic_load_n(&slots[i], __ATOMIC_ACQUIRE);
    if (!t || !t->watched[0]) continue; /* not yet taken from the queue */
    int half = t->d[0].shut || t->d[1].shut;
    uint64_t limit = half ? t->halfopen_ms : t->idle_ms;
    if (limit && now - t->last_ms >= limit) end_tunnel(t, half ? END_HALFOPEN : END_IDLE);
  }
}

static void *relay(void *arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "bunbox-relay");
  struct epoll_event ev[256];
  uint64_t next_sweep = now_ms() + SWEEP_MS;
  for (;;) {
    int n = epoll_wait(epfd, ev, 256, __atomic_load_n(&live, __ATOMIC_RELAXED) ? SWEEP_MS : -1);
    if (n < 0 && errno != EINTR) return NULL;
    for (int i = 0; i < n; i++) {
      if (ev[i].data.u64 == WAKE_KEY) {
        run_commands();
        continue;
      }
      struct tunnel *t = lookup((uint32_t)(ev[i].data.u64 >> 1));
      if (t) service(t, (int)(ev[i].data.u64 & 1), ev[i].events);
    }
    uint64_t now = now_ms();
    if (now >= next_sweep) {
      sweep(now);
      next_sweep = now + SWEEP_MS;
    }
  }
}

/* Starts the relay thread once; `fn` hears of every tunnel's end. */
BB_API int bb_net_relay_start(bb_net_end_fn fn) {
  int r = 0;
  pthread_mutex_lock(&lock);
  if (epfd >= 0) goto out;
  epfd = epoll_create1(EPOLL_CLOEXEC);
  wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_KEY};
  if (epfd < 0 || wakefd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, wakefd, &ev) < 0) {
    r = -errno;
    goto fail;
  }
  on_end = fn;
  /* Signals are for Bun's threads; a splice to a closed peer must not
   * raise SIGPIPE here either (Bun ignores it; this does not rely on that). */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  r = -pthread_create(&thread, NULL, relay, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (r == 0) {
    pthread_detach(thread);
    goto out;
  }
fail:
  if (epfd >= 0) close(epfd);
  if (wakefd >= 0) close(wakefd);
  epfd = wakefd = -1;
out:
  pthread_mutex_unlock(&lock);
  return r;
}

static void push(struct cmd *c) {
  pthread_mutex_lock(&lock);
  if (queue_tail) queue_tail->next = c;
  else queue_head = c;
  queue_tail = c;
  pthread_mutex_unlock(&lock);
  uint64_t one = 1;
  if (write(wakefd, &one, sizeof one) < 0) {
  }
}

static int queue(int op, uint32_t handle, int gates) {
  struct cmd *c = malloc(sizeof *c);
  if (!c) return -ENOMEM;
  c->next = NULL;
  c->op = op;
  c->handle = handle;
  c->gates = gates;
  push(c);
  return 0;
}

static int make_pipe(struct dir *d) {
  int p[2];
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) return -errno;
  d->pr = p[0];
  d->pw = p[1];
  int got = fcntl(d->pw, F_GETPIPE_SZ);
  d->cap = got > 0 ? (uint32_t)got : 4096;
  return 0;
}

/*
 * Hands `client` and `upstream` (connected, non-blocking) to the relay
 * thread, which owns them from here on (also when this fails); `gated`: the
 * GATE_* directions that wait for bb_net_relay_open. Returns the tunnel's
 * handle (> 0) or -errno.
 */
BB_API int bb_net_relay(int client, int upstream, int gated, uint32_t idle_ms, uint32_t halfopen_ms) {
  struct tunnel *t = calloc(1, sizeof *t);
  struct cmd *add = malloc(sizeof *add);
  int r = -ENOMEM;
  if (!t || !add) goto fail;
  t->d[0] = (struct dir){.src = client, .dst = upstream, .pr = -1, .pw = -1};
  t->d[1] = (struct dir){.src = upstream, .dst = client, .pr = -1, .pw = -1};
  t->gated = gated & (GATE_UP | GATE_DOWN);
  t->idle_ms = idle_ms;
  t->halfopen_ms = halfopen_ms;
  if ((r = make_pipe(&t->d[0])) < 0 || (r = make_pipe(&t->d[1])) < 0) goto fail;
  int one = 1;
  setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  pthread_mutex_lock(&lock);
  if (epfd < 0 || (nfree == 0 && next_slot == MAX_TUNNELS)) {
    pthread_mutex_unlock(&lock);
    r = epfd < 0 ? -ENOTCONN : -EMFILE;
    goto fail;
  }
  uint32_t slot = nfree ? free_slots[--nfree] : next_slot;
  if (slot == next_slot) __atomic_store_n(&next_slot, next_slot + 1, __ATOMIC_RELEASE);
  /* Handles are positive ints: a 15-bit generation above a 16-bit slot,
   * and never 0 (slot 0 starts at generation 1). */
  if (slot == 0 && gens[0] == 0) gens[0] = 1;
  t->handle = ((uint32_t)gens[slot] << 16) | slot;
  __atomic_store_n(&slots[slot], t, __ATOMIC_RELEASE);
  __atomic_add_fetch(&live, 1, __ATOMIC_RELAXED);
  pthread_mutex_unlock(&lock);
  uint32_t handle = t->handle;
  *add = (struct cmd){.op = CMD_ADD, .handle = handle};
  push(add);
  return (int)handle;
fail:
  if (t) {
    close_dir_pipe(&t->d[0]);
    close_dir_pipe(&t->d[1]);
    free(t);
  }
  free(add);
  close(client);
  close(upstream);
  return r;
}

/* Lets the gated directions in `gates` (GATE_*) move. */
BB_API int bb_net_relay_open(uint32_t handle, int gates) { return queue(CMD_OPEN, handle, gates); }

/* Ends a tunnel now (reported as aborted). */
BB_API int bb_net_relay_abort(uint32_t handle) { return queue(CMD_ABORT, handle, 0); }
