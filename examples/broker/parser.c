/*
 * parser: the untrusted half of the broker example (see README.md). It parses
 * a "key = value" configuration that came from somewhere it should not be
 * trusted, and it runs sandboxed with no files, no network and only the
 * system calls of its comms channel, memory and exit. Everything it finds
 * goes back to the broker (main.ts), which checks every record itself and is
 * the only one that can write the result anywhere.
 *
 * Protocol over comms (fd 1023, csrc/client/bunbox_client.h):
 *
 *   broker -> parser   FD      a sealed memfd holding the input (a SharedBuffer)
 *                      UINT64  how many bytes of it are input
 *   parser -> broker   JSON    {"line":N,"key":K,"value":V}     one per record
 *                      JSON    {"done":true,"lines":N,"skipped":M}
 *   broker -> parser   BOOL    true: the broker took it all, the parser may end
 *
 * The parser ends only when the broker says so: a broker that refuses the
 * output kills it instead, so the run's Result always says which happened.
 *
 * The format: one "key = value" per line, blanks around key and value
 * trimmed; blank lines and lines starting with '#' are ignored; a line without
 * '=', with an empty key, or longer than MAX_LINE is malformed and skipped
 * (counted). The parser is deliberately lenient about what a key looks like:
 * deciding what is acceptable is the broker's job.
 *
 * "!include PATH" parses another file in place, as many config formats allow.
 * That is where such a parser turns hostile input into reading files of the
 * attacker's choosing; here its open() is a policy VIOLATION and the sandbox
 * is killed. (A broker that wanted includes would resolve them itself.)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bunbox_client.h"

#define MAX_LINE 4096
#define MAX_INCLUDE_DEPTH 4

struct parse {
  struct bunbox_comms *comms;
  unsigned long lines, skipped;
  /* One JSON message, reused: the longest is a MAX_LINE line with every byte escaped. */
  char json[64 + 6 * MAX_LINE];
};

static void die(struct parse *p, const char *what) {
  fprintf(stderr, "parser: %s: %s\n", what, p->comms ? bunbox_comms_error(p->comms) : strerror(errno));
  exit(3);
}

/*
 * Appends s[0..n) as a JSON string. Everything outside printable ASCII is
 * escaped as \u00XX (bytes, read as Latin-1), so the message is valid JSON
 * whatever the input holds; the broker decides whether such a value is fine.
 */
static size_t put_json_string(char *out, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  out[o++] = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\') {
      out[o++] = '\\';
      out[o++] = (char)ch;
    } else if (ch < 0x20 || ch > 0x7e) {
      memcpy(out + o, "\\u00", 4);
      out[o + 4] = hex[ch >> 4];
      out[o + 5] = hex[ch & 15];
      o += 6;
    } else {
      out[o++] = (char)ch;
    }
  }
  out[o++] = '"';
  return o;
}

static const char *trim(const char *s, const char *end, const char **out_end) {
  while (s < end && (*s == ' ' || *s == '\t')) s++;
  while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) end--;
  *out_end = end;
  return s;
}

static void send_record(struct parse *p, const char *key, size_t klen, const char *value, size_t vlen) {
  size_t o = (size_t)snprintf(p->json, sizeof p->json, "{\"line\":%lu,\"key\":", p->lines);
  o += put_json_string(p->json + o, key, klen);
  memcpy(p->json + o, ",\"value\":", 9);
  o += 9;
  o += put_json_string(p->json + o, value, vlen);
  p->json[o++] = '}';
  p->json[o] = 0;
  if (bunbox_comms_send_json(p->comms, p->json) != BUNBOX_OK) die(p, "send a record");
}

static void parse_text(struct parse *p, const char *text, size_t len, int depth);

/* "!include PATH": read the whole file and parse it here. */
static void include_file(struct parse *p, const char *path, size_t n, int depth) {
  char name[MAX_LINE + 1];
  memcpy(name, path, n);
  name[n] = 0;
  if (depth >= MAX_INCLUDE_DEPTH) {
    p->skipped++;
    return;
  }
  /* In the sandbox this open() never returns: the policy kills us here. */
  int fd = open(name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    p->skipped++;
    return;
  }
  size_t cap = 65536, have = 0;
  char *buf = malloc(cap);
  ssize_t r;
  while (buf && (r = read(fd, buf + have, cap - have)) > 0) {
    have += (size_t)r;
    if (have == cap) buf = realloc(buf, cap *= 2);
  }
  close(fd);
  if (!buf) die(p, "out of memory");
  parse_text(p, buf, have, depth + 1);
  free(buf);
}

static void parse_line(struct parse *p, const char *s, const char *end, int depth) {
  const char *e;
  s = trim(s, end, &e);
  if (s == e || *s == '#') return;
  if (e - s > MAX_LINE) {
    p->skipped++;
    return;
  }
  if ((size_t)(e - s) > 9 && strncmp(s, "!include ", 9) == 0) {
    const char *pe;
    const char *path = trim(s + 9, e, &pe);
    include_file(p, path, (size_t)(pe - path), depth);
    return;
  }
  const char *eq = memchr(s, '=', (size_t)(e - s));
  const char *kend, *vend;
  const char *key = eq ? trim(s, eq, &kend) : NULL;
  if (!eq || key == kend) {
    p->skipped++;
    return;
  }
  const char *value = trim(eq + 1, e, &vend);
  send_record(p, key, (size_t)(kend - key), value, (size_t)(vend - value));
}

static void parse_text(struct parse *p, const char *text, size_t len, int depth) {
  const char *s = text, *end = text + len;
  while (s < end) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    const char *line_end = nl ? nl : end;
    if (depth == 0) p->lines++;
    parse_line(p, s, line_end, depth);
    s = nl ? nl + 1 : end;
  }
}

int main(void) {
  static struct parse p;
  p.comms = bunbox_comms_open(BUNBOX_COMMS_FD);
  if (!p.comms) die(&p, "no comms channel at fd 1023 (run me through main.ts)");
  int fd;
  uint64_t len;
  struct bunbox_buffer in;
  if (bunbox_comms_recv_fd(p.comms, &fd) != BUNBOX_OK) die(&p, "receive the input buffer");
  int r = bunbox_buffer_from_fd(fd, &in);
  if (r < 0) {
    errno = -r;
    p.comms = NULL;
    die(&p, "map the input buffer");
  }
  if (bunbox_comms_recv_uint64(p.comms, &len) != BUNBOX_OK) die(&p, "receive the input length");
  if (len > in.size) {
    fprintf(stderr, "parser: the input length %llu is past the buffer's %zu bytes\n", (unsigned long long)len, in.size);
    return 3;
  }
  parse_text(&p, in.data, (size_t)len, 0);
  snprintf(p.json, sizeof p.json, "{\"done\":true,\"lines\":%lu,\"skipped\":%lu}", p.lines, p.skipped);
  if (bunbox_comms_send_json(p.comms, p.json) != BUNBOX_OK) die(&p, "send the summary");
  bool taken;
  if (bunbox_comms_recv_bool(p.comms, &taken) != BUNBOX_OK || !taken) die(&p, "wait for the broker");
  bunbox_buffer_close(&in);
  bunbox_comms_close(p.comms);
  return 0;
}
