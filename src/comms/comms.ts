/**
 * Comms, host side (Sandbox2's Comms): typed messages and fds over a unix
 * stream socket shared with a sandboxee, without ever blocking the
 * JavaScript thread (channel.ts says how).
 *
 *   const { comms, peerFd } = Comms.pairWithFd();   // peerFd: the sandboxee's fd 1023
 *   await comms.sendString("hello");
 *   const n = await comms.recvInt32({ timeoutMs: 500 });
 *
 * Each call has a time limit: the Comms's timeoutMs (10 s by default) or
 * the call's own, Infinity for none. A receive that times out leaves the
 * channel usable; a malformed frame, a frame of another type than asked for,
 * EOF, or a failed system call break it (see CommsError). The wire format is
 * in wire.ts.
 */
import { describeErrno } from "../native/errno.ts";
import { socketpair, type PeerCredentials } from "../native/comms.ts";
import { type CallOptions, Channel, type CommsOptions } from "./channel.ts";
import { CommsError } from "./error.ts";
import {
  type IntKind, type Kind, type Message, TAG, checkUserTag, decode, decodeAs, encodeFdCount, encodeInt, encodeJson,
  encodeString, tagOf,
} from "./wire.ts";

export type { CallOptions, CommsOptions } from "./channel.ts";
export type { PeerCredentials } from "../native/comms.ts";

function newPair(): [number, number] {
  const r = socketpair();
  if (typeof r === "number") throw new CommsError("io", `socketpair(AF_UNIX, SOCK_STREAM) failed: ${describeErrno(-r)}`);
  return r;
}

export class Comms {
  private readonly channel: Channel;

  /** Two connected Comms over a fresh socketpair (both ends O_CLOEXEC). */
  static pair(options: CommsOptions = {}): [Comms, Comms] {
    const [a, b] = newPair();
    return [new Comms(a, options), new Comms(b, options)];
  }

  /**
   * One Comms and the other end as a raw fd (O_CLOEXEC), for a child: map
   * `peerFd` into it (the sandboxee expects fd 1023), then close `peerFd`
   * here after the spawn, so that the child's exit reads as EOF.
   */
  static pairWithFd(options: CommsOptions = {}): { comms: Comms; peerFd: number } {
    const [a, b] = newPair();
    return { comms: new Comms(a, options), peerFd: b };
  }

  /** Takes ownership of `fd`, a connected AF_UNIX SOCK_STREAM socket: close() closes it. */
  constructor(fd: number, options: CommsOptions = {}) {
    this.channel = new Channel(fd, options);
  }

  get fd(): number {
    return this.channel.fd;
  }
  get maxMessageSize(): number {
    return this.channel.maxMessageSize;
  }
  get timeoutMs(): number {
    return this.channel.timeoutMs;
  }
  /** The channel broke (or was closed); every call now throws. */
  get isBroken(): boolean {
    return this.channel.isBroken;
  }

  // ---- sending -------------------------------------------------------------

  sendBool(value: boolean, options?: CallOptions): Promise<void> {
    return this.channel.send(TAG.BOOL, Uint8Array.of(value ? 1 : 0), null, "sendBool", options);
  }
  sendInt8(value: number, options?: CallOptions): Promise<void> {
    return this.sendInt("int8", value, "sendInt8", options);
  }
  sendInt16(value: number, options?: CallOptions): Promise<void> {
    return this.sendInt("int16", value, "sendInt16", options);
  }
  sendInt32(value: number, options?: CallOptions): Promise<void> {
    return this.sendInt("int32", value, "sendInt32", options);
  }
  sendInt64(value: bigint | number, options?: CallOptions): Promise<void> {
    return this.sendInt("int64", value, "sendInt64", options);
  }
  sendUint8(value: number, options?: CallOptions): Promise<void> {
    return this.sendInt("uint8", value, "sendUint8", options);
  }
  sendUint16(value: number, options?: CallOptions): Promise<void> {
    return this.sendInt("uint16", value, "sendUint16", options);
  }
  sendUint32(value: number, options?: CallOptions): Promise<void> {
    return this.sendInt("uint32", value, "sendUint32", options);
  }
  sendUint64(value: bigint | number, options?: CallOptions): Promise<void> {
    return this.sendInt("uint64", value, "sendUint64", options);
  }
  sendString(value: string, options?: CallOptions): Promise<void> {
    return this.channel.guard("sendString", () => this.channel.send(TAG.STRING, encodeString(value, "sendString"), null, "sendString", options));
  }
  /** The bytes are sent from `value` itself: do not change it until the promise settles. */
  sendBytes(value: Uint8Array, options?: CallOptions): Promise<void> {
    return this.channel.send(TAG.BYTES, value, null, "sendBytes", options);
  }
  sendJson(value: unknown, options?: CallOptions): Promise<void> {
    return this.channel.guard("sendJson", () => this.channel.send(TAG.JSON, encodeJson(value, "sendJson"), null, "sendJson", options));
  }
  /** Sends a duplicate of `fd` (SCM_RIGHTS); keep `fd` open until the promise settles. */
  sendFd(fd: number, options?: CallOptions): Promise<void> {
    return this.sendFds([fd], options);
  }
  /** 1 to 16 fds in one FD frame. */
  sendFds(fds: readonly number[], options?: CallOptions): Promise<void> {
    return this.channel.guard("sendFds", () =>
      this.channel.send(TAG.FD, encodeFdCount(fds, "sendFds"), Int32Array.from(fds), "sendFds", options));
  }
  /** A frame with a user tag (0x80000000..0xffffffff) and raw bytes. */
  sendTagged(tag: number, value: Uint8Array, options?: CallOptions): Promise<void> {
    return this.channel.guard("sendTagged", () => {
      checkUserTag(tag, "sendTagged");
      return this.channel.send(tag, value, null, "sendTagged", options);
    });
  }

