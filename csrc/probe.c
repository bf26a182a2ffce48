/*
 * Host-side questions TypeScript asks the kernel directly (ordinary thread
 * context: glibc is fine here).
 *
 *   bb_open_in_root   a regular file of an image, for the /etc files bunbox
 *                     generates (src/sandbox/etc.ts): resolved with the image
 *                     as "/" (openat2 RESOLVE_IN_ROOT, Linux 5.6), so that an
 *                     image's etc/passwd -> /etc/shadow reads the image's own
 *                     shadow, never the host's
 *   bb_landlock_abi   the Landlock ABI version, or -errno (capabilities())
 *   bb_seccomp_action whether seccomp has an action (user notification)
 *   bb_probe_idmap    whether this process can make an idmapped mount
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sys.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif

/* An fd (read-only) of the regular file `path` inside the directory `root`, or -errno. */
BB_API int bb_open_in_root(const char *root, const char *path) {
  int dir = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return -errno;
  struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                         .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  int fd = (int)syscall(SYS_openat2, dir, path, &how, sizeof how);
  int err = errno;
  close(dir);
  if (fd < 0) return -err;
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return -EINVAL;
  }
  return fd;
}

BB_API int bb_landlock_abi(void) {
  long r = syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* LANDLOCK_CREATE_RULESET_VERSION */);
  return r < 0 ? -errno : (int)r;
}

BB_API int bb_seccomp_action(uint32_t action) {
  return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) < 0 ? -errno : 0;
}

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, text, strlen(text));
  int err = n < 0 ? -errno : 0;
  close(fd);
  return err;
}

/*
 * An idmap set on a detached clone of "/" (never attached): 0, or -errno.
 * The idmap is a user namespace, made by a forked child (a multithreaded
 * process cannot unshare one itself), whose maps this process writes; the
 * child only unshares, says so and waits: all async-signal-safe after fork.
 */
BB_API int bb_probe_idmap(void) {
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, "/", 1 /* OPEN_TREE_CLONE */ | O_CLOEXEC);
  if (tree < 0) return -errno;
  int up[2], down[2];
  if (pipe2(up, O_CLOEXEC) < 0) return close(tree), -errno;
  if (pipe2(down, O_CLOEXEC) < 0) return close(tree), close(up[0]), close(up[1]), -errno;
  pid_t pid = fork();
  if (pid == 0) {
    close(down[1]); /* else the wait below never sees EOF */
    close(up[0]);
    char c = unshare(CLONE_NEWUSER) == 0 ? 'u' : 'x';
    if (write(up[1], &c, 1) == 1) (void)read(down[0], &c, 1);
    _exit(0);
  }
  int r = pid < 0 ? -errno : 0;
  char c = 0, path[64];
  if (r == 0 && read(up[0], &c, 1) != 1) r = -ECHILD;
  if (r == 0 && c != 'u') r = -EPERM;
  int ns = -1;
  if (r == 0) {
    snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
    r = write_file(path, "0 65534 1\n");
  }
  if (r == 0) {
    snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
    r = write_file(path, "0 65534 1\n");
  }
  if (r == 0) {
    snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
    ns = open(path, O_RDONLY | O_CLOEXEC);
    if (ns < 0) r = -errno;
  }
  if (r == 0) {
    struct {
      uint64_t attr_set, attr_clr, propagation, userns_fd;
    } attr = {0x00100000 /* MOUNT_ATTR_IDMAP */, 0, 0, (uint64_t)ns};
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) r = -errno;
  }
  if (ns >= 0) close(ns);
  close(tree);
  close(up[0]);
  close(up[1]);
  close(down[1]); /* EOF: the child exits */
  close(down[0]);
  if (pid > 0) while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR) {}
  return r;
}
