/**
 * The sandboxee's side of comms for Bun programs running inside a sandbox:
 * ClientComms (Sandbox2's Comms client) and ClientBuffer.
 *
 *   import { ClientComms } from "bunbox/src/comms/client.ts";
 *   const comms = ClientComms.open();          // fd 1023
 *   const job = comms.recvJson<{ n: number }>();
 *   comms.sendInt32(job.n * 2);
 *
 * It must not need bunbox's native shim, which is not inside the sandbox: it
 * calls libc directly through bun:ffi (libc.ts, the one module outside
 * src/native/ allowed to). Calls are synchronous, blocking in poll() up to
 * the time limit: the sandboxee's program owns its control flow. The wire
 * format and the frame reader are the host's own (wire.ts, reader.ts), so
 * both sides accept and refuse exactly the same streams.
 */
import { CommsError } from "./error.ts";
import {
  CMSG_HEADER, EAGAIN, EINTR, F_ADD_SEALS, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, MAP_SHARED, MFD_ALLOW_SEALING,
  MFD_CLOEXEC, MSGHDR_SIZE, MSG_CMSG_CLOEXEC, MSG_CONTROL, MSG_CONTROLLEN, MSG_CTRUNC, MSG_DONTWAIT, MSG_FLAGS,
  MSG_IOV, MSG_IOVLEN, MSG_NOSIGNAL, POLLIN, POLLOUT, PROT_READ, PROT_WRITE, SCM_RIGHTS, SEEK_END, SOCK_STREAM,
  SOL_SOCKET, SO_PEERCRED, SO_TYPE, type Pointer, address, cmsgSpace, errno, libc, ptr, toArrayBuffer,
} from "./libc.ts";
import { FrameReader, type Transport } from "./reader.ts";
import {
  DEFAULT_COMMS_FD, type IntKind, type Kind, type Message,
  type RawFrame, TAG, channelLimits, checkOutgoing, checkTimeout, checkUserTag, decode, decodeAs, encodeFdCount, encodeHeader, encodeInt,
  encodeJson, encodeString, tagOf,
} from "./wire.ts";

export { CommsError } from "./error.ts";
export { namedFd, sandboxMeHere } from "./client-sandbox.ts";
export { TAG, type Message } from "./wire.ts";

export interface ClientCommsOptions {
  /** Largest payload accepted (and sent). Default 64 MiB. */
  maxMessageSize?: number;
  /** Time limit of each call in ms (Infinity: none). Default 10 000. */
  timeoutMs?: number;
}

export interface ClientCallOptions {
  timeoutMs?: number;
}

const SCM_MAX_FD = 253;
const EMPTY = new Uint8Array(0);

/** recvmsg/sendmsg with hand-built structs, reused for every call. */
class Socket implements Transport {
  private readonly msg = new DataView(new ArrayBuffer(MSGHDR_SIZE));
  private readonly iov = new DataView(new ArrayBuffer(32));
  private readonly control = new DataView(new ArrayBuffer(cmsgSpace(4 * SCM_MAX_FD)));
  private readonly pollfd = new DataView(new ArrayBuffer(8));
  received: number[] = [];
  truncated = false;

  constructor(readonly fd: number) {}

