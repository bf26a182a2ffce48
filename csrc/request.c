/*
 * Checks a spawn request (csrc/plan.h) before anything runs on it: every
 * offset and count within the buffer, every string terminated, every number
 * the children index or add to within the bounds they assume. TypeScript
 * already refuses bad input with a usage error; this is the second line, so
 * that a bug there ends as a "request" setup error naming the field, never as
 * a child reading or writing past an array in Bun's memory.
 */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "shared.h"

_Static_assert(BB_CLONE_NEWNS == CLONE_NEWNS && BB_CLONE_NEWCGROUP == CLONE_NEWCGROUP &&
                   BB_CLONE_NEWUTS == CLONE_NEWUTS && BB_CLONE_NEWIPC == CLONE_NEWIPC &&
                   BB_CLONE_NEWUSER == CLONE_NEWUSER && BB_CLONE_NEWPID == CLONE_NEWPID &&
                   BB_CLONE_NEWNET == CLONE_NEWNET,
               "csrc/plan.h's BB_CLONE_* differ from the kernel's CLONE_NEW*");

#define KNOWN_FLAGS (BB_F_NOTIFY | BB_F_CALLER_ROOT | BB_F_NO_SECCOMP | BB_F_LOOPBACK | BB_F_TTY | BB_F_NET_PROXY)
#define KNOWN_CLONE                                                                            \
  (BB_CLONE_NEWNS | BB_CLONE_NEWCGROUP | BB_CLONE_NEWUTS | BB_CLONE_NEWIPC | BB_CLONE_NEWUSER | \
   BB_CLONE_NEWPID | BB_CLONE_NEWNET)
#define KNOWN_MOUNT_FLAGS (BB_MF_RW | BB_MF_DEV | BB_MF_NOEXEC | BB_MF_OPTIONAL | BB_MF_IDMAP)
#define SYSCTL_DIR "/proc/sys/user/"

static int refuse(char *detail, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, cap, fmt, ap);
  va_end(ap);
  return -1;
}

/* A NUL-terminated string at off (0 only if optional). */
static int str_ok(const uint8_t *buf, uint32_t len, uint32_t off, int optional) {
  if (off == 0) return optional;
  if (off >= len) return 0;
  return memchr(buf + off, 0, len - off) != NULL;
}

/* n elements of `elem` bytes at off, aligned to `align`, inside the buffer. */
static int array_ok(uint32_t len, uint32_t off, uint32_t n, size_t elem, size_t align) {
  if (n == 0) return 1;
  if (off == 0 || off > len || off % align) return 0;
  return (uint64_t)n * elem <= (uint64_t)(len - off);
}

/*
 * 0, or -1 with the field and what is wrong with it in detail.
 *
 * CLONE_NEWPID is required because B (pid 2) runs on a stack in the spawn
 * arena, in Bun's memory, until it execs, and T unmaps the arena as soon as
 * it has reaped A (csrc/spawn.c), after a failure or a timeout too. That is
 * safe only because A is the init of B's pid namespace: when A dies the
 * kernel kills every task in the namespace, and A's exit does not complete
 * (so T's waitid does not return) until they are gone (zap_pid_ns_processes).
 * Without it, B would outlive A, running on unmapped memory in Bun's address
 * space. CLONE_NEWUSER is required because the children's privileges (mounts,
 * setresuid, capabilities) must be those of a fresh user namespace: without
 * one, as root, they would be the host's.
 */
