/**
 * Loads the native shim (csrc/, built by scripts/build-shim.ts). Only
 * src/native/*.ts know the shim exists; the rest of bunbox calls them.
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
 *
 * Before any other symbol is used, the shim's bb_abi_layout() must report the
 * ABI this source was generated for (src/native/abi.ts, from csrc/plan.h):
 * a shim built from another version, an old build/ or a BUNBOX_SHIM left
 * over from another release, is refused by name instead of misread.
 */
import { dlopen, FFIType } from "bun:ffi";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmdirSync, statSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import embedded from "../../build/libbunbox.so" with { type: "file" };
import { BunboxError } from "../errors.ts";
import { ABI_LAYOUT } from "./abi.ts";

const { i32, u32, u64, i64, ptr, function: fn } = FFIType;

const symbols = {
  bb_abi_layout: { args: [ptr, u32], returns: u32 },
  bb_spawn_events: { args: [], returns: i32 },
  bb_spawn_submit: { args: [ptr, u32], returns: u32 },
  bb_spawn_next: { args: [ptr, ptr], returns: u32 },
  bb_reactor_start: { args: [fn], returns: i32 },
  bb_reactor_watch: { args: [i32, u32, u32, i32], returns: i32 },
  bb_wait: { args: [i32, ptr], returns: i32 },
  bb_pidfd_signal: { args: [i32, i32], returns: i32 },
  bb_pidfd_getfd: { args: [i32, i32], returns: i32 },
  bb_notif_send: { args: [i32, u64, i32, i64, u32], returns: i32 },
  bb_notif_addfd: { args: [i32, u64, i32, i32], returns: i32 },
  bb_notif_id_valid: { args: [i32, u64], returns: i32 },
  bb_notif_pop: { args: [u32, ptr], returns: i32 },
  bb_mem_read: { args: [i32, u64, ptr, u32], returns: i64 },
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

function rebuildHint(what: string): string {
  return what.startsWith("BUNBOX_SHIM=")
    ? "rebuild it from this source (`bun run build:shim`) or unset BUNBOX_SHIM"
    : "run `bun run build:shim`";
}

/**
 * Why a shim (`what`, in messages) whose bb_abi_layout() gave `layout` does
 * not fit this source, or undefined when it does.
 */
function abiMismatch(layout: readonly bigint[], what: string): string | undefined {
  const [label, version] = ABI_LAYOUT[0]!;
  const theirs = layout[0];
  const rebuild = rebuildHint(what);
  if (theirs !== BigInt(version)) {
    return `${what} was built for ABI version ${theirs ?? "?"} (${label}), this bunbox needs version ${version}: ${rebuild}`;
  }
  const n = Math.max(layout.length, ABI_LAYOUT.length);
  for (let i = 1; i < n; i++) {
    const ours = ABI_LAYOUT[i];
    if (ours && layout[i] === BigInt(ours[1])) continue;
    const at = ours ? `${ours[0]} is ${layout[i] ?? "missing"} in the shim, ${ours[1]} here` : "the shim has more values";
    return `${what} has ABI version ${version} but another layout (${at}): ${rebuild}`;
  }
  return undefined;
}

/** dlopen, after the ABI check (see above). */
function load(path: string, what: string) {
  let probe;
  try {
    probe = dlopen(path, { bb_abi_layout: symbols.bb_abi_layout });
  } catch {
    throw new BunboxError("native", `${what} is not a bunbox shim of this version (it has no bb_abi_layout): ${rebuildHint(what)}`);
  }
  const values = new BigUint64Array(ABI_LAYOUT.length + 1);
  const count = probe.symbols.bb_abi_layout(values, values.length);
  const bad = abiMismatch(Array.from(values.subarray(0, Math.min(count, values.length))), what);
  if (bad) throw new BunboxError("native", bad);
  return dlopen(path, symbols);
}

/** dlopen of the embedded library through a private copy (see above). */
function openEmbedded(path: string) {
  const bytes = readFileSync(path);
  const dir = mkdtempSync(join(tmpdir(), "bunbox-"));
  const file = join(dir, "libbunbox.so");
  const fd = openSync(file, "wx", 0o700);
  try {
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
    return load(existsSync(`/proc/self/fd/${fd}`) ? `/proc/self/fd/${fd}` : file, "the embedded native shim");
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
  const override = process.env.BUNBOX_SHIM;
  if (override) checkOverride(override);
  const path = override || embedded;
  const inExecutable = path.startsWith("/$bunfs/");
  if (!inExecutable && !existsSync(path)) {
    throw new BunboxError(
      "native",
      `the native shim is missing at ${path}: run \`bun run build:shim\` (needs gcc)`,
    );
  }
  try {
    return inExecutable ? openEmbedded(path) : load(path, override ? `BUNBOX_SHIM=${override}` : `the native shim ${path}`);
  } catch (e) {
    if (e instanceof BunboxError) throw e;
    throw new BunboxError("native", `cannot load the native shim ${path}: ${(e as Error).message}`);
  }
}

let lib: ReturnType<typeof open> | undefined;

/** The shim's symbols, loaded on first use. */
export function shim(): ReturnType<typeof open>["symbols"] {
  lib ??= open();
  return lib.symbols;
}
