/*
 * libFuzzer harness for the C comms client's receive side: whatever bytes a
 * hostile peer writes, every recv call returns an error or a value, never
 * crashes, overreads or hangs. The input's first byte picks the sequence of
 * receive calls; the rest is what the peer wrote before closing its end.
 * Built and run by scripts/fuzz.ts (clang with libFuzzer, ASan and UBSan).
 */
#include "../../csrc/client/bunbox_client.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t op = data[0];
  data++, size--;
  if (size > 60000) size = 60000; /* fits a socket buffer: written whole before reading */
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) abort();
  for (size_t off = 0; off < size;) {
    ssize_t n = write(sp[1], data + off, size - off);
    if (n <= 0) abort();
    off += (size_t)n;
  }
  close(sp[1]);
  struct bunbox_comms *c = bunbox_comms_open(sp[0]);
  if (!c) abort();
  bunbox_comms_set_timeout(c, 20);
  bunbox_comms_set_max_message_size(c, 1u << 16);
  for (int i = 0; i < 16; i++) {
    int r;
    void *p = NULL;
    char *s = NULL;
    size_t len = 0, n = 0;
    int fds[BUNBOX_COMMS_MAX_FDS];
    uint32_t tag;
    bool b;
    int64_t i64;
    uint8_t u8;
    switch ((op >> (i % 4 * 2)) % 8) {
      case 0: r = bunbox_comms_recv_bool(c, &b); break;
      case 1: r = bunbox_comms_recv_int64(c, &i64); break;
      case 2: r = bunbox_comms_recv_string(c, &s, &len); break;
      case 3: r = bunbox_comms_recv_bytes(c, &p, &len); break;
      case 4: r = bunbox_comms_recv_json(c, &s, &len); break;
      case 5:
        r = bunbox_comms_recv_fds(c, fds, BUNBOX_COMMS_MAX_FDS, &n);
        for (size_t k = 0; r == BUNBOX_OK && k < n; k++) close(fds[k]);
        break;
      case 6: r = bunbox_comms_recv_tagged(c, &tag, &p, &len); break;
      default: r = bunbox_comms_recv_uint8(c, &u8); break;
    }
    if (s && s[len] != 0) abort(); /* strings come NUL-terminated after len bytes */
    free(p);
    free(s);
    if (r != BUNBOX_OK) {
      if (!bunbox_comms_error(c) || !*bunbox_comms_error(c)) abort(); /* every error says why */
      break;
    }
  }
  bunbox_comms_close(c);
  return 0;
}
