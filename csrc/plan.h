/*
 * The ABI between TypeScript and the shim, defined once: the spawn request
 * TypeScript serialises (struct bb_req and its arrays), what a spawn hands
 * back (struct bb_spawn_out), what init reports (struct bb_report) and what
 * bb_wait fills (struct bb_wait_out).
 *
 * scripts/gen-abi.ts reads this file and writes src/native/abi.ts (every
 * constant, offset and size, the stage and phase names) and build/abi.c, the
 * shim's bb_abi_layout(): the same values as the compiler lays them out. At
 * load, TypeScript compares the two and refuses a shim built from another
 * plan.h by name (src/native/library.ts). Change BB_ABI_VERSION with the
 * layout; the request carries it, and the shim refuses a request of another
 * version too.
 *
 * The generator reads a narrow dialect: `#define BB_NAME <integer>`, enums
 * numbered implicitly or by integers, and structs of uint32_t, int32_t,
 * uint64_t and char fields (arrays sized by an integer or a BB_ define).
 * Enum constants become names for messages: BB_ST_PIVOT_ROOT is "pivot-root".
 *
 * The request: all integers are little-endian host order; every `*_off`
 * field is a byte offset from the start of the buffer; strings are
 * NUL-terminated. The child only reads it; csrc/request.c checks all of it
 * first.
 */
#ifndef BUNBOX_PLAN_H
#define BUNBOX_PLAN_H

#include <stdint.h>

#ifndef BB_ABI_VERSION /* a test builds a shim of another version (-D) */
#define BB_ABI_VERSION 7
#endif

#define BB_REQ_MAGIC 0x78626e62 /* "bnbx" */

/* bb_req.flags */
#define BB_F_NOTIFY 0x1      /* install the filter with a user-notification listener */
#define BB_F_CALLER_ROOT 0x2 /* caller has euid 0: map to an unprivileged kernel id (uid_outside), which
                              * also owns the new user namespace (csrc/contain.c) */
#define BB_F_NO_SECCOMP 0x4  /* no filter at exec ("sandbox me here": the client installs it) */
#define BB_F_LOOPBACK 0x8    /* bring up lo in the new network namespace */
/* A pseudo-terminal of the sandbox's own (csrc/child_a.c open_terminal): A
 * opens its master in the sandbox's devpts at /dev/pts, T hands it back
 * (bb_spawn_out.pty_master), B makes the slave its controlling terminal and
 * puts it on each std fd named here, in place of what bunbox had there. */
#define BB_F_TTY_STDIN 0x10
#define BB_F_TTY_STDOUT 0x20
#define BB_F_TTY_STDERR 0x40
/* --net proxy (docs/network.md): A, in the new network namespace with lo up,
 * binds the proxy's listener on 127.0.0.1:proxy_port and the DNS stub's UDP
 * and TCP sockets on 127.0.0.1:53; T takes all three (bb_spawn_out.net_*).
 * Needs BB_F_LOOPBACK and BB_CLONE_NEWNET. */
#define BB_F_NET_PROXY 0x100

/* bb_req.clone_flags: the kernel's CLONE_NEW* (csrc/request.c checks they
 * agree). NEWUSER and NEWPID are required: see bb_check_request. NEWCGROUP
 * is made by A, once it is in the sandbox's cgroup (csrc/child_a.c). */
#define BB_CLONE_NEWNS 0x00020000
#define BB_CLONE_NEWCGROUP 0x02000000
#define BB_CLONE_NEWUTS 0x04000000
#define BB_CLONE_NEWIPC 0x08000000
#define BB_CLONE_NEWUSER 0x10000000
#define BB_CLONE_NEWPID 0x20000000
#define BB_CLONE_NEWNET 0x40000000

/* Bounds the children's fixed arrays depend on (csrc/child_a.c, child_b.c). */
#define BB_MOUNTS_MAX 1024 /* bb_req.nmounts */
#define BB_FDS_MAX 256     /* bb_req.nfds */
#define BB_FD_MAX 65535    /* bb_fdmap.dst (the closing fallbacks reach this far) */
#define BB_CGROUPS_MAX 8   /* bb_req.ncgroups: one per cgroup hierarchy used */
#define BB_SYSCTLS_MAX 32  /* bb_req.nsysctls */

