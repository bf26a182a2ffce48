/*
 * redact: a filter that copies stdin to stdout with secret words blanked
 * out, sandboxed after its start-up (Sandbox2's "sandbox me here"; see
 * README.md and main.ts).
 *
 *   redact CONFIG [--reopen]
 *
 * Start-up runs with no seccomp filter: the dynamic loader opens libraries,
 * the program opens and reads CONFIG (one word per line, '#' comments) and
 * builds its table. Then bunbox_sandbox_me_here() asks bunbox for the policy
 * and installs it; from there on the program handles untrusted input with
 * read, write, memory and exit only. Opening the config was fine before; with
 * --reopen the program opens it again after the call (as a program that
 * reloads its configuration lazily would), and that open() is a VIOLATION.
 *
 * I/O after the call is plain read()/write(), not stdio: glibc's first use
 * of a stdio stream may fstat() it, and the point is to know exactly which
 * system calls the sandboxed part makes.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bunbox_client.h"

#define MAX_WORDS 256
#define MAX_WORD 64

static char words[MAX_WORDS][MAX_WORD + 1];
static size_t nwords;

/* Start-up, unsandboxed: read the word list. */
static int load_config(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[256];
  while (fgets(line, sizeof line, f) && nwords < MAX_WORDS) {
    size_t n = strcspn(line, " \t\r\n#");
    if (n == 0 || n > MAX_WORD) continue;
    for (size_t i = 0; i < n; i++) words[nwords][i] = (char)tolower((unsigned char)line[i]);
    words[nwords][n] = 0;
    nwords++;
  }
  fclose(f);
  return 0;
}

static int is_word_char(int c) { return isalnum(c) || c == '_'; }

/* Blanks (with '*') every whole-word, case-insensitive match in line[0..n). */
static void redact_line(char *line, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (!is_word_char((unsigned char)line[i])) {
      i++;
      continue;
    }
    size_t start = i;
    while (i < n && is_word_char((unsigned char)line[i])) i++;
    size_t len = i - start;
    for (size_t w = 0; w < nwords; w++) {
      if (strlen(words[w]) == len && strncasecmp(words[w], line + start, len) == 0) {
        memset(line + start, '*', len);
        break;
      }
    }
  }
}

static int write_all(const char *p, size_t n) {
  while (n > 0) {
    ssize_t r = write(1, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* The sandboxed part: stdin to stdout, a line at a time (lines grow as needed). */
static int filter(void) {
  size_t cap = 4096, have = 0;
  char *buf = malloc(cap);
  if (!buf) return 1;
  for (;;) {
    if (have == cap) {
      char *bigger = realloc(buf, cap * 2);
      if (!bigger) return 1;
      buf = bigger;
      cap *= 2;
    }
    ssize_t r = read(0, buf + have, cap - have);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return 1;
    have += (size_t)r;
    /* Every complete line goes out; the rest waits for more input (or EOF). */
    size_t done = 0;
    for (char *nl; (nl = memchr(buf + done, '\n', have - done)) != NULL; done = (size_t)(nl - buf) + 1) {
      redact_line(buf + done, (size_t)(nl - buf) - done);
      if (write_all(buf + done, (size_t)(nl - buf) + 1 - done) < 0) return 1;
    }
    memmove(buf, buf + done, have - done);
    have -= done;
    if (r == 0) {
      redact_line(buf, have);
      return write_all(buf, have) < 0 ? 1 : 0;
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 2 || (argc == 3 && strcmp(argv[2], "--reopen") != 0) || argc > 3) {
    fprintf(stderr, "usage: redact CONFIG [--reopen]\n");
    return 2;
  }
  const char *config = argv[1];
  if (load_config(config) < 0) {
    fprintf(stderr, "redact: %s: %s\n", config, strerror(errno));
    return 4;
  }
  struct bunbox_comms *c = bunbox_comms_open(BUNBOX_COMMS_FD);
  if (!c) {
    fprintf(stderr, "redact: no comms channel at fd %d (run me through main.ts): %s\n", BUNBOX_COMMS_FD, strerror(errno));
    return 5;
  }
  if (bunbox_sandbox_me_here(c) != BUNBOX_OK) {
    fprintf(stderr, "redact: sandbox me here: %s\n", bunbox_comms_error(c));
    return 6;
  }
  /* Sandboxed from here on. */
  if (argc == 3) {
    int fd = open(config, O_RDONLY); /* never returns: the policy has no open() */
    if (fd >= 0) close(fd);
  }
  return filter();
}
