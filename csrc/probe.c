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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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
