/**
 * Typed wrappers over the shim's comms calls (csrc/comms.c): unix socket
 * pairs, sendmsg/recvmsg with SCM_RIGHTS, SO_PEERCRED, and memfd-backed
 * shared memory. Errors come back as negative errno, never exceptions:
 * src/comms/ decides what each means.
 */
import { toArrayBuffer, type Pointer } from "bun:ffi";
import { shim } from "./library.ts";

export const EAGAIN = 11;
export const EPOLLOUT = 0x004;
/** The kernel's limit of fds in one SCM_RIGHTS message (SCM_MAX_FD). */
export const SCM_MAX_FD = 253;

/** socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): two connected fds, or -errno. */
export function socketpair(): [number, number] | number {
  const out = new Int32Array(2);
  const r = shim().bb_comms_socketpair(out);
  return r < 0 ? r : [out[0]!, out[1]!];
}

/** fcntl(F_DUPFD_CLOEXEC): a second fd on the same socket, or -errno. */
export function dupFd(fd: number): number {
  return shim().bb_comms_dup(fd);
}

/**
 * One non-blocking sendmsg of `head` then `body`, from byte `skip` of the
 * two on; `fds` (only with skip 0) ride along as SCM_RIGHTS. Returns the
 * bytes sent or -errno (-EAGAIN: wait for EPOLLOUT).
 */
export function sendFrame(fd: number, head: Uint8Array, body: Uint8Array, skip: number, fds: Int32Array | null): number {
  const n = fds?.length ?? 0;
  return shim().bb_comms_send(fd, head, head.length, body.length > 0 ? body : null, body.length, skip, n > 0 ? fds : null, n);
}

/** Scratch space for recvFrame, one per socket (no allocation per call). */
export class RecvScratch {
  readonly fds = new Int32Array(SCM_MAX_FD);
  readonly info = new Int32Array(2);
  /** fds that came with the last recvFrame. */
  received: number[] = [];
  /** The last recvFrame lost or closed fds (control data truncated, or too many). */
  truncated = false;
}

const NO_FDS: number[] = [];

/** One non-blocking recvmsg into `into`: bytes (0: EOF) or -errno; fds in `scratch`. */
export function recvFrame(fd: number, into: Uint8Array, scratch: RecvScratch): number {
  const r = shim().bb_comms_recv(fd, into, into.length, scratch.fds, SCM_MAX_FD, scratch.info);
  const count = scratch.info[0]!;
  scratch.received = count > 0 ? Array.from(scratch.fds.subarray(0, count)) : NO_FDS;
  scratch.truncated = scratch.info[1] !== 0;
  return r;
}

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** getsockopt(SO_PEERCRED), or -errno. */
export function peerCredentials(fd: number): PeerCredentials | number {
  const out = new Uint32Array(3);
  const r = shim().bb_comms_peercred(fd, out);
  return r < 0 ? r : { pid: out[0]!, uid: out[1]!, gid: out[2]! };
}

/** A memfd of `size` bytes sealed against resizing: the fd, or -errno. */
export function bufferCreate(name: string, size: number): number {
  return shim().bb_buffer_create(new TextEncoder().encode(`${name}\0`), size);
}

/**
 * Makes sure a fd from elsewhere is a regular file that cannot shrink (adding
 * F_SEAL_SHRINK when it may): its size, or -errno (see bb_buffer_check).
 */
export function bufferCheck(fd: number): number {
  const out = new BigUint64Array(1);
  const r = shim().bb_buffer_check(fd, out);
  return r < 0 ? r : Number(out[0]);
}

export interface Mapping {
  address: number;
  bytes: Uint8Array;
}

/** mmap(MAP_SHARED, read-write) of `size` bytes of `fd`, or -errno. */
export function bufferMap(fd: number, size: number): Mapping | number {
  const out = new BigUint64Array(1);
  const r = shim().bb_buffer_map(fd, size, out);
  if (r < 0) return r;
  const address = Number(out[0]);
  return { address, bytes: new Uint8Array(toArrayBuffer(address as Pointer, 0, size)) };
}

/** munmap; the caller detaches every view of the mapping first. */
export function bufferUnmap(address: number, size: number): number {
  return shim().bb_buffer_unmap(address as Pointer, size);
}