  recv(into: Uint8Array): number {
    this.iov.setBigUint64(0, address(into), true);
    this.iov.setBigUint64(8, BigInt(into.length), true);
    this.prepare(1, this.control.byteLength);
    const n = Number(libc().recvmsg(this.fd, ptr(this.msg), MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
    const e = n < 0 ? errno() : 0;
    this.received = [];
    this.truncated = false;
    if (n < 0) return -e;
    this.truncated = (this.msg.getInt32(MSG_FLAGS, true) & MSG_CTRUNC) !== 0;
    const used = Number(this.msg.getBigUint64(MSG_CONTROLLEN, true));
    for (let off = 0; off + CMSG_HEADER <= used; ) {
      const len = Number(this.control.getBigUint64(off, true));
      if (len < CMSG_HEADER) break;
      if (this.control.getInt32(off + 8, true) === SOL_SOCKET && this.control.getInt32(off + 12, true) === SCM_RIGHTS) {
        for (let i = 0; i < (len - CMSG_HEADER) / 4; i++) this.received.push(this.control.getInt32(off + CMSG_HEADER + 4 * i, true));
      }
      off += (len + 7) & ~7;
    }
    return n;
  }

  /** One sendmsg of head+body from byte `skip`, fds with the first byte: bytes sent or -errno. */
  send(head: Uint8Array, body: Uint8Array, skip: number, fds: readonly number[] | null): number {
    let n = 0;
    if (skip < head.length) {
      this.iov.setBigUint64(0, address(head.subarray(skip)), true);
      this.iov.setBigUint64(8, BigInt(head.length - skip), true);
      n++;
      skip = 0;
    } else {
      skip -= head.length;
    }
    if (body.length > skip) {
      this.iov.setBigUint64(16 * n, address(body.subarray(skip)), true);
      this.iov.setBigUint64(16 * n + 8, BigInt(body.length - skip), true);
      n++;
    }
    let controlLen = 0;
    if (fds && fds.length > 0) {
      controlLen = cmsgSpace(4 * fds.length);
      this.control.setBigUint64(0, BigInt(CMSG_HEADER + 4 * fds.length), true);
      this.control.setInt32(8, SOL_SOCKET, true);
      this.control.setInt32(12, SCM_RIGHTS, true);
      fds.forEach((fd, i) => this.control.setInt32(CMSG_HEADER + 4 * i, fd, true));
    }
    this.prepare(n, controlLen);
    const r = Number(libc().sendmsg(this.fd, ptr(this.msg), MSG_DONTWAIT | MSG_NOSIGNAL));
    return r < 0 ? -errno() : r;
  }

  /** poll() for `events` up to ms (-1: forever): > 0 ready, 0 timed out, -errno. */
  wait(events: number, ms: number): number {
    this.pollfd.setInt32(0, this.fd, true);
    this.pollfd.setInt16(4, events, true);
    this.pollfd.setInt16(6, 0, true);
    const r = libc().poll(ptr(this.pollfd), 1, ms);
    return r < 0 ? -errno() : r;
  }

  closeFd(fd: number): void {
    libc().close(fd);
  }

  private prepare(iovlen: number, controlLen: number): void {
    const m = this.msg;
    m.setBigUint64(0, 0n, true);
    m.setUint32(8, 0, true);
    m.setBigUint64(MSG_IOV, address(this.iov), true);
    m.setBigUint64(MSG_IOVLEN, BigInt(iovlen), true);
    m.setBigUint64(MSG_CONTROL, controlLen > 0 ? address(this.control) : 0n, true);
    m.setBigUint64(MSG_CONTROLLEN, BigInt(controlLen), true);
    m.setInt32(MSG_FLAGS, 0, true);
  }
}

function ioError(what: string, call: string, e: number): CommsError {
  if (e === 32 || e === 104) return new CommsError("eof", `${what}: the host closed the channel (errno ${e})`);
  return new CommsError("io", `${what}: ${call} failed (errno ${e})`);
}

export class ClientComms {
  readonly fd: number;
  readonly maxMessageSize: number;
  readonly timeoutMs: number;
  private readonly socket: Socket;
  private readonly reader: FrameReader;
  private failure: CommsError | undefined;

  /** The sandboxee's end of the channel (fd 1023 unless the executor mapped another). */
  static open(fd: number = DEFAULT_COMMS_FD, options: ClientCommsOptions = {}): ClientComms {
    return new ClientComms(fd, options);
  }

  constructor(fd: number, options: ClientCommsOptions = {}) {
    if (!Number.isInteger(fd) || fd < 0) throw new CommsError("argument", `ClientComms: bad fd ${fd}`);
    const type = new Int32Array(1);
    const len = new Uint32Array([4]);
    if (libc().getsockopt(fd, SOL_SOCKET, SO_TYPE, type, len) < 0) {
      throw new CommsError("io", `ClientComms: fd ${fd} is not a socket (errno ${errno()}); is the comms fd mapped?`);
    }
    if (type[0] !== SOCK_STREAM) throw new CommsError("argument", `ClientComms: fd ${fd} is not a SOCK_STREAM socket`);
    const limits = channelLimits(options, "ClientComms");
    this.fd = fd;
    this.maxMessageSize = limits.maxMessageSize;
    this.timeoutMs = limits.timeoutMs;
    this.socket = new Socket(fd);
    this.reader = new FrameReader(this.socket, limits.maxMessageSize);
  }

  get isBroken(): boolean {
    return this.failure !== undefined;
  }

  sendBool(v: boolean, o?: ClientCallOptions): void { this.send(TAG.BOOL, Uint8Array.of(v ? 1 : 0), null, "sendBool", o); }
  sendInt8(v: number, o?: ClientCallOptions): void { this.sendInt("int8", v, "sendInt8", o); }
  sendInt16(v: number, o?: ClientCallOptions): void { this.sendInt("int16", v, "sendInt16", o); }
  sendInt32(v: number, o?: ClientCallOptions): void { this.sendInt("int32", v, "sendInt32", o); }
  sendInt64(v: bigint | number, o?: ClientCallOptions): void { this.sendInt("int64", v, "sendInt64", o); }
  sendUint8(v: number, o?: ClientCallOptions): void { this.sendInt("uint8", v, "sendUint8", o); }
  sendUint16(v: number, o?: ClientCallOptions): void { this.sendInt("uint16", v, "sendUint16", o); }
  sendUint32(v: number, o?: ClientCallOptions): void { this.sendInt("uint32", v, "sendUint32", o); }
  sendUint64(v: bigint | number, o?: ClientCallOptions): void { this.sendInt("uint64", v, "sendUint64", o); }
  sendString(v: string, o?: ClientCallOptions): void { this.send(TAG.STRING, encodeString(v, "sendString"), null, "sendString", o); }
  sendBytes(v: Uint8Array, o?: ClientCallOptions): void { this.send(TAG.BYTES, v, null, "sendBytes", o); }
  sendJson(v: unknown, o?: ClientCallOptions): void { this.send(TAG.JSON, encodeJson(v, "sendJson"), null, "sendJson", o); }
  sendFd(fd: number, o?: ClientCallOptions): void { this.sendFds([fd], o); }
  sendFds(fds: readonly number[], o?: ClientCallOptions): void {
    this.send(TAG.FD, encodeFdCount(fds, "sendFds"), fds, "sendFds", o);
  }
  sendTagged(tag: number, v: Uint8Array, o?: ClientCallOptions): void {
    checkUserTag(tag, "sendTagged");
    this.send(tag, v, null, "sendTagged", o);
  }

  recvBool(o?: ClientCallOptions): boolean { return this.recvAs("bool", "recvBool", o) as boolean; }
  recvInt8(o?: ClientCallOptions): number { return this.recvAs("int8", "recvInt8", o) as number; }
  recvInt16(o?: ClientCallOptions): number { return this.recvAs("int16", "recvInt16", o) as number; }
  recvInt32(o?: ClientCallOptions): number { return this.recvAs("int32", "recvInt32", o) as number; }
  recvInt64(o?: ClientCallOptions): bigint { return this.recvAs("int64", "recvInt64", o) as bigint; }
  recvUint8(o?: ClientCallOptions): number { return this.recvAs("uint8", "recvUint8", o) as number; }
  recvUint16(o?: ClientCallOptions): number { return this.recvAs("uint16", "recvUint16", o) as number; }
  recvUint32(o?: ClientCallOptions): number { return this.recvAs("uint32", "recvUint32", o) as number; }
  recvUint64(o?: ClientCallOptions): bigint { return this.recvAs("uint64", "recvUint64", o) as bigint; }
  recvString(o?: ClientCallOptions): string { return this.recvAs("string", "recvString", o) as string; }
  recvBytes(o?: ClientCallOptions): Uint8Array { return this.recvAs("bytes", "recvBytes", o) as Uint8Array; }
  recvJson<T = unknown>(o?: ClientCallOptions): T { return this.recvAs("json", "recvJson", o) as T; }
  recvFds(o?: ClientCallOptions): number[] { return this.recvAs("fd", "recvFds", o) as number[]; }
  recvFd(o?: ClientCallOptions): number {
    return this.recvWith("recvFd", o, (f) => {
      const fds = decodeAs(f, "fd", "recvFd").value as number[];
      if (fds.length !== 1) throw new CommsError("type", `recvFd: expected 1 fd, got an FD frame with ${fds.length}`);
      return fds[0];
    }) as number;
  }
  recvTagged(tag?: number, o?: ClientCallOptions): { tag: number; value: Uint8Array } {
    if (tag !== undefined) checkUserTag(tag, "recvTagged");
    return this.recvWith("recvTagged", o, (f) => {
      const m = decodeAs(f, "user", "recvTagged", tag);
      return { tag: m.tag, value: m.value as Uint8Array };
    }) as { tag: number; value: Uint8Array };
  }
  recv(o?: ClientCallOptions): Message {
    return this.recvWith("recv", o, decode) as Message;
  }

  /** The host's pid, uid and gid (SO_PEERCRED), as the kernel saw them. */
  peerCredentials(): { pid: number; uid: number; gid: number } {
    this.check("peerCredentials");
    const out = new Uint32Array(3);
    const len = new Uint32Array([12]);
    if (libc().getsockopt(this.fd, SOL_SOCKET, SO_PEERCRED, out, len) < 0) {
      throw ioError("peerCredentials", "getsockopt(SO_PEERCRED)", errno());
    }
    return { pid: out[0]!, uid: out[1]!, gid: out[2]! };
  }

  close(): void {
    if (this.failure?.code === "closed") return;
    this.failure = new CommsError("closed", "the channel was closed");
    this.reader.discard();
    libc().close(this.fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private check(what: string): void {
    const cause = this.failure;
    if (!cause) return;
    throw cause.code === "closed"
      ? new CommsError("closed", `${what}: the channel was closed`)
      : new CommsError("broken", `${what}: the channel is broken: ${cause.message}`, { cause });
  }

  private fail(e: unknown): never {
    const err = e instanceof CommsError ? e : new CommsError("io", String(e), { cause: e });
    if (!this.failure) {
      this.failure = err;
      this.reader.discard();
    }
    throw err;
  }

  private deadline(o: ClientCallOptions | undefined, what: string): number {
    const ms = o?.timeoutMs === undefined ? this.timeoutMs : checkTimeout(o.timeoutMs, what);
    return ms === Infinity ? Infinity : performance.now() + ms;
  }

  /** Waits for `events` until the deadline; false when it passed. */
  private waitFor(events: number, deadline: number, what: string): boolean {
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      const r = this.socket.wait(events, left === Infinity ? -1 : Math.min(Math.ceil(left), 0x7fff_ffff));
      if (r > 0) return true;
      if (r < 0 && -r !== EINTR) this.fail(ioError(what, "poll", -r));
    }
  }

  private sendInt(kind: IntKind, v: number | bigint, what: string, o?: ClientCallOptions): void {
    this.send(tagOf(kind), encodeInt(kind, v, what), null, what, o);
  }

  private send(tag: number, body: Uint8Array, fds: readonly number[] | null, what: string, o?: ClientCallOptions): void {
    this.check(what);
    checkOutgoing(body, this.maxMessageSize, what);
    const head = encodeHeader(tag, body.length);
    const total = head.length + body.length;
    const deadline = this.deadline(o, what);
    let sent = 0;
    while (sent < total) {
      const r = this.socket.send(head, body.length > 0 ? body : EMPTY, sent, sent === 0 ? fds : null);
      if (r === -EAGAIN) {
        if (!this.waitFor(POLLOUT, deadline, what)) {
          const err = new CommsError("timeout", `${what}: the host did not take the message in time (${sent} of ${total} bytes sent)`);
          if (sent > 0) this.fail(err);
          throw err;
        }
        continue;
      }
      if (r === -EINTR) continue;
      if (r < 0) this.fail(ioError(what, "sendmsg", -r));
      if (r === 0) this.fail(new CommsError("io", `${what}: sendmsg sent nothing`));
      sent += r;
    }
  }

  private recvAs(kind: Exclude<Kind, "user">, what: string, o?: ClientCallOptions): unknown {
    return this.recvWith(what, o, (f) => decodeAs(f, kind, what).value);
  }

  private recvWith(what: string, o: ClientCallOptions | undefined, decodeFrame: (f: RawFrame) => unknown): unknown {
    this.check(what);
    const deadline = this.deadline(o, what);
    for (;;) {
      let frame: RawFrame | null;
      try {
        frame = this.reader.next();
      } catch (e) {
        this.fail(e);
      }
      if (frame) {
        try {
          return decodeFrame(frame);
        } catch (e) {
          for (const fd of frame.fds) libc().close(fd);
          this.fail(e);
        }
      }
      if (!this.waitFor(POLLIN, deadline, what)) {
        const progress = this.reader.progress();
        throw new CommsError("timeout", `${what}: no message in time${progress ? ` (${progress})` : ""}`);
      }
    }
  }
}

/** ClientComms's SharedBuffer: a memfd mapped MAP_SHARED, through libc. */
export class ClientBuffer {
  private mapped = true;

  private constructor(
    readonly fd: number,
    readonly size: number,
    readonly bytes: Uint8Array,
    private readonly at: number,
  ) {}

  /** A new buffer sealed against resizing (so the host may map it); send `fd` with sendFd. */
  static create(size: number): ClientBuffer {
    if (!Number.isSafeInteger(size) || size < 1) throw new CommsError("argument", `ClientBuffer.create: bad size ${size}`);
    const c = libc();
    const fd = c.memfd_create(new TextEncoder().encode("bunbox-buffer\0"), MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) throw new CommsError("io", `ClientBuffer.create: memfd_create failed (errno ${errno()})`);
    if (c.ftruncate(fd, size) < 0 || c.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
      const e = errno();
      c.close(fd);
      throw new CommsError("io", `ClientBuffer.create: sizing the memfd failed (errno ${e})`);
    }
    return ClientBuffer.map(fd, size);
  }

  /** Maps a buffer the host sent (recvFd); takes ownership of fd. */
  static fromFd(fd: number): ClientBuffer {
    const size = Number(libc().lseek(fd, 0, SEEK_END));
    if (size <= 0) {
      const e = size < 0 ? errno() : 0;
      libc().close(fd);
      throw new CommsError("argument", `ClientBuffer.fromFd: fd ${fd} is not a non-empty file${e ? ` (errno ${e})` : ""}`);
    }
    return ClientBuffer.map(fd, size);
  }

  private static map(fd: number, size: number): ClientBuffer {
    const at = Number(libc().mmap(null, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    if (at === -1 || at === 0) {
      const e = errno();
      libc().close(fd);
      throw new CommsError("io", `ClientBuffer: mmap of ${size} bytes failed (errno ${e})`);
    }
    return new ClientBuffer(fd, size, new Uint8Array(toArrayBuffer(at as Pointer, 0, size)), at);
  }

  /** Detaches `bytes`, unmaps, closes the fd. */
  close(): void {
    if (!this.mapped) return;
    this.mapped = false;
    (this.bytes.buffer as ArrayBuffer).transfer(0);
    libc().munmap(this.at as Pointer, this.size);
    libc().close(this.fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
