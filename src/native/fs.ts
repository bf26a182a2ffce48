/**
 * The file access of a run, without `node:fs`: evaluating Bun's `node:fs`
 * costs every start ~1.2 ms of CPU, a `dlopen` of libc ~0.1 (README.md,
 * "Start-up"). The calls are the raw system calls through libc's
 * `syscall()` (no libc version needed beyond it), with node:fs's names and
 * behaviour for what bunbox uses of it: the same arguments, every fd
 * close-on-exec (as Bun opens them), errors thrown with node's `code`
 * ("ENOENT"), `errno`, `syscall` and `path`.
 *
 * Paths are copied into one buffer kept for the next call: it stays
 * referenced by this module while the kernel reads it.
 */
import { FFIType, ptr, type Pointer, read } from "bun:ffi";
import { openLibc } from "./libc.ts";
import { ERRNO } from "./errno.ts";

const { i64, i64_fast, ptr: p } = FFIType;

/** The calls used, by arch (asm-generic numbering on aarch64); test/native/fs.test.ts checks them against the syscall tables. */
export const SYSCALLS = {
  x86_64: { read: 0, pread64: 17, write: 1, close: 3, openat: 257, mkdirat: 258, unlinkat: 263, readlinkat: 267, faccessat: 269, statx: 332, newfstatat: 262, getdents64: 217, memfd_create: 319 },
  aarch64: { read: 63, pread64: 67, write: 64, close: 57, openat: 56, mkdirat: 34, unlinkat: 35, readlinkat: 78, faccessat: 48, statx: 291, newfstatat: 79, getdents64: 61, memfd_create: 279 },
} as const;
export const NR: (typeof SYSCALLS)[keyof typeof SYSCALLS] = SYSCALLS[process.arch === "arm64" ? "aarch64" : "x86_64"];

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;
const AT_EMPTY_PATH = 0x1000;
const STATX_BASIC_STATS = 0x7ff;

/** The open flags and access modes bunbox passes (x86_64's and aarch64's differ for O_DIRECTORY and O_NOFOLLOW). */
export const constants = Object.freeze({
  O_RDONLY: 0,
  O_WRONLY: 1,
  O_RDWR: 2,
  O_CREAT: 0o100,
  O_EXCL: 0o200,
  O_TRUNC: 0o1000,
  O_APPEND: 0o2000,
  O_DIRECTORY: process.arch === "arm64" ? 0o40000 : 0o200000,
  O_NOFOLLOW: process.arch === "arm64" ? 0o100000 : 0o400000,
  O_CLOEXEC: 0o2000000,
  F_OK: 0,
  X_OK: 1,
  W_OK: 2,
  R_OK: 4,
});

const FLAGS: Record<string, number> = {
  r: constants.O_RDONLY,
  "r+": constants.O_RDWR,
  w: constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC,
  wx: constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_EXCL,
  a: constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND,
};

const symbols = {
  syscall: { args: [i64, i64, i64, i64, i64, i64, i64], returns: i64_fast },
  __errno_location: { args: [], returns: p },
} as const;

let lib: ReturnType<typeof openLib> | undefined;
let errnoAt: Pointer | null = null;

function openLib() {
  return openLibc(symbols, (why) => new Error(`bunbox cannot load libc to read files: ${why}`));
}

