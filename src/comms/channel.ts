/**
 * The engine under Comms: whole frames in and out of a unix stream socket
 * without ever blocking the JavaScript thread. Comms (comms.ts) puts typed
 * messages on top.
 *
 * Every system call is non-blocking (MSG_DONTWAIT). When the socket has
 * nothing to read, or no room to write, the call waits for the reactor
 * thread (src/native/reactor.ts) to report EPOLLIN or EPOLLOUT, then tries
 * again. Watches are open only while a call waits, so an idle channel does
 * not keep the process alive. The EPOLLOUT watch is on a dup of the socket:
 * the reactor allows one watch per fd number, and epoll keys its interest
 * list by (file, fd), so the dup gets its own.
 *
 * Sends and receives queue in call order, each direction on its own:
 * concurrent sends never interleave their frames, and receives get frames in
 * arrival order. Each call has a time limit counted from the call. A receive
 * that times out leaves the channel usable (a frame that had partly arrived
 * stays buffered for the next receive); so does a send that times out before
 * its first byte went out. Every other failure breaks the channel: pending
 * calls fail with it, received fds not yet delivered are closed, and later
 * calls throw "broken" with the first error as the cause.
 */
import { after } from "../timer.ts";
import { closeFd } from "../native/sys.ts";
import { describeErrno } from "../native/errno.ts";
import {
  EAGAIN, EPOLLOUT, RecvScratch, dupFd, peerCredentials, recvFrame, sendFrame, type PeerCredentials,
} from "../native/comms.ts";
import { EPOLLIN, type Watch, watch } from "../native/reactor.ts";
import { CommsError } from "./error.ts";
import { FrameReader, type Transport } from "./reader.ts";
import { type RawFrame, channelLimits, checkOutgoing, checkTimeout, encodeHeader } from "./wire.ts";

export interface CommsOptions {
  /** Largest payload accepted (and sent), checked before allocating. Default 64 MiB, at most 4 GiB - 1. */
  maxMessageSize?: number;
  /** Time limit of each call in ms (Infinity: none). Default 10 000. */
  timeoutMs?: number;
}

export interface CallOptions {
  /** This call's time limit in ms, instead of the Comms's. */
  timeoutMs?: number;
}

interface RecvOp {
  what: string;
  decode: (frame: RawFrame) => unknown;
  resolve: (value: unknown) => void;
  reject: (error: CommsError) => void;
  cancelTimer: () => void;
}

interface SendOp {
  what: string;
  head: Uint8Array;
  body: Uint8Array;
  fds: Int32Array | null;
  sent: number;
  resolve: () => void;
  reject: (error: CommsError) => void;
  cancelTimer: () => void;
}

function asCommsError(e: unknown): CommsError {
  if (e instanceof CommsError) return e;
  return new CommsError("io", (e as Error)?.message ?? String(e), { cause: e });
}

class SocketTransport implements Transport {
  private readonly scratch = new RecvScratch();
  constructor(private readonly fd: number) {}
  recv(into: Uint8Array): number {
    return recvFrame(this.fd, into, this.scratch);
  }
  get received(): number[] {
    return this.scratch.received;
  }
  get truncated(): boolean {
    return this.scratch.truncated;
  }
  closeFd(fd: number): void {
    closeFd(fd);
  }
}

export class Channel {
  readonly fd: number;
  readonly maxMessageSize: number;
  readonly timeoutMs: number;
  private readonly reader: FrameReader;
  private readonly recvOps: RecvOp[] = [];
  private readonly sendOps: SendOp[] = [];
  private readWatch: Watch | undefined;
  private writeWatch: Watch | undefined;
  private writeFd = -1;
  private failure: CommsError | undefined;
  private closed = false;
  /** After finish(): the frames the peer left, served to receives before `leftoverEnd`. */
  private leftovers: RawFrame[] | undefined;
  private leftoverEnd: CommsError | undefined;

  /** Takes ownership of `fd`, a connected AF_UNIX SOCK_STREAM socket: close() closes it. */
  constructor(fd: number, options: CommsOptions = {}) {
    if (!Number.isInteger(fd) || fd < 0) throw new CommsError("argument", `Comms: bad fd ${fd}`);
    const limits = channelLimits(options, "Comms");
    this.fd = fd;
    this.maxMessageSize = limits.maxMessageSize;
    this.timeoutMs = limits.timeoutMs;
    this.reader = new FrameReader(new SocketTransport(fd), limits.maxMessageSize);
  }

  get isBroken(): boolean {
    return this.failure !== undefined;
  }