  // ---- receiving -----------------------------------------------------------

  recvBool(options?: CallOptions): Promise<boolean> {
    return this.recvAs("bool", "recvBool", options) as Promise<boolean>;
  }
  recvInt8(options?: CallOptions): Promise<number> {
    return this.recvAs("int8", "recvInt8", options) as Promise<number>;
  }
  recvInt16(options?: CallOptions): Promise<number> {
    return this.recvAs("int16", "recvInt16", options) as Promise<number>;
  }
  recvInt32(options?: CallOptions): Promise<number> {
    return this.recvAs("int32", "recvInt32", options) as Promise<number>;
  }
  recvInt64(options?: CallOptions): Promise<bigint> {
    return this.recvAs("int64", "recvInt64", options) as Promise<bigint>;
  }
  recvUint8(options?: CallOptions): Promise<number> {
    return this.recvAs("uint8", "recvUint8", options) as Promise<number>;
  }
  recvUint16(options?: CallOptions): Promise<number> {
    return this.recvAs("uint16", "recvUint16", options) as Promise<number>;
  }
  recvUint32(options?: CallOptions): Promise<number> {
    return this.recvAs("uint32", "recvUint32", options) as Promise<number>;
  }
  recvUint64(options?: CallOptions): Promise<bigint> {
    return this.recvAs("uint64", "recvUint64", options) as Promise<bigint>;
  }
  recvString(options?: CallOptions): Promise<string> {
    return this.recvAs("string", "recvString", options) as Promise<string>;
  }
  recvBytes(options?: CallOptions): Promise<Uint8Array> {
    return this.recvAs("bytes", "recvBytes", options) as Promise<Uint8Array>;
  }
  recvJson<T = unknown>(options?: CallOptions): Promise<T> {
    return this.recvAs("json", "recvJson", options) as Promise<T>;
  }
  /** One fd (O_CLOEXEC), now the caller's to close. */
  recvFd(options?: CallOptions): Promise<number> {
    return this.channel.recv("recvFd", options, (frame) => {
      const fds = decodeAs(frame, "fd", "recvFd").value as number[];
      if (fds.length !== 1) throw new CommsError("type", `recvFd: expected 1 fd, got an FD frame with ${fds.length}`);
      return fds[0];
    }) as Promise<number>;
  }
  /** The fds of one FD frame (O_CLOEXEC), now the caller's to close. */
  recvFds(options?: CallOptions): Promise<number[]> {
    return this.recvAs("fd", "recvFds", options) as Promise<number[]>;
  }
  /** A user-tagged frame; when `tag` is given, a frame of another tag is an error. */
  recvTagged(tag?: number, options?: CallOptions): Promise<{ tag: number; value: Uint8Array }> {
    return this.channel.guard("recvTagged", () => {
      if (tag !== undefined) checkUserTag(tag, "recvTagged");
      return this.channel.recv("recvTagged", options, (frame) => {
        const m = decodeAs(frame, "user", "recvTagged", tag);
        return { tag: m.tag, value: m.value as Uint8Array };
      }) as Promise<{ tag: number; value: Uint8Array }>;
    });
  }
  /** The next message, whatever its type. */
  recv(options?: CallOptions): Promise<Message> {
    return this.channel.recv("recv", options, decode) as Promise<Message>;
  }

  // ---- the rest ------------------------------------------------------------

  /**
   * SO_PEERCRED: the pid, uid and gid of the process that made the peer's
   * end, as of then (connect, or socketpair). For a pair made by Comms.pair
   * or pairWithFd that is this process, not the child that holds the other
   * end; a socket the peer made itself and sent over (recvFd) names the peer.
   */
  peerCredentials(): PeerCredentials {
    return this.channel.peerCredentials();
  }

  /** Fails pending calls with "closed", closes fds received but not delivered, and the socket. */
  close(): void {
    this.channel.close();
  }

  /**
   * For when the peer's process has ended: closes the socket but keeps what
   * the peer sent before it ended, for receives to come (then "eof").
   */
  finish(): void {
    this.channel.finish();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private sendInt(kind: IntKind, value: number | bigint, what: string, options?: CallOptions): Promise<void> {
    return this.channel.guard(what, () => this.channel.send(tagOf(kind), encodeInt(kind, value, what), null, what, options));
  }

  private recvAs(kind: Exclude<Kind, "user">, what: string, options?: CallOptions): Promise<unknown> {
    return this.channel.recv(what, options, (frame) => decodeAs(frame, kind, what).value);
  }
}
