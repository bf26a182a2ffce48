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
 * bunbox would dlopen whatever sits there; and it needs a TMPDIR that
 * allows exec, which a hardened one (noexec) does not. Instead the bytes go
 * to a memfd (MFD_EXEC), and dlopen reads them through the fd we hold
 * (/proc/self/fd/N): no file system involved. Only where memfds cannot be
 * executed (vm.memfd_noexec=2, or a seal) do they go to a private file,
 * created O_EXCL in a fresh 0700 directory of TMPDIR, opened the same way
 * and removed at once.
 *
 * Before any other symbol is used, the shim's bb_abi_layout() must report the
 * ABI this source was generated for (src/native/abi.ts, from csrc/plan.h):
 * a shim built from another version, an old build/ or a BUNBOX_SHIM left
 * over from another release, is refused by name instead of misread.
 */
import { dlopen, FFIType } from "bun:ffi";
import { closeSync, existsSync, memfdCreate, openSync, statSync, writeSync } from "./fs.ts";
import { join } from "../posix-path.ts";
import embedded from "../../build/libbunbox.so" with { type: "file" };
import { BunboxError } from "../errors.ts";
import { ABI_LAYOUT } from "./abi.ts";

const { i32, u32, u64, i64, ptr, function: fn } = FFIType;