  /** Queues one frame; resolves once all of it is in the socket. `what` names the call in errors. */
  send(tag: number, body: Uint8Array, fds: Int32Array | null, what: string, options?: CallOptions): Promise<void> {
    return this.guard(what, () => {
      this.check(what);
      if (this.leftovers) throw new CommsError("eof", `${what}: the peer has ended`);
      checkOutgoing(body, this.maxMessageSize, what);
      const ms = this.timeoutOf(options, what);
      return new Promise<void>((resolve, reject) => {
        const op: SendOp = { what, head: encodeHeader(tag, body.length), body, fds, sent: 0, resolve, reject, cancelTimer: () => {} };
        op.cancelTimer = after(ms, () => this.sendTimedOut(op, ms));
        this.sendOps.push(op);
        if (this.sendOps.length === 1) this.pumpSend();
      });
    });
  }

  /** The next frame, through `decodeFrame` (whose throw breaks the channel). */
  recv<T>(what: string, options: CallOptions | undefined, decodeFrame: (frame: RawFrame) => T): Promise<T> {
    return this.guard(what, () => {
      this.check(what);
      const ms = this.timeoutOf(options, what);
      return new Promise<T>((resolve, reject) => {
        const op: RecvOp = { what, decode: decodeFrame, resolve: resolve as (v: unknown) => void, reject, cancelTimer: () => {} };
        op.cancelTimer = after(ms, () => this.recvTimedOut(op, ms));
        this.recvOps.push(op);
        if (this.recvOps.length === 1) this.pumpRecv();
      });
    });
  }

  peerCredentials(): PeerCredentials {
    this.check("peerCredentials");
    if (this.leftovers) throw new CommsError("eof", "peerCredentials: the peer has ended");
    const r = peerCredentials(this.fd);
    if (typeof r === "number") throw new CommsError("io", `getsockopt(SO_PEERCRED) failed: ${describeErrno(-r)}`);
    return r;
  }

  close(): void {
    if (this.closed) {
      this.fail(new CommsError("closed", "the channel was closed")); // after finish(): drop what is left
      return;
    }
    this.closed = true;
    this.fail(new CommsError("closed", "the channel was closed"));
    this.closeFds();
  }

  /**
   * The peer's process has ended: takes in what it left in the socket, then
   * closes the socket. Receives, pending and later, get those frames in
   * order, then an "eof" error; sends fail. (Closing at once would lose an
   * answer the peer sent just before exiting.)
   */
  finish(): void {
    if (this.closed || this.failure) return this.close();
    const left: RawFrame[] = [];
    let end: CommsError;
    try {
      for (let f = this.reader.next(); f; f = this.reader.next()) left.push(f);
      end = new CommsError("eof", "the peer has ended");
    } catch (e) {
      end = asCommsError(e); // "eof" at a frame boundary, or what broke the stream
    }
    this.leftovers = left;
    this.leftoverEnd = end;
    this.closed = true;
    for (const op of this.sendOps.splice(0)) {
      op.cancelTimer();
      op.reject(new CommsError("eof", `${op.what}: the peer has ended`));
    }
    this.idleRead();
    this.idleWrite();
    this.closeFds();
    this.pumpRecv();
  }

  private closeFds(): void {
    if (this.writeFd >= 0) closeFd(this.writeFd);
    this.writeFd = -1;
    closeFd(this.fd);
  }

  /** The next frame: from the socket, or after finish() from what the peer left. */
  private nextFrame(): RawFrame | null {
    if (!this.leftovers) return this.reader.next();
    const f = this.leftovers.shift();
    if (f) return f;
    throw this.leftoverEnd!;
  }

  /** Runs `f`, turning a synchronous throw into a rejected promise. */
  guard<T>(what: string, f: () => Promise<T>): Promise<T> {
    try {
      return f();
    } catch (e) {
      return Promise.reject(e instanceof CommsError ? e : new CommsError("argument", `${what}: ${String(e)}`));
    }
  }

  private check(what: string): void {
    if (this.failure) {
      const cause = this.failure;
      throw cause.code === "closed"
        ? new CommsError("closed", `${what}: the channel was closed`)
        : new CommsError("broken", `${what}: the channel is broken: ${cause.message}`, { cause });
    }
  }

  private timeoutOf(options: CallOptions | undefined, what: string): number {
    return options?.timeoutMs === undefined ? this.timeoutMs : checkTimeout(options.timeoutMs, what);
  }