int bb_check_request(const uint8_t *buf, uint32_t len, char *detail, size_t cap) {
  const struct bb_req *rq = (const void *)buf;
  if (len < sizeof *rq) return refuse(detail, cap, "size: %u bytes, shorter than the header", len);
  if (rq->magic != BB_REQ_MAGIC) return refuse(detail, cap, "magic: 0x%08x", rq->magic);
  if (rq->version != BB_ABI_VERSION)
    return refuse(detail, cap, "version: %u, the shim's is %u", rq->version, BB_ABI_VERSION);
  if (rq->size != len) return refuse(detail, cap, "size: %u, the buffer holds %u", rq->size, len);
  if (rq->flags & ~KNOWN_FLAGS) return refuse(detail, cap, "flags: unknown bits 0x%x", rq->flags & ~KNOWN_FLAGS);
  if (rq->clone_flags & ~KNOWN_CLONE)
    return refuse(detail, cap, "clone_flags: bits 0x%x are not namespaces", rq->clone_flags & ~KNOWN_CLONE);
  if ((rq->clone_flags & (BB_CLONE_NEWUSER | BB_CLONE_NEWPID)) != (BB_CLONE_NEWUSER | BB_CLONE_NEWPID))
    return refuse(detail, cap, "clone_flags: CLONE_NEWUSER and CLONE_NEWPID are required");

  if (rq->argc == 0 || !array_ok(len, rq->argv_off, rq->argc, 4, 4))
    return refuse(detail, cap, "argv_off/argc: %u strings at %u", rq->argc, rq->argv_off);
  if (!array_ok(len, rq->envp_off, rq->envc, 4, 4))
    return refuse(detail, cap, "envp_off/envc: %u strings at %u", rq->envc, rq->envp_off);
  const uint32_t *a = (const void *)(buf + rq->argv_off);
  for (uint32_t i = 0; i < rq->argc; i++)
    if (!str_ok(buf, len, a[i], 0)) return refuse(detail, cap, "argv[%u]: no string at %u", i, a[i]);
  const uint32_t *e = (const void *)(buf + rq->envp_off);
  for (uint32_t i = 0; i < rq->envc; i++)
    if (!str_ok(buf, len, e[i], 0)) return refuse(detail, cap, "envp[%u]: no string at %u", i, e[i]);
  if (!str_ok(buf, len, rq->file_off, 0)) return refuse(detail, cap, "file_off: no string at %u", rq->file_off);
  if (!str_ok(buf, len, rq->search_path_off, 1))
    return refuse(detail, cap, "search_path_off: no string at %u", rq->search_path_off);
  if (!str_ok(buf, len, rq->cwd_off, 0)) return refuse(detail, cap, "cwd_off: no string at %u", rq->cwd_off);
  if (!str_ok(buf, len, rq->hostname_off, 1))
    return refuse(detail, cap, "hostname_off: no string at %u", rq->hostname_off);

  /* A keeps one fd per mount in an array of BB_MOUNTS_MAX. */
  if (rq->nmounts > BB_MOUNTS_MAX) return refuse(detail, cap, "nmounts: %u, at most %u", rq->nmounts, BB_MOUNTS_MAX);
  if (rq->nmounts == 0) return refuse(detail, cap, "nmounts: 0, and the first mount is the root");
  if (!array_ok(len, rq->mounts_off, rq->nmounts, sizeof(struct bb_mount), 8))
    return refuse(detail, cap, "mounts_off: %u mounts at %u", rq->nmounts, rq->mounts_off);
  const struct bb_mount *m = (const void *)(buf + rq->mounts_off);
  uint32_t lowers = 0; /* BB_M_LOWER ops waiting for their overlay */
  int rooted = 0;
  for (uint32_t i = 0; i < rq->nmounts; i++) {
    uint32_t kind = m[i].kind;
    if (kind < BB_M_BIND || kind > BB_M_READONLY) return refuse(detail, cap, "mounts[%u].kind: %u", i, kind);
    if (m[i].flags & ~KNOWN_MOUNT_FLAGS) return refuse(detail, cap, "mounts[%u].flags: 0x%x", i, m[i].flags);
    if (kind == BB_M_FILE) {
      /* Bytes, not a string: they may hold NULs. */
      if (m[i].size > BB_FILE_MAX || (m[i].size && (m[i].src_off == 0 || m[i].src_off > len ||
                                                    m[i].size > (uint64_t)(len - m[i].src_off))))
        return refuse(detail, cap, "mounts[%u].src_off/size: %llu bytes at %u", i, (unsigned long long)m[i].size,
                      m[i].src_off);
    } else {
      int needs_src = kind == BB_M_BIND || kind == BB_M_SYMLINK || kind == BB_M_LOWER;
      if (!str_ok(buf, len, m[i].src_off, !needs_src))
        return refuse(detail, cap, "mounts[%u].src_off: no string at %u", i, m[i].src_off);
    }
    if (!str_ok(buf, len, m[i].dst_off, 0))
      return refuse(detail, cap, "mounts[%u].dst_off: no string at %u", i, m[i].dst_off);
    /* Absolute and normalised (src/sandbox/paths.ts): no "." or ".." component, no empty one, no trailing
     * "/". Resolved inside the root (csrc/resolve.c), a ".." would stay in it, but a plan never needs one. */
    const char *dst = (const char *)buf + m[i].dst_off;
    if (dst[0] != '/') return refuse(detail, cap, "mounts[%u].dst: not absolute", i);
    for (const char *p = dst; *p; p++) {
      if (p[0] != '/') continue;
      int dots = p[1] == '.' ? (p[2] == '.' ? 2 : 1) : 0;
      char end = p[1 + dots];
      if ((p[1] == '/' || (p[1] == 0 && p != dst)) || (dots && (end == '/' || end == 0)))
        return refuse(detail, cap, "mounts[%u].dst: not a normalised path", i);
    }
    if (m[i].mode > 07777) return refuse(detail, cap, "mounts[%u].mode: 0%o", i, m[i].mode);
    if (kind == BB_M_LOWER) {
      if (++lowers > BB_LOWERS_MAX) return refuse(detail, cap, "mounts[%u]: more than %u lower layers", i, BB_LOWERS_MAX);
      if ((m[i].flags & ~BB_MF_IDMAP) || ((m[i].flags & BB_MF_IDMAP) && !(rq->flags & BB_F_CALLER_ROOT)))
        return refuse(detail, cap, "mounts[%u].flags: 0x%x on a lower layer", i, m[i].flags);
      continue;
    }
    if (kind == BB_M_OVERLAY) {
      if (m[i].aux == 0 || m[i].aux != lowers)
        return refuse(detail, cap, "mounts[%u].aux: %u lower layers, %u before it", i, m[i].aux, lowers);
      if (!m[i].src_off && !m[i].size && !(m[i].flags & BB_MF_RW) && lowers < 2)
        return refuse(detail, cap, "mounts[%u]: a read-only overlay needs two lower layers", i);
    } else if (lowers) {
      return refuse(detail, cap, "mounts[%u]: %u lower layers not followed by their overlay", i, lowers);
    }
    lowers = 0;
    int is_root = dst[0] == '/' && dst[1] == 0;
    /* T makes the idmapped tree as root, mapping the source's owner to the sandbox's uid. */
    if ((m[i].flags & BB_MF_IDMAP) && (!(kind == BB_M_BIND || (kind == BB_M_OVERLAY && m[i].src_off)) || !(rq->flags & BB_F_CALLER_ROOT)))
      return refuse(detail, cap, "mounts[%u].flags: an idmapped mount is a host directory's (a bind, an overlay's upper) made as root", i);
    if (!rooted) {
      if (!is_root || (kind != BB_M_TMPFS && kind != BB_M_BIND && kind != BB_M_OVERLAY))
        return refuse(detail, cap, "mounts[%u]: the first mount must be the root (a tmpfs, bind or overlay on /)", i);
      rooted = 1;
    } else if (is_root) {
      return refuse(detail, cap, "mounts[%u].dst: / is the root's, mounted first", i);
    }
  }
  if (lowers) return refuse(detail, cap, "mounts: %u lower layers at the end, without their overlay", lowers);

  if (!array_ok(len, rq->rlimits_off, rq->nrlimits, sizeof(struct bb_rlimit), 8))
    return refuse(detail, cap, "rlimits_off: %u limits at %u", rq->nrlimits, rq->rlimits_off);
  const struct bb_rlimit *l = (const void *)(buf + rq->rlimits_off);
  for (uint32_t i = 0; i < rq->nrlimits; i++)
    if (l[i].resource >= RLIM_NLIMITS) return refuse(detail, cap, "rlimits[%u].resource: %u", i, l[i].resource);

  /* A and B copy the fds into arrays of BB_FDS_MAX (+ their own), and B
   * computes src + 1 and dst + 1 (csrc/child_b.c remap_fds). */
  if (rq->nfds > BB_FDS_MAX) return refuse(detail, cap, "nfds: %u, at most %u", rq->nfds, BB_FDS_MAX);
  if (!array_ok(len, rq->fds_off, rq->nfds, sizeof(struct bb_fdmap), 4))
    return refuse(detail, cap, "fds_off: %u fds at %u", rq->nfds, rq->fds_off);
  const struct bb_fdmap *f = (const void *)(buf + rq->fds_off);
  for (uint32_t i = 0; i < rq->nfds; i++) {
    if (f[i].src < 0 || f[i].src == INT32_MAX) return refuse(detail, cap, "fds[%u].src: %d", i, f[i].src);
    if (f[i].dst < 0 || f[i].dst > BB_FD_MAX)
      return refuse(detail, cap, "fds[%u].dst: %d, not in 0..%d", i, f[i].dst, BB_FD_MAX);
    /* B puts the pty's slave on those std fds before it maps the others
     * (csrc/child_b.c): neither end may be one of them. */
    if (f[i].dst < 3 && (rq->flags & (BB_F_TTY_STDIN << f[i].dst)))
      return refuse(detail, cap, "fds[%u].dst: %d is the terminal's (BB_F_TTY_*)", i, f[i].dst);
    if (f[i].src < 3 && (rq->flags & (BB_F_TTY_STDIN << f[i].src)))
      return refuse(detail, cap, "fds[%u].src: %d is the terminal's (BB_F_TTY_*)", i, f[i].src);
  }

  if (!array_ok(len, rq->bpf_off, rq->bpf_len, sizeof(struct sock_filter), 4))
    return refuse(detail, cap, "bpf_off: %u instructions at %u", rq->bpf_len, rq->bpf_off);
  if (rq->bpf_len > BPF_MAXINSNS)
    return refuse(detail, cap, "bpf_len: %u, the kernel takes at most %u", rq->bpf_len, BPF_MAXINSNS);
  if (rq->bpf_len == 0 && !(rq->flags & BB_F_NO_SECCOMP))
    return refuse(detail, cap, "bpf_len: 0, and a filter is to be installed at exec");
  /* A writes to the v1 fds; T clones into the one v2 directory. */
  if (rq->ncgroups > BB_CGROUPS_MAX) return refuse(detail, cap, "ncgroups: %u, at most %u", rq->ncgroups, BB_CGROUPS_MAX);
  if (!array_ok(len, rq->cgroups_off, rq->ncgroups, sizeof(struct bb_cgroup), 4))
    return refuse(detail, cap, "cgroups_off: %u cgroups at %u", rq->ncgroups, rq->cgroups_off);
  const struct bb_cgroup *cg = (const void *)(buf + rq->cgroups_off);
  int v2 = 0;
  for (uint32_t i = 0; i < rq->ncgroups; i++) {
    if (cg[i].kind != BB_CG_V1 && cg[i].kind != BB_CG_V2) return refuse(detail, cap, "cgroups[%u].kind: %u", i, cg[i].kind);
    if (cg[i].fd < 0) return refuse(detail, cap, "cgroups[%u].fd: %d", i, cg[i].fd);
    if (cg[i].kind == BB_CG_V2 && v2++) return refuse(detail, cap, "cgroups[%u]: one v2 cgroup at most", i);
  }

  /* A writes these as root of its user namespace: only that namespace's own limits. */
  if (rq->nsysctls > BB_SYSCTLS_MAX) return refuse(detail, cap, "nsysctls: %u, at most %u", rq->nsysctls, BB_SYSCTLS_MAX);
  if (!array_ok(len, rq->sysctls_off, rq->nsysctls, sizeof(struct bb_sysctl), 4))
    return refuse(detail, cap, "sysctls_off: %u sysctls at %u", rq->nsysctls, rq->sysctls_off);
  const struct bb_sysctl *sc = (const void *)(buf + rq->sysctls_off);
  for (uint32_t i = 0; i < rq->nsysctls; i++) {
    if (!str_ok(buf, len, sc[i].path_off, 0) || !str_ok(buf, len, sc[i].value_off, 0))
      return refuse(detail, cap, "sysctls[%u]: no strings at %u, %u", i, sc[i].path_off, sc[i].value_off);
    const char *path = (const char *)buf + sc[i].path_off;
    if (strncmp(path, SYSCTL_DIR, sizeof SYSCTL_DIR - 1) || strchr(path + sizeof SYSCTL_DIR - 1, '/'))
      return refuse(detail, cap, "sysctls[%u].path: not a file of " SYSCTL_DIR, i);
  }
  if (rq->setup_timeout_ms == 0) return refuse(detail, cap, "setup_timeout_ms: 0");
  /* The proxy's sockets are bound inside the sandbox's own network namespace,
   * on its lo, once up: never in the host's (there they would be the host's
   * ports, reachable by anything on it). */
  if (rq->flags & BB_F_NET_PROXY) {
    if (!(rq->clone_flags & BB_CLONE_NEWNET) || !(rq->flags & BB_F_LOOPBACK))
      return refuse(detail, cap, "flags: BB_F_NET_PROXY needs BB_CLONE_NEWNET and BB_F_LOOPBACK");
    if (rq->proxy_port == 0 || rq->proxy_port > 65535 || rq->proxy_port == 53)
      return refuse(detail, cap, "proxy_port: %u, not a port other than 53", rq->proxy_port);
  } else if (rq->proxy_port != 0) {
    return refuse(detail, cap, "proxy_port: %u without BB_F_NET_PROXY", rq->proxy_port);
  }
  return 0;
}
