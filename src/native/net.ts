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

/** A datagram's sender, as the kernel gave it (for the answer). */
export interface Sender {
  readonly addr: Uint8Array;
  readonly len: number;
}

/**
 * One datagram from a non-blocking UDP socket into `into`: its length and
 * sender, or -errno (-EAGAIN: none; -EMSGSIZE: larger than `into`, dropped).
 */
export function recvDatagram(fd: number, into: Uint8Array): { length: number; from: Sender } | number {
  const addr = new Uint8Array(28);
  const len = new Uint32Array(1);
  const n = shim().bb_net_recvfrom(fd, ptr(into), into.length, ptr(addr), ptr(len));
  return n < 0 ? n : { length: n, from: { addr, len: len[0]! } };
}

/** One datagram to `to`, without blocking: bytes or -errno. */
export function sendDatagram(fd: number, bytes: Uint8Array, to: Sender): number {
  return shim().bb_net_sendto(fd, ptr(bytes), bytes.length, ptr(to.addr), to.len);
}

/** O_NONBLOCK on fd: 0 or -errno. */
export function setNonBlocking(fd: number): number {
  return shim().bb_net_nonblock(fd);
}

/**
 * Transparent mode: the sockaddr a connect() waiting in notification `id`
 * of `listener` passed, read from task `pid`'s memory (at most 28 bytes), or
 * -errno (-ENOENT: the notification is gone).
 */
export function interceptAddress(listener: number, id: bigint, pid: number, addr: bigint, len: number): Uint8Array | number {
  const out = new Uint8Array(28);
  const n = shim().bb_net_intercept_addr(listener, id, pid, addr, Math.min(len, 28), ptr(out));
  return n < 0 ? n : out.subarray(0, n);
}

/**
 * A dup of that task's socket `fd`, when it is a TCP socket of the same
 * network namespace as `ref`; else -errno (-EPROTOTYPE: not TCP, -EXDEV:
 * another namespace, -ENOENT: the notification is gone).
 */
export function interceptTake(listener: number, id: bigint, pid: number, fd: number, ref: number): number {
  return shim().bb_net_intercept_take(listener, id, pid, fd, ref);
}

/** Connects the taken socket to the proxy on its namespace's 127.0.0.1:`port`: its local port, or -errno. */
export function interceptJoin(sock: number, port: number): number {
  return shim().bb_net_intercept_join(sock, port);
}

/** A connected socket's remote port, or -errno. */
export function peerPort(sock: number): number {
  return shim().bb_net_peer_port(sock);
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

/** The directions of a tunnel that can wait for open() (csrc/net_relay.c GATE_*). */
export const GATE_UP = 1;
export const GATE_DOWN = 2;

export interface Tunnel {
  /** Lets the gated directions in `gates` (GATE_UP: from the client, GATE_DOWN: from the server) move. */
  open(gates: number): void;
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
  opts: { gates: number; idleMs: number; halfOpenMs: number },
  onEnd: (end: RelayEnd) => void,
): Tunnel | number {
  start();
  const handle = shim().bb_net_relay(client, upstream, opts.gates, opts.idleMs, opts.halfOpenMs);
  if (handle < 0) return handle;
  ends.set(handle, onEnd);
  updateKeepAlive();
  return {
    open: (gates) => void shim().bb_net_relay_open(handle, gates),
    abort: () => void shim().bb_net_relay_abort(handle),
  };
}

/** Tunnels still running (tests check nothing leaks). */
export function openTunnels(): number {
  return ends.size;
}
