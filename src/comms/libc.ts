/**
 * libc through bun:ffi, for the sandboxee's client (client.ts).
 *
 * This is the one module outside src/native/ that touches bun:ffi, on
 * purpose: it runs inside a sandbox, where bunbox's shim (build/libbunbox.so)
 * is not mounted, and libc always is (a Bun program needs it to start). It
 * calls only what comms needs: sendmsg/recvmsg with SCM_RIGHTS, poll,
 * SO_PEERCRED, memfd_create/ftruncate/fcntl seals, mmap/munmap.
 *
 * The structs are built by hand. struct msghdr, iovec, cmsghdr, pollfd and
 * ucred have the same layout on x86_64 and aarch64 Linux (LP64; musl's
 * padding fields sit where glibc's size_t high halves do, little-endian).
 * The constants are the asm-generic ones, shared by both.
 *
 * errno is read through __errno_location() right after the failing call;
 * nothing between the two calls allocates, so no other libc call can run
 * on this thread in between.
 */
import { type Pointer, FFIType, ptr, read, toArrayBuffer } from "bun:ffi";
import { CommsError } from "./error.ts";
import { openLibc } from "../native/libc.ts";

const { i32, u32, i64, u64, ptr: p, i64_fast } = FFIType;

const symbols = {
  sendmsg: { args: [i32, p, i32], returns: i64_fast },
  recvmsg: { args: [i32, p, i32], returns: i64_fast },
  poll: { args: [p, u64, i32], returns: i32 },
  close: { args: [i32], returns: i32 },
  getsockopt: { args: [i32, i32, i32, p, p], returns: i32 },
  memfd_create: { args: [p, u32], returns: i32 },
  ftruncate: { args: [i32, i64], returns: i32 },
  fcntl: { args: [i32, i32, i32], returns: i32 },
  lseek: { args: [i32, i64, i32], returns: i64_fast },
  mmap: { args: [p, u64, i32, i32, i32, i64], returns: i64_fast },
  munmap: { args: [p, u64], returns: i32 },
  __errno_location: { args: [], returns: p },
  syscall: { args: [i64, i64, i64, i64, i64, i64, i64], returns: i64_fast },
} as const;

function open() {
  return openLibc(symbols, (why) => new CommsError("io", `cannot load libc for comms: ${why}`));
}

let lib: ReturnType<typeof open> | undefined;
let errnoAt: Pointer | null = null;

export function libc(): ReturnType<typeof open> {
  if (!lib) {
    lib = open();
    errnoAt = lib.__errno_location() as Pointer | null;
  }
  return lib;
}

/** The calling thread's errno (the JavaScript thread's: cached once). */
export function errno(): number {
  return errnoAt ? read.i32(errnoAt, 0) : 0;
}

export const SOL_SOCKET = 1;
export const SCM_RIGHTS = 1;
export const SO_TYPE = 3;
export const SO_PEERCRED = 17;
export const SOCK_STREAM = 1;
export const MSG_DONTWAIT = 0x40;
export const MSG_CTRUNC = 0x08;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_CMSG_CLOEXEC = 0x4000_0000;
export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const EINTR = 4;
export const EAGAIN = 11;
export const MFD_CLOEXEC = 1;
export const MFD_ALLOW_SEALING = 2;
export const F_ADD_SEALS = 1033;
export const F_SEAL_SEAL = 1;
export const F_SEAL_SHRINK = 2;
export const F_SEAL_GROW = 4;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const SEEK_END = 2;

/** sizeof(struct msghdr), and its fields' offsets. */
export const MSGHDR_SIZE = 56;
export const MSG_IOV = 16;
export const MSG_IOVLEN = 24;
export const MSG_CONTROL = 32;
export const MSG_CONTROLLEN = 40;
export const MSG_FLAGS = 48;
/** struct cmsghdr: size_t len, int level, int type, then data (aligned to 8). */
export const CMSG_HEADER = 16;

export function cmsgSpace(bytes: number): number {
  return CMSG_HEADER + ((bytes + 7) & ~7);
}

export function address(view: Uint8Array | DataView): bigint {
  return BigInt(ptr(view));
}

export { ptr, toArrayBuffer, type Pointer };