/** `syscall(nr, ...args)`: its result, or -errno. */
function sys(nr: number, a = 0, b = 0, c = 0, d = 0, e = 0): number {
  if (!lib) {
    lib = openLib();
    errnoAt = lib.__errno_location() as Pointer | null;
  }
  const r = Number(lib.syscall(nr, a, b, c, d, e, 0));
  // errno right after the call: nothing in between runs libc on this thread.
  return r === -1 && errnoAt ? -read.i32(errnoAt, 0) : r;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
let pathBuf = new Uint8Array(4096 + 1);

/** `path` as a NUL-terminated C string in the shared buffer; its address. A NUL inside would cut it short: refused, as node does. */
function cPath(path: string): number {
  if (path.includes("\0")) {
    throw Object.assign(new TypeError(`a path must not contain a NUL byte: ${JSON.stringify(path)}`), { code: "ERR_INVALID_ARG_VALUE" });
  }
  if (path.length * 3 + 1 > pathBuf.length) pathBuf = new Uint8Array(path.length * 3 + 1);
  const { written } = encoder.encodeInto(path, pathBuf);
  pathBuf[written] = 0;
  return ptr(pathBuf);
}

/** node's error for a failed call: `code` its errno's name. */
function fail(errno: number, syscall: string, path?: string | number): never {
  const code = ERRNO.get(errno)?.[0] ?? `E${errno}`;
  const text = ERRNO.get(errno)?.[1] ?? "unknown error";
  const e = new Error(`${code}: ${text.toLowerCase()}, ${syscall}${path !== undefined ? ` '${path}'` : ""}`) as NodeJS.ErrnoException;
  e.code = code;
  e.errno = -errno;
  e.syscall = syscall;
  if (typeof path === "string") e.path = path;
  throw e;
}

function check(r: number, syscall: string, path?: string | number): number {
  return r < 0 ? fail(-r, syscall, path) : r;
}

export function openSync(path: string, flags: string | number = "r", mode = 0o666): number {
  const f = typeof flags === "number" ? flags : FLAGS[flags];
  if (f === undefined) throw new TypeError(`openSync: flags ${JSON.stringify(flags)} are not supported here`);
  return check(sys(NR.openat, AT_FDCWD, cPath(path), f | constants.O_CLOEXEC, mode), "open", path);
}

export function closeSync(fd: number): void {
  check(sys(NR.close, fd), "close");
}

/**
 * A typed array the kernel is reading or writing, held here for the length
 * of the call: a caller's array that is not used after the call could
 * otherwise be collected while the kernel still has its address.
 */
let held: Uint8Array | undefined;

/** `sys` on `bytes`' memory, `bytes` held meanwhile. */
function sysOn(bytes: Uint8Array, nr: number, a: number, offset: number, b: number, c = 0): number {
  held = bytes;
  try {
    for (;;) {
      const r = sys(nr, a, ptr(bytes, offset), b, c);
      if (r !== -4) return r; // EINTR: again
    }
  } finally {
    held = undefined;
  }
}

/** Reads up to `length` bytes into `buffer` at `offset`, from `position` in the file or (null) where the fd stands. */
export function readSync(fd: number, buffer: Uint8Array, offset = 0, length = buffer.length - offset, position: number | null = null): number {
  if (offset < 0 || length < 0 || offset + length > buffer.length) throw new RangeError("readSync: offset and length outside the buffer");
  if (length === 0) return 0;
  const r = position === null ? sysOn(buffer, NR.read, fd, offset, length) : sysOn(buffer, NR.pread64, fd, offset, length, position);
  return check(r, "read");
}

/** Writes `data` (from `offset`, bytes) at where the fd stands; the count written. */
export function writeSync(fd: number, data: Uint8Array | string, offset = 0): number {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  if (offset >= bytes.length) return 0;
  return check(sysOn(bytes, NR.write, fd, offset, bytes.length - offset), "write");
}

/**
 * An open fd's content, read to its end into `into`, grown by doubling (a
 * /proc or cgroup file says its size is 0): a view of the bytes read, whose
 * buffer is the grown one; undefined once there are more than `max`.
 */
export function readToEnd(fd: number, into: Uint8Array = new Uint8Array(4096), max = Infinity): Uint8Array | undefined {
  let buf = into;
  let n = 0;
  for (;;) {
    if (n === buf.length) {
      if (n > max) return undefined;
      const bigger = new Uint8Array(Math.min(buf.length * 2, max + 1));
      bigger.set(buf);
      buf = bigger;
    }
    const got = readSync(fd, buf, n, buf.length - n);
    if (got === 0) return buf.subarray(0, n);
    n += got;
  }
}

/** A file's bytes (a Buffer, as node's), or its text with "utf8"; a number is an open fd, read from where it stands. */
export function readFileSync(path: string | number): Buffer;
export function readFileSync(path: string | number, encoding: "utf8"): string;
export function readFileSync(path: string | number, encoding?: "utf8"): Buffer | string {
  const fd = typeof path === "number" ? path : openSync(path, "r");
  try {
    const bytes = readToEnd(fd)!;
    return encoding ? decoder.decode(bytes) : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  } finally {
    if (typeof path !== "number") closeSync(fd);
  }
}

/** Writes `text` to a path (created or truncated) or to an open fd, all of it. */
export function writeFileSync(path: string | number, text: string): void {
  const fd = typeof path === "number" ? path : openSync(path, "w");
  try {
    const bytes = encoder.encode(text);
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
  } finally {
    if (typeof path !== "number") closeSync(fd);
  }
}

const S_IFMT = 0o170000;

/** What bunbox reads of a file's status (statx). */
export class Stats {
  constructor(
    readonly mode: number,
    readonly uid: number,
    readonly gid: number,
    readonly size: number,
  ) {}
  isFile(): boolean {
    return (this.mode & S_IFMT) === 0o100000;
  }
  isDirectory(): boolean {
    return (this.mode & S_IFMT) === 0o040000;
  }
  isSymbolicLink(): boolean {
    return (this.mode & S_IFMT) === 0o120000;
  }
  isCharacterDevice(): boolean {
    return (this.mode & S_IFMT) === 0o020000;
  }
  isBlockDevice(): boolean {
    return (this.mode & S_IFMT) === 0o060000;
  }
}

/** struct statx (256 bytes, the same on every arch); kept for the next call. */
const statBuf = new Uint8Array(256);
const statView = new DataView(statBuf.buffer);

/**
 * Where struct stat (newfstatat) keeps mode, uid, gid and size: x86_64's
 * own layout, aarch64's the asm-generic one.
 */
const STAT_AT = process.arch === "arm64" ? { mode: 16, uid: 24, gid: 28, size: 48 } : { mode: 24, uid: 28, gid: 32, size: 48 };

/**
 * Whether to ask statx (Linux 4.11). A container's seccomp profile may
 * refuse it (ENOSYS or EPERM, as older Docker ones did): then newfstatat,
 * as libuv does.
 */
let useStatx = true;

/** Test hook: newfstatat instead of statx. */
export function _useStatx(on: boolean): void {
  useStatx = on;
}

function stat(dirfd: number, path: string, flags: number, what: string, shown: string | number): Stats {
  const v = statView;
  if (useStatx) {
    const r = sys(NR.statx, dirfd, cPath(path), flags, STATX_BASIC_STATS, ptr(statBuf));
    if (r >= 0) {
      // stx_uid @20, stx_gid @24, stx_mode (u16) @28, stx_size (u64) @40.
      return new Stats(v.getUint16(28, true), v.getUint32(20, true), v.getUint32(24, true), Number(v.getBigUint64(40, true)));
    }
    if (r !== -38 /* ENOSYS */ && r !== -1 /* EPERM */) fail(-r, what, shown);
    useStatx = false;
  }
  check(sys(NR.newfstatat, dirfd, cPath(path), ptr(statBuf), flags), what, shown);
  const at = STAT_AT;
  return new Stats(v.getUint32(at.mode, true), v.getUint32(at.uid, true), v.getUint32(at.gid, true), Number(v.getBigInt64(at.size, true)));
}

export function statSync(path: string): Stats {
  return stat(AT_FDCWD, path, 0, "stat", path);
}

export function lstatSync(path: string): Stats {
  return stat(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, "lstat", path);
}

export function fstatSync(fd: number): Stats {
  return stat(fd, "", AT_EMPTY_PATH, "fstat", fd);
}

/** A symlink's target (PATH_MAX at most, as the kernel's). */
const linkBuf = new Uint8Array(4096);
export function readlinkSync(path: string): string {
  const n = check(sys(NR.readlinkat, AT_FDCWD, cPath(path), ptr(linkBuf), linkBuf.length), "readlink", path);
  return decoder.decode(linkBuf.subarray(0, n));
}

/** mkdir; with `recursive`, the missing parents too and no error when it exists (as node's). */
export function mkdirSync(path: string, options: { mode?: number; recursive?: boolean } = {}): void {
  const mode = options.mode ?? 0o777;
  const r = sys(NR.mkdirat, AT_FDCWD, cPath(path), mode);
  if (r >= 0 || !options.recursive) return void check(r, "mkdir", path);
  if (r === -17 /* EEXIST */) {
    if (statSync(path).isDirectory()) return;
    fail(17, "mkdir", path);
  }
  if (r !== -2 /* ENOENT */) fail(-r, "mkdir", path);
  const parent = path.replace(/\/+[^/]*\/*$/, "") || "/";
  if (parent === path) fail(2, "mkdir", path);
  mkdirSync(parent, options);
  const again = sys(NR.mkdirat, AT_FDCWD, cPath(path), mode);
  if (again < 0 && !(again === -17 && statSync(path).isDirectory())) fail(-again, "mkdir", path);
}

export function rmdirSync(path: string): void {
  check(sys(NR.unlinkat, AT_FDCWD, cPath(path), AT_REMOVEDIR), "rmdir", path);
}

/** The names in a directory but "." and "..", in the kernel's order (as node's). */
export function readdirSync(path: string): string[] {
  const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
  const names: string[] = [];
  const buf = new Uint8Array(32 * 1024);
  const view = new DataView(buf.buffer);
  try {
    for (;;) {
      const n = check(sys(NR.getdents64, fd, ptr(buf), buf.length), "scandir", path);
      if (n === 0) return names;
      // struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16 @16, d_type u8, d_name @19 (NUL-terminated).
      for (let at = 0; at < n; at += view.getUint16(at + 16, true)) {
        const end = buf.indexOf(0, at + 19);
        const name = decoder.decode(buf.subarray(at + 19, end));
        if (name !== "." && name !== "..") names.push(name);
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Whether the path exists (symlinks followed), as node's: false on any error. */
export function existsSync(path: string): boolean {
  if (typeof path !== "string" || path.includes("\0")) return false;
  return sys(NR.faccessat, AT_FDCWD, cPath(path), constants.F_OK) === 0;
}

/** Throws unless this process (its real ids, as access(2)) may access the path in `mode`. */
export function accessSync(path: string, mode: number = constants.F_OK): void {
  check(sys(NR.faccessat, AT_FDCWD, cPath(path), mode), "access", path);
}

/** memfd_create(name, flags): the fd, or -errno (the shim's loader decides what a refusal means). */
export function memfdCreate(name: string, flags: number): number {
  return sys(NR.memfd_create, cPath(name), flags);
}