struct bb_req {
  uint32_t magic;   /* BB_REQ_MAGIC */
  uint32_t version; /* BB_ABI_VERSION */
  uint32_t size;    /* total bytes of the request */
  uint32_t flags;   /* BB_F_* */
  uint32_t clone_flags; /* BB_CLONE_*: namespaces to create */
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
  uint32_t setup_timeout_ms;             /* the whole of setup, clone to execve; never 0 */
  uint32_t tty_size;                     /* with BB_F_TTY_*: the pty's rows << 16 | columns; 0: unset */
  uint32_t proxy_port;                   /* with BB_F_NET_PROXY: the proxy's port inside (1..65535, not 53); else 0 */
  uint32_t cgroups_off, ncgroups;        /* struct bb_cgroup[ncgroups]: the sandbox's cgroups */
  uint32_t sysctls_off, nsysctls;        /* struct bb_sysctl[nsysctls]: A writes them in its user namespace */
};

/*
 * Mount operations, applied in order by csrc/mounts.c. The first one (after
 * the BB_M_LOWER ops of an overlay) is the sandbox's root: its dst is "/"
 * and its kind BB_M_TMPFS, BB_M_BIND (a host directory) or BB_M_OVERLAY; no
 * other op has dst "/". Every other dst is resolved inside that root
 * (symlinks in it stay in it; csrc/resolve.c).
 */
enum bb_mount_kind {
  BB_M_BIND = 1,     /* src (host path) onto dst; file or directory */
  BB_M_TMPFS = 2,    /* fresh tmpfs at dst, `size` bytes (0: kernel default), `mode` */
  BB_M_PROC = 3,     /* fresh procfs of the sandbox's pid namespace */
  BB_M_SYMLINK = 4,  /* dst -> src (src is the link text) */
  BB_M_DEVPTS = 5,   /* a private devpts instance at dst (newinstance, ptmxmode=0666) */
  BB_M_DIR = 6,      /* a directory at dst with `mode` (parents 0755), unless one is there */
  BB_M_FILE = 7,     /* a read-only file at dst holding the `size` bytes at src_off, `mode` */
  BB_M_LOWER = 8,    /* src: a host directory, a lower layer of the BB_M_OVERLAY after it */
  BB_M_OVERLAY = 9,  /* overlayfs at dst over the `aux` BB_M_LOWER ops just before it (the
                      * first is the bottom layer); upper: src (a host directory, which
                      * keeps the changes in src/upper, src/work its scratch) or, when
                      * src_off is 0, a tmpfs of `size` bytes, discarded */
  BB_M_MASK = 10,     /* dst (in the tree) hidden: an empty read-only tmpfs over a
                      * directory, an empty file over anything else; nothing if missing */
  BB_M_READONLY = 11, /* dst (in the tree) bound read-only onto itself; nothing if missing */
};

#define BB_MF_RW 0x1       /* writable (default read-only) */
#define BB_MF_DEV 0x2      /* device nodes usable (only /dev binds) */
#define BB_MF_NOEXEC 0x4   /* noexec */
#define BB_MF_OPTIONAL 0x8 /* skip silently when the source is missing */
#define BB_MF_IDMAP 0x10   /* bind through an idmapped mount made by T: the source's owner is the
                            * sandbox's kernel uid there (writable binds as root, csrc/idmap.c) */

#define BB_LOWERS_MAX 64        /* bb_mount.aux of an overlay */
#define BB_FILE_MAX 16777216 /* bb_mount.size of a BB_M_FILE (16 MiB) */

struct bb_mount {
  uint32_t kind;    /* enum bb_mount_kind */
  uint32_t flags;   /* BB_MF_* */
  uint32_t src_off; /* 0 when unused */
  uint32_t dst_off;
  uint32_t mode;
  uint32_t aux;     /* BB_M_OVERLAY: how many BB_M_LOWER ops precede it */
  uint64_t size;
};

struct bb_rlimit {
  uint32_t resource;
  uint32_t pad;
  uint64_t cur, max;
};

struct bb_fdmap {
  int32_t src; /* fd in the bunbox process */
  int32_t dst; /* fd number in the sandboxee, 0..BB_FD_MAX */
};

