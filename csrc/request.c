/*
 * Checks a spawn request (csrc/plan.h) before anything runs on it: every
 * offset and count within the buffer, every string terminated. A malformed
 * request is a bug in bunbox; it must end as an error, never as a child
 * reading past the buffer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shared.h"

/* ---- request checks: a malformed request is a bug in bunbox, never a crash ---- */

static int str_ok(const uint8_t *buf, uint32_t len, uint32_t off, int optional) {
  if (off == 0) return optional;
  if (off >= len) return 0;
  return memchr(buf + off, 0, len - off) != NULL;
}

static int array_ok(uint32_t len, uint32_t off, uint32_t n, size_t elem) {
  if (n == 0) return 1;
  if (off == 0 || off > len) return 0;
  return (uint64_t)n * elem <= (uint64_t)(len - off) && off % 4 == 0;
}

const char *bb_check_request(const uint8_t *buf, uint32_t len) {
  const struct bb_req *rq = (const void *)buf;
  if (len < sizeof *rq || rq->magic != BB_REQ_MAGIC) return "bad magic";
  if (rq->version != BB_REQ_VERSION) return "request version differs from the shim's";
  if (rq->size != len) return "size field differs from the buffer length";
  if (!array_ok(len, rq->argv_off, rq->argc, 4) || rq->argc == 0) return "argv";
  if (!array_ok(len, rq->envp_off, rq->envc, 4)) return "envp";
  const uint32_t *a = (const void *)(buf + rq->argv_off);
  for (uint32_t i = 0; i < rq->argc; i++)
    if (!str_ok(buf, len, a[i], 0)) return "argv string";
  const uint32_t *e = (const void *)(buf + rq->envp_off);
  for (uint32_t i = 0; i < rq->envc; i++)
    if (!str_ok(buf, len, e[i], 0)) return "envp string";
  if (!str_ok(buf, len, rq->file_off, 0)) return "file";
  if (!str_ok(buf, len, rq->search_path_off, 1)) return "search path";
  if (!str_ok(buf, len, rq->cwd_off, 0)) return "cwd";
  if (!str_ok(buf, len, rq->hostname_off, 1)) return "hostname";
  if (!array_ok(len, rq->mounts_off, rq->nmounts, sizeof(struct bb_mount)) || rq->nmounts > 1024)
    return "mounts";
  const struct bb_mount *m = (const void *)(buf + rq->mounts_off);
  for (uint32_t i = 0; i < rq->nmounts; i++)
    if (!str_ok(buf, len, m[i].src_off, 1) || !str_ok(buf, len, m[i].dst_off, 0)) return "mount path";
  if (!array_ok(len, rq->rlimits_off, rq->nrlimits, sizeof(struct bb_rlimit))) return "rlimits";
  if (!array_ok(len, rq->fds_off, rq->nfds, sizeof(struct bb_fdmap)) || rq->nfds > 256) return "fds";
  if (!array_ok(len, rq->bpf_off, rq->bpf_len, sizeof(struct sock_filter))) return "bpf";
  if (rq->bpf_len > BPF_MAXINSNS) return "bpf longer than the kernel's 4096 instructions";
  if (rq->bpf_len == 0 && !(rq->flags & BB_F_NO_SECCOMP)) return "no seccomp program";
  return NULL;
}
