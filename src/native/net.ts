/**
 * Typed wrappers over the proxy's socket calls (csrc/net_socket.c) and its
 * relay thread (csrc/net_relay.c). Errors come back as negative errno, never exceptions:
 * src/net/ decides what each means.
 */
import { JSCallback, ptr } from "bun:ffi";
import { BunboxError } from "../errors.ts";
import { describeErrno } from "./errno.ts";
import { shim } from "./library.ts";

export const SHUT_WR = 1;
export const SHUT_RDWR = 2;

/** Why a tunnel ended (besides -errno, an error on one of its sockets). */
export const RELAY_CLOSED = 0;
export const RELAY_IDLE = 1;
export const RELAY_HALFOPEN = 2;
export const RELAY_ABORTED = 3;

/**
 * Checks that `fd` is a TCP socket, listening or connected as `listening`
 * says, and makes it non-blocking (TCP_NODELAY on a connected one). 0 or
 * -errno: -EPROTOTYPE (not a stream), -EAFNOSUPPORT (not IPv4/IPv6),
 * -EINVAL (listening when it should not be, or the reverse).
 */
export function adoptSocket(fd: number, listening: boolean): number {
  return shim().bb_net_adopt(fd, listening ? 1 : 0);
}

/** One pending connection of a non-blocking listener, or -errno (-EAGAIN: none). */
export function acceptOne(listener: number): number {
  return shim().bb_net_accept(listener);
}

/** Non-blocking recv into `into` (peek: leave the bytes queued): bytes, 0 at EOF, or -errno. */
export function recvInto(fd: number, into: Uint8Array, peek: boolean): number {
  return shim().bb_net_recv(fd, ptr(into), into.length, peek ? 1 : 0);
}

/** Non-blocking send: bytes sent or -errno (-EAGAIN: wait until writable). */
export function sendBytes(fd: number, bytes: Uint8Array): number {
  return bytes.length === 0 ? 0 : shim().bb_net_send(fd, ptr(bytes), bytes.length);
}

/** SO_RCVLOWAT: readable only once `bytes` are queued (or at EOF). */
export function setRecvLowWater(fd: number, bytes: number): number {
  return shim().bb_net_rcvlowat(fd, bytes);
}

export function shutdownSocket(fd: number, how: number): number {
  return shim().bb_net_shutdown(fd, how);
}

/** A socket connecting to `address` (4 or 16 bytes) port `port`, or -errno; writable when done. */
export function startConnect(address: Uint8Array, port: number): number {
  return shim().bb_net_connect(ptr(address), address.length, port);
}

/** 0 once a connect has completed, -ENOTCONN while in progress. */
export function connected(fd: number): number {
  return shim().bb_net_connected(fd);
}

/** SO_ERROR after a connect: 0 or -errno. */
export function socketError(fd: number): number {
  return shim().bb_net_sockerr(fd);
}

/** The soft RLIMIT_NOFILE. */
export function fdLimit(): number {
  return Number(shim().bb_net_fd_limit());
}

export interface RelayEnd {
  /** RELAY_CLOSED, RELAY_IDLE, RELAY_HALFOPEN, RELAY_ABORTED, or -errno. */
  reason: number;
  /** For -errno: which socket it came from. */
  side: "client" | "upstream";
  /** Bytes client → upstream and upstream → client. */
  up: number;
  down: number;
}

const ends = new Map<number, (end: RelayEnd) => void>();
let callback: JSCallback | undefined;
let keepAlive: ReturnType<typeof setInterval> | undefined;

function start(): void {
  if (callback) return;
  callback = new JSCallback(
    (handle: number, reason: number, side: number, up: number, down: number) => {
      const done = ends.get(handle);
      ends.delete(handle);
      updateKeepAlive();
      done?.({ reason, side: side === 0 ? "client" : "upstream", up, down });
    },
    { args: ["u32", "i32", "i32", "f64", "f64"], returns: "void", threadsafe: true },
  );
  const r = shim().bb_net_relay_start(callback);
  if (r < 0) {
    callback.close();
    callback = undefined;
    throw new BunboxError("net", `cannot start the relay thread: ${describeErrno(-r)}`);
  }
}

/** The threadsafe callback does not keep the event loop alive; a ref'd timer does while tunnels run. */
function updateKeepAlive(): void {
  if (ends.size > 0 && !keepAlive) keepAlive = setInterval(() => {}, 1 << 30);
  else if (ends.size === 0 && keepAlive) {
    clearInterval(keepAlive);
    keepAlive = undefined;
  }
}

export interface Tunnel {
  /** Lets a gated tunnel read from its client. */
  open(): void;
  /** Ends it now; `onEnd` still runs (RELAY_ABORTED). */
  abort(): void;
}

/**
 * Hands two connected sockets to the relay thread, which owns them from here
 * on (also when this fails: they are closed). Returns the tunnel, or -errno.
 */
export function relay(
  client: number,
  upstream: number,
  opts: { gated: boolean; idleMs: number; halfOpenMs: number },
  onEnd: (end: RelayEnd) => void,
): Tunnel | number {
  start();
  const handle = shim().bb_net_relay(client, upstream, opts.gated ? 1 : 0, opts.idleMs, opts.halfOpenMs);
  if (handle < 0) return handle;
  ends.set(handle, onEnd);
  updateKeepAlive();
  return {
    open: () => void shim().bb_net_relay_open(handle),
    abort: () => void shim().bb_net_relay_abort(handle),
  };
}

/** Tunnels still running (tests check nothing leaks). */
export function openTunnels(): number {
  return ends.size;
}