const symbols = {
  bb_abi_layout: { args: [ptr, u32], returns: u32 },
  bb_spawn: { args: [ptr, u32, ptr, i32], returns: i32 },
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
  bb_relay_start: { args: [i32, i32, i32, i32, ptr], returns: i32 },
  bb_isatty: { args: [i32], returns: i32 },
  bb_tty_size: { args: [i32], returns: i32 },
  bb_tty_copy_size: { args: [i32, i32], returns: i32 },
  bb_tty_foreground: { args: [i32], returns: i32 },
  bb_exit_now: { args: [i32], returns: FFIType.void },
  bb_tty_state_size: { args: [], returns: i32 },
  bb_tty_raw: { args: [i32, ptr], returns: i32 },
  bb_tty_restore: { args: [i32, ptr], returns: i32 },
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
  bb_net_relay_open: { args: [u32, i32], returns: i32 },
  bb_net_relay_abort: { args: [u32], returns: i32 },
  bb_open_in_root: { args: [ptr, ptr], returns: i32 },
  bb_landlock_abi: { args: [], returns: i32 },
  bb_seccomp_action: { args: [u32], returns: i32 },
  bb_probe_idmap: { args: [], returns: i32 },
  bb_net_recvfrom: { args: [i32, ptr, u32, ptr, ptr], returns: i32 },
  bb_net_sendto: { args: [i32, ptr, u32, ptr, u32], returns: i32 },
  bb_net_nonblock: { args: [i32], returns: i32 },
  // Transparent mode (csrc/net_intercept.c; src/native/net.ts).
  bb_net_intercept_addr: { args: [i32, u64, i32, u64, u32, ptr], returns: i32 },
  bb_net_intercept_take: { args: [i32, u64, i32, i32, i32], returns: i32 },
  bb_net_intercept_join: { args: [i32, u32], returns: i32 },
  bb_net_peer_port: { args: [i32], returns: i32 },
  bb_lock_range: { args: [i32, u64, u64, i32], returns: i32 },
  bb_pidfd_open: { args: [i32], returns: i32 },
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

/** Why the shim behind `layout` (its bb_abi_layout) is not this source's, or undefined. */
function checkLayout(layout: (values: BigUint64Array, n: number) => number, what: string): string | undefined {
  const values = new BigUint64Array(ABI_LAYOUT.length + 1);
  const count = layout(values, values.length);
  // The usual answer, checked at every start without a BigInt per value:
  // each u64 as its two 32-bit halves (every value here is below 2^53).
  const half = new Uint32Array(values.buffer);
  const same = count === ABI_LAYOUT.length &&
    ABI_LAYOUT.every(([, v], i) => half[2 * i] === v % 0x100000000 && half[2 * i + 1] === Math.floor(v / 0x100000000));
  return same ? undefined : abiMismatch(Array.from(values.subarray(0, Math.min(count, values.length))), what);
}

/**
 * dlopen with every symbol, and the ABI check before any other is called
 * (see above). One dlopen when all is well (each costs a start-up); when it
 * fails, a second one with bb_abi_layout alone says why: another version
 * (which), or no bunbox shim at all.
 */
function load(path: string, what: string) {
  let lib;
  try {
    lib = dlopen(path, symbols);
  } catch (e) {
    let probe;
    try {
      probe = dlopen(path, { bb_abi_layout: symbols.bb_abi_layout });
    } catch (again) {
      // The file itself would not load (a noexec mount: "failed to map segment"; not an ELF library): not a version question.
      const why = (again as Error).message;
      if (why.startsWith("Failed to open library")) throw new BunboxError("native", `cannot load ${what}: ${why.replace(/^Failed to open library "[^"]*": /, "")}`);
      throw new BunboxError("native", `${what} is not a bunbox shim of this version (it has no bb_abi_layout): ${rebuildHint(what)}`);
    }
    const bad = checkLayout(probe.symbols.bb_abi_layout, what);
    probe.close();
    throw new BunboxError("native", bad ?? `${what} lacks a symbol of this version (${(e as Error).message}): ${rebuildHint(what)}`);
  }
  const bad = checkLayout(lib.symbols.bb_abi_layout, what);
  if (bad) {
    lib.close();
    throw new BunboxError("native", bad);
  }
  return lib;
}

const MFD_CLOEXEC = 0x1;
const MFD_EXEC = 0x10; // Linux 6.3; before it, memfds are executable and the flag is unknown (EINVAL)
const EINVAL = 22;

/**
 * An executable memfd holding `bytes`, or undefined where there is none
 * (see above): MFD_EXEC refused (EACCES) means vm.memfd_noexec=2; unknown
 * (EINVAL) means a kernel before 6.3, whose memfds are all executable.
 */
function executableMemfd(bytes: Uint8Array): number | undefined {
  let fd = memfdCreate("bunbox-shim", MFD_CLOEXEC | MFD_EXEC);
  if (fd === -EINVAL) fd = memfdCreate("bunbox-shim", MFD_CLOEXEC);
  if (fd < 0) return undefined;
  try {
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
  } catch {
    closeSync(fd);
    return undefined;
  }
  return fd;
}

/**
 * The embedded library's bytes, read ahead (preloadShim) or now. The
 * executable's files are read through Bun.file(), asynchronously, or
 * node:fs, whose evaluation costs a start ~1.2 ms (README.md, "Start-up"):
 * `bunbox run` reads them ahead, the library when it first needs them.
 */
let embeddedBytes: Uint8Array | undefined;

/** Reads the embedded shim ahead, so that its first use does not load node:fs. */
export async function preloadShim(): Promise<void> {
  if (lib || embeddedBytes || process.env.BUNBOX_SHIM || !embedded.startsWith("/$bunfs/")) return;
  embeddedBytes = await Bun.file(embedded).bytes();
}

/** dlopen of the embedded library from a memfd, else through a private copy (see above). */
function openEmbedded(path: string) {
  const nodeFs = () => require("node:fs") as typeof import("node:fs");
  const bytes = embeddedBytes ?? nodeFs().readFileSync(path);
  embeddedBytes = undefined;
  const memfd = executableMemfd(bytes);
  if (memfd !== undefined) {
    try {
      return load(`/proc/self/fd/${memfd}`, "the embedded native shim");
    } finally {
      closeSync(memfd);
    }
  }
  // No executable memfd (vm.memfd_noexec=2): a private copy in TMPDIR.
  // node:os's tmpdir(), without loading node:os on every start.
  const { mkdtempSync, rmdirSync, unlinkSync } = nodeFs();
  const tmp = (process.env.TMPDIR || "/tmp").replace(/(.)\/+$/, "$1");
  const noMemfd = "memfds cannot be executed here (vm.memfd_noexec=2?), so it needs a TMPDIR where files can be";
  let dir;
  try {
    dir = mkdtempSync(join(tmp, "bunbox-"));
  } catch (e) {
    throw new BunboxError("native", `cannot load the embedded native shim: ${noMemfd}, and ${tmp} is not usable (${(e as NodeJS.ErrnoException).code}): set TMPDIR`);
  }
  const file = join(dir, "libbunbox.so");
  const fd = openSync(file, "wx", 0o700);
  try {
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
    try {
      return load(existsSync(`/proc/self/fd/${fd}`) ? `/proc/self/fd/${fd}` : file, "the embedded native shim");
    } catch (e) {
      // A noexec TMPDIR: the one case that is the caller's to mend.
      if (e instanceof BunboxError && e.message.includes("failed to map segment")) {
        throw new BunboxError("native", `cannot load the embedded native shim: ${noMemfd} (${tmp} is mounted noexec?): set TMPDIR to such a directory`);
      }
      throw e;
    }
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
