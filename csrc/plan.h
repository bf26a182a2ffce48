/*
 * The spawn request: ONE flat buffer that TypeScript serialises before the
 * clone (src/sandbox/request.ts writes exactly this layout). The child only
 * reads it. All integers are little-endian host order; every `*_off` field is
 * a byte offset from the start of the buffer; strings are NUL-terminated.
 *
 * Keep this file and src/sandbox/request.ts in step: BB_REQ_VERSION changes
 * whenever the layout does, and the shim refuses a request of another version.
 */
#ifndef BUNBOX_PLAN_H
#define BUNBOX_PLAN_H

#include <stdint.h>

#define BB_REQ_MAGIC 0x78626e62u /* "bnbx" */
#define BB_REQ_VERSION 1u

/* bb_req.flags */
#define BB_F_NOTIFY 0x1u        /* install the filter with a user-notification listener */
#define BB_F_CALLER_ROOT 0x2u   /* caller has euid 0: map to an unprivileged kernel id */
#define BB_F_NO_SECCOMP 0x4u    /* no filter at exec ("sandbox me here": the client installs it) */
#define BB_F_LOOPBACK 0x8u      /* bring up lo in the new network namespace */

struct bb_req {
  uint32_t magic;
  uint32_t version;
  uint32_t size;        /* total bytes of the request */
  uint32_t flags;       /* BB_F_* */
  uint32_t clone_flags; /* CLONE_NEW* namespaces to create */
  uint32_t uid_inside, gid_inside;
  uint32_t uid_outside, gid_outside; /* kernel ids the inside ids map to */
  uint32_t argv_off, argc;           /* u32[argc] of string offsets */
  uint32_t envp_off, envc;           /* u32[envc] of string offsets */
  uint32_t file_off;                 /* program: a path, or a name looked up in search_path */
  uint32_t search_path_off;          /* PATH used for the lookup, inside the sandbox */
  uint32_t cwd_off;
  uint32_t hostname_off; /* 0: leave the hostname alone */
  uint32_t mounts_off, nmounts;
  uint32_t rlimits_off, nrlimits;
  uint32_t fds_off, nfds;
  uint32_t bpf_off, bpf_len; /* struct sock_filter[bpf_len]; bpf_len 0 with BB_F_NO_SECCOMP */
  uint32_t exec_magic_lo, exec_magic_hi; /* 6th argument of the first execveat */
  uint32_t setup_timeout_ms;             /* the whole of setup, clone to execve */
  uint32_t root_mode;                    /* mode of the sandbox's / (tmpfs) */
};

/* Mount operations, applied in order by csrc/mounts.c. */
enum bb_mount_kind {
  BB_M_BIND = 1,    /* src (host path) onto dst; file or directory */
  BB_M_TMPFS = 2,   /* fresh tmpfs at dst, `size` bytes (0: kernel default), `mode` */
  BB_M_PROC = 3,    /* fresh procfs of the sandbox's pid namespace */
  BB_M_SYMLINK = 4, /* dst -> src (src is the link text) */
  BB_M_DIR = 5,     /* directory dst with `mode` */
  BB_M_REMOUNT_RO = 6, /* make dst (already mounted) read-only, recursively */
};

#define BB_MF_RW 0x1u       /* writable (default read-only) */
#define BB_MF_DEV 0x2u      /* device nodes usable (only /dev binds) */
#define BB_MF_NOEXEC 0x4u   /* noexec */
#define BB_MF_OPTIONAL 0x8u /* skip silently when the source is missing */

struct bb_mount {
  uint32_t kind;
  uint32_t flags;
  uint32_t src_off; /* 0 when unused */
  uint32_t dst_off;
  uint32_t mode;
  uint32_t pad;
  uint64_t size;
};

struct bb_rlimit {
  uint32_t resource;
  uint32_t pad;
  uint64_t cur, max;
};

struct bb_fdmap {
  int32_t src; /* fd in the bunbox process */
  int32_t dst; /* fd number in the sandboxee */
};

/* Setup stages; src/native/stages.ts names them for messages. */
enum bb_stage {
  BB_ST_OK = 0,
  BB_ST_REQUEST,
  BB_ST_RESOURCES,
  BB_ST_CLONE,
  BB_ST_USERNS,
  BB_ST_MOUNT_NS,
  BB_ST_ROOT,
  BB_ST_MOUNT,
  BB_ST_PIVOT,
  BB_ST_HOSTNAME,
  BB_ST_CWD,
  BB_ST_CREDENTIALS,
  BB_ST_CAPABILITIES,
  BB_ST_NO_NEW_PRIVS,
  BB_ST_DEATH_SIGNAL,
  BB_ST_SANDBOXEE,
  BB_ST_SESSION,
  BB_ST_RLIMITS,
  BB_ST_FDS,
  BB_ST_SECCOMP,
  BB_ST_NOTIFY,
  BB_ST_LOOKUP,
  BB_ST_EXEC,
  BB_ST_INIT,
  BB_ST_TIMEOUT,
  BB_ST_NETWORK,
};

/* What bb_spawn hands back to TypeScript (src/native/shim.ts reads it). */
struct bb_spawn_out {
  int32_t pidfd;    /* the sandbox's init (pid 1 inside) */
  int32_t pid;      /* its pid as bunbox sees it */
  int32_t listener; /* seccomp user-notification fd, or -1 */
  int32_t report;   /* read end of init's report pipe */
  int32_t stage;    /* enum bb_stage on failure */
  int32_t err;      /* errno on failure */
  int32_t sandboxee_pid;   /* pid of the sandboxee as bunbox sees it */
  int32_t sandboxee_pidfd; /* and a pidfd for it, only with BB_F_NO_SECCOMP (sandbox-me-here takes its listener through it); else -1 */
  char detail[512]; /* the path or value the failed stage was working on */
  /* µs from the clone to each phase's end (csrc/shared.h enum bb_mark, from
   * MK_GATE to MK_DONE); 0 where not reached. For `bunbox run -v`. */
  uint32_t phase_us[8];
};

/* csrc/spawn.c: one spawn on this thread; bb_spawn_env first, on a thread
 * where getenv is safe. */
int bb_spawn_here(const uint8_t *buf, uint32_t len, struct bb_spawn_out *out);
void bb_spawn_env(void);

/* What init (csrc/init.c) writes on fd 3 when the sandboxee ends. */
struct bb_report {
  uint32_t magic; /* BB_REPORT_MAGIC */
  int32_t wstatus;
  uint64_t utime_us, stime_us, maxrss_kb;
};
#define BB_REPORT_MAGIC 0x74727062u /* "bprt" */

#endif
