/*
 * The sandbox's init program (csrc/init.c), embedded into the shim by the
 * build and kept in one sealed, read-only memfd that every spawn execs.
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

/* ---- the init program, embedded by the build (scripts/build-shim.ts) ---- */

extern const unsigned char bb_init_elf[], bb_init_elf_end[];
__asm__(".section .rodata\n"
        ".balign 16\n"
        ".global bb_init_elf\n"
        "bb_init_elf:\n"
        ".incbin \"" BB_INIT_PATH "\"\n"
        ".global bb_init_elf_end\n"
        "bb_init_elf_end:\n"
        ".previous\n");

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_fd = -1;
static int init_err = 0;

/*
 * A sealed memfd holding init, reopened read-only: execveat refuses a file
 * that is open for writing (ETXTBSY), and the seals stop anyone who gets the
 * fd from changing what every later sandbox runs as pid 1.
 */
static void make_init_fd(void) {
  int fd = memfd_create("bunbox-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | 0x0010u /* MFD_EXEC */);
  if (fd < 0 && errno == EINVAL) fd = memfd_create("bunbox-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    init_err = errno;
    return;
  }
  size_t len = (size_t)(bb_init_elf_end - bb_init_elf), off = 0;
  while (off < len) {
    ssize_t w = write(fd, bb_init_elf + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      init_err = errno ? errno : EIO;
      close(fd);
      return;
    }
    off += (size_t)w;
  }
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
    init_err = errno;
    close(fd);
    return;
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  int ro = open(path, O_RDONLY | O_CLOEXEC);
  if (ro < 0) init_err = errno;
  close(fd);
  init_fd = ro;
}

/* The memfd (or -1, with *err set), created on first use by any thread. */
int bb_init_fd(int *err) {
  pthread_once(&init_once, make_init_fd);
  *err = init_err;
  return init_fd;
}