/*
 * The sandbox's cgroups, one per hierarchy, opened by TypeScript
 * (src/containment/). v2: fd is the cgroup's directory, where T's clone3
 * starts A (CLONE_INTO_CGROUP, csrc/contain.c). v1: fd is the cgroup's
 * `tasks` file (opened by bunbox: the kernel checks the opener), where A
 * moves itself first thing (csrc/child_a.c join_cgroups).
 */
enum bb_cgroup_kind {
  BB_CG_V1 = 1,
  BB_CG_V2 = 2,
};

struct bb_cgroup {
  uint32_t kind; /* enum bb_cgroup_kind */
  int32_t fd;
};

/* A sysctl of the sandbox's own user namespace (/proc/sys/user/...): path and value, strings. */
struct bb_sysctl {
  uint32_t path_off;
  uint32_t value_off;
};

/* Setup stages; their names are the words of messages (src/native/stages.ts). */
enum bb_stage {
  BB_ST_OK = 0,
  BB_ST_REQUEST,
  BB_ST_RESOURCES,
  BB_ST_CLONE,
  BB_ST_USER_NAMESPACE,
  BB_ST_MOUNT_NAMESPACE,
  BB_ST_ROOT,
  BB_ST_MOUNT,
  BB_ST_PIVOT_ROOT,
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
  BB_ST_TERMINAL,
  BB_ST_OVERLAY,
  BB_ST_CGROUP,
  BB_ST_IDMAP,
  BB_ST_SYSCTL,
};

/*
 * Points of a spawn, timed from BB_MK_CLONE (T's clone of A); each later one
 * ends a phase of the set-up, for `bunbox run -v`: A released by T (id maps
 * written), ids set, mount tree built, capabilities dropped, B started, B's
 * lookup done, A about to exec init, T saw both execs.
 */
enum bb_mark {
  BB_MK_CLONE = 0,
  BB_MK_RELEASED,
  BB_MK_IDS,
  BB_MK_MOUNTS,
  BB_MK_CAPS,
  BB_MK_SANDBOXEE,
  BB_MK_LOOKUP,
  BB_MK_INIT,
  BB_MK_EXEC,
};
#define BB_MARKS 9

#define BB_DETAIL_MAX 512

/* What a spawn hands back to TypeScript (src/native/spawn.ts decodes it). */
struct bb_spawn_out {
  int32_t pidfd;    /* the sandbox's init (pid 1 inside) */
  int32_t pid;      /* its pid as bunbox sees it */
  int32_t listener; /* seccomp user-notification fd, or -1 */
  int32_t report;   /* read end of init's report pipe */
  int32_t stage;    /* enum bb_stage on failure */
  int32_t err;      /* errno on failure */
  int32_t sandboxee_pid;   /* pid of the sandboxee as bunbox sees it */
  int32_t sandboxee_pidfd; /* and a pidfd for it, only with BB_F_NO_SECCOMP (sandbox me here takes its listener through it); else -1 */
  char detail[BB_DETAIL_MAX]; /* the path or value the failed stage was working on */
  uint32_t phase_us[BB_MARKS]; /* µs from BB_MK_CLONE to each mark; 0 where not reached */
  int32_t pty_master;          /* with BB_F_TTY_*: the master of the sandboxee's terminal; else -1 */
  /* With BB_F_NET_PROXY: the sockets A bound in the sandbox's network
   * namespace, now bunbox's only (close-on-exec in A and B); else -1. */
  int32_t net_proxy;   /* TCP, listening on 127.0.0.1:proxy_port */
  int32_t net_dns_udp; /* UDP, bound to 127.0.0.1:53 */
  int32_t net_dns_tcp; /* TCP, listening on 127.0.0.1:53 */
};

/* What init (csrc/init.c) writes on fd 3 when the sandboxee ends. */
#define BB_REPORT_MAGIC 0x74727062 /* "bprt" */
struct bb_report {
  uint32_t magic; /* BB_REPORT_MAGIC */
  int32_t wstatus;
  uint64_t utime_us, stime_us, maxrss_kb;
};

/* bb_wait (csrc/monitor.c): a non-blocking reap of init through its pidfd. */
struct bb_wait_out {
  int32_t reaped; /* 0: still running */
  int32_t code;   /* si_code: CLD_EXITED, CLD_KILLED, CLD_DUMPED */
  int32_t status; /* exit status or signal number */
  int32_t pad;
  uint64_t utime_us, stime_us, maxrss_kb; /* init and everything it reaped */
};

#endif