  private sendTimedOut(op: SendOp, ms: number): void {
    const i = this.sendOps.indexOf(op);
    if (i < 0) return;
    const total = op.head.length + op.body.length;
    if (op.sent > 0) {
      // Half a frame is on the wire: the stream cannot be resumed in step.
      this.fail(new CommsError("timeout", `${op.what}: the peer did not take the message within ${ms} ms (${op.sent} of ${total} bytes sent); the channel is broken`));
      return;
    }
    this.sendOps.splice(i, 1);
    op.reject(new CommsError("timeout", `${op.what}: the peer did not take the message within ${ms} ms`));
    if (this.sendOps.length === 0) this.idleWrite();
  }

  private pumpSend(): void {
    while (this.sendOps.length > 0 && !this.failure) {
      const op = this.sendOps[0]!;
      const r = sendFrame(this.fd, op.head, op.body, op.sent, op.sent === 0 ? op.fds : null);
      if (r === -EAGAIN) {
        this.waitWritable();
        return;
      }
      if (r < 0) {
        const e = -r;
        const peerGone = e === 32 /* EPIPE */ || e === 104; /* ECONNRESET */
        this.fail(new CommsError(peerGone ? "eof" : "io", peerGone
          ? `${op.what}: the peer closed the channel (${describeErrno(e)})`
          : `${op.what}: sendmsg on the comms socket failed: ${describeErrno(e)}`));
        return;
      }
      if (r === 0) {
        // Not for a stream socket with bytes to send; never spin on it.
        this.fail(new CommsError("io", `${op.what}: sendmsg on the comms socket sent nothing`));
        return;
      }
      op.sent += r;
      if (op.sent === op.head.length + op.body.length) {
        this.sendOps.shift();
        op.cancelTimer();
        op.resolve();
      }
    }
    this.idleWrite();
  }

  private waitWritable(): void {
    if (this.writeWatch) {
      this.writeWatch.rearm();
      return;
    }
    try {
      if (this.writeFd < 0) {
        const fd = dupFd(this.fd);
        if (fd < 0) throw new CommsError("io", `cannot duplicate the comms socket: ${describeErrno(-fd)}`);
        this.writeFd = fd;
      }
      this.writeWatch = watch(this.writeFd, EPOLLOUT, () => this.pumpSend());
    } catch (e) {
      this.fail(asCommsError(e));
    }
  }

  private idleWrite(): void {
    this.writeWatch?.close();
    this.writeWatch = undefined;
  }

  private recvTimedOut(op: RecvOp, ms: number): void {
    const i = this.recvOps.indexOf(op);
    if (i < 0) return;
    this.recvOps.splice(i, 1);
    const progress = i === 0 ? this.reader.progress() : "";
    op.reject(new CommsError("timeout", `${op.what}: no message within ${ms} ms${progress ? ` (${progress})` : ""}`));
    if (this.recvOps.length === 0) this.idleRead();
  }

  private pumpRecv(): void {
    while (this.recvOps.length > 0 && !this.failure) {
      let frame: RawFrame | null;
      try {
        frame = this.nextFrame();
      } catch (e) {
        this.fail(asCommsError(e));
        return;
      }
      if (!frame) {
        this.waitReadable();
        return;
      }
      const op = this.recvOps.shift()!;
      op.cancelTimer();
      let value: unknown;
      try {
        value = op.decode(frame);
      } catch (e) {
        for (const fd of frame.fds) closeFd(fd);
        const err = asCommsError(e);
        op.reject(err);
        this.fail(err);
        return;
      }
      op.resolve(value);
    }
    this.idleRead();
  }

  private waitReadable(): void {
    if (this.readWatch) {
      this.readWatch.rearm();
      return;
    }
    try {
      this.readWatch = watch(this.fd, EPOLLIN, () => this.pumpRecv());
    } catch (e) {
      this.fail(asCommsError(e));
    }
  }

  private idleRead(): void {
    this.readWatch?.close();
    this.readWatch = undefined;
  }

  /** Breaks the channel: pending calls fail with `error`, received fds are closed. */
  private fail(error: CommsError): void {
    if (this.failure) return;
    this.failure = error;
    for (const op of this.recvOps.splice(0)) {
      op.cancelTimer();
      op.reject(error);
    }
    for (const op of this.sendOps.splice(0)) {
      op.cancelTimer();
      op.reject(error);
    }
    this.idleRead();
    this.idleWrite();
    this.reader.discard();
    for (const f of this.leftovers?.splice(0) ?? []) for (const fd of f.fds) closeFd(fd);
  }
}
