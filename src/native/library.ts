/**
 * Loads the native shim (csrc/, built by scripts/build-shim.ts). The only
 * module besides src/native/*.ts that knows the shim exists.
 *
 * The import with `type: "file"` makes `bun build --compile` embed the library
 * into the executable. From source (or bunx) it resolves to
 * build/libbunbox.so beside the source tree. BUNBOX_SHIM overrides both, for
 * packagers.
 *
 * Why not let Bun extract the embedded copy: it caches it at a predictable
 * path, /tmp/.bun-UID-HASH.so, and reuses it on the next start: a root
 * bunbox would dlopen whatever sits there. Instead the bytes go to a file
 * created O_EXCL in a fresh 0700 directory, dlopen reads it through the fd
 * we hold (/proc/self/fd/N, the very inode we wrote), and the file is removed.
 */
import { dlopen, FFIType } from "bun:ffi";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmdirSync, statSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import embedded from "../../build/libbunbox.so" with { type: "file" };
import { BunboxError } from "../errors.ts";

const { i32, u32, u64, i64, ptr, function: fn } = FFIType;

const symbols = {
  bb_spawn: { args: [ptr, u32, ptr], returns: i32 },
  bb_spawn_events: { args: [], returns: i32 },
  bb_spawn_submit: { args: [ptr, u32], returns: u32 },
  bb_spawn_next: { args: [ptr, ptr], returns: u32 },
  bb_reactor_start: { args: [fn], returns: i32 },
  bb_reactor_stop: { args: [], returns: i32 },
  bb_reactor_watch: { args: [i32, u32, u32, i32], returns: i32 },
  bb_wait: { args: [i32, ptr], returns: i32 },
  bb_pidfd_signal: { args: [i32, i32], returns: i32 },
  bb_pidfd_getfd: { args: [i32, i32], returns: i32 },
  bb_notif_recv: { args: [i32, ptr], returns: i32 },
  bb_notif_send: { args: [i32, u64, i32, i64, u32], returns: i32 },
  bb_notif_id_valid: { args: [i32, u64], returns: i32 },
  bb_notif_addfd: { args: [i32, u64, i32, i32], returns: i32 },
  bb_read: { args: [i32, ptr, u32], returns: i64 },
  bb_close: { args: [i32], returns: i32 },
  bb_comms_socketpair: { args: [ptr], returns: i32 },
  bb_comms_dup: { args: [i32], returns: i32 },
  bb_comms_send: { args: [i32, ptr, u32, ptr, u64, u64, ptr, u32], returns: i32 },
  bb_comms_recv: { args: [i32, ptr, u64, ptr, u32, ptr], returns: i32 },
  bb_comms_peercred: { args: [i32, ptr], returns: i32 },
  bb_buffer_create: { args: [ptr, u64], returns: i32 },
  bb_buffer_check: { args: [i32, ptr], returns: i32 },
  bb_buffer_map: { args: [i32, u64, ptr], returns: i32 },
  bb_buffer_unmap: { args: [ptr, u64], returns: i32 },
  // The proxy's sockets and relay (csrc/net_socket.c, net_relay.c; src/native/net.ts).
  bb_net_adopt: { args: [i32, i32], returns: i32 },
  bb_net_accept: { args: [i32], returns: i32 },
  bb_net_recv: { args: [i32, ptr, u32, i32], returns: i32 },
  bb_net_send: { args: [i32, ptr, u32], returns: i32 },
  bb_net_rcvlowat: { args: [i32, i32], returns: i32 },
  bb_net_shutdown: { args: [i32, i32], returns: i32 },
  bb_net_connect: { args: [ptr, u32, u32], returns: i32 },
  bb_net_sockerr: { args: [i32], returns: i32 },
  bb_net_connected: { args: [i32], returns: i32 },
  bb_net_fd_limit: { args: [], returns: i64 },
  bb_net_relay_start: { args: [fn], returns: i32 },
  bb_net_relay: { args: [i32, i32, i32, u32, u32], returns: i32 },
  bb_net_relay_open: { args: [u32], returns: i32 },
  bb_net_relay_abort: { args: [u32], returns: i32 },
} as const;

/** dlopen of the embedded library through a private copy (see above). */
function openEmbedded(path: string) {
  const bytes = readFileSync(path);
  const dir = mkdtempSync(join(tmpdir(), "bunbox-"));
  const file = join(dir, "libbunbox.so");
  const fd = openSync(file, "wx", 0o700);
  try {
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
    return dlopen(existsSync(`/proc/self/fd/${fd}`) ? `/proc/self/fd/${fd}` : file, symbols);
  } finally {
    closeSync(fd);
    unlinkSync(file);
    rmdirSync(dir);
  }
}

/** BUNBOX_SHIM must not let another user choose the code a (root) bunbox loads. */
function checkOverride(path: string): void {
  let st;
  try {
    st = statSync(path);
  } catch {
    return; // reported as missing below
  }
  const euid = process.geteuid?.() ?? 0;
  if ((st.uid !== 0 && st.uid !== euid) || (st.mode & 0o022) !== 0) {
    throw new BunboxError("native", `BUNBOX_SHIM=${path} is writable by, or belongs to, another user: refusing to load it`);
  }
}

function open() {
  if (process.env.BUNBOX_SHIM) checkOverride(process.env.BUNBOX_SHIM);
  const path = process.env.BUNBOX_SHIM || embedded;
  const inExecutable = path.startsWith("/$bunfs/");
  if (!inExecutable && !existsSync(path)) {
    throw new BunboxError(
      "native",
      `the native shim is missing at ${path}: run \`bun run build:shim\` (needs gcc)`,
    );
  }
  try {
    return inExecutable ? openEmbedded(path) : dlopen(path, symbols);
  } catch (e) {
    throw new BunboxError("native", `cannot load the native shim ${path}: ${(e as Error).message}`);
  }
}

let lib: ReturnType<typeof open> | undefined;

/** The shim's symbols, loaded on first use. */
export function shim(): ReturnType<typeof open>["symbols"] {
  lib ??= open();
  return lib.symbols;
}
