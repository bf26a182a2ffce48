/**
 * A socket of the proxy's control phase: waits through the reactor thread
 * (src/native/reactor.ts) for one kind of readiness, peeks at what a client
 * sent without consuming it, sends without blocking, and closes politely.
 *
 * Peeking leaves the bytes queued, so the socket stays readable; SO_RCVLOWAT
 * makes epoll wait for more than what was already seen (or EOF), which is
 * what keeps a partial request from spinning the watch. Each peek copies at
 * most the request's size limit, and a request may arrive in at most
 * MAX_PIECES reads: a client trickling a header a byte at a time gets
 * refused instead of costing an event-loop turn per byte.
 */
import { describeErrno, errnoName } from "../native/errno.ts";
import { recvInto, sendBytes, setRecvLowWater, SHUT_WR, shutdownSocket } from "../native/net.ts";
import { EPOLLIN, watch, type Watch } from "../native/reactor.ts";
import { closeFd } from "../native/sys.ts";

import { EAGAIN } from "../native/comms.ts";
const MAX_PIECES = 64;
const LINGER_MS = 2000;
const LINGER_BYTES = 64 * 1024;

/** Something the control phase cannot get past; `code` is an errno name or a word. */
export class SocketError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let scratch = new Uint8Array(16 * 1024);

/** What a peek() parser returns when the bytes so far are not enough: how many it needs in all. */
export class Need {
  constructor(readonly bytes: number) {}
}

export class Socket {
  private watcher: Watch | undefined;
  private pending: { resolve: (events: number) => void; reject: (e: Error) => void } | undefined;
  private cancelled: Error | undefined;
  private open = true;

  constructor(
    readonly fd: number,
    /** EPOLLIN or EPOLLOUT: what wait() waits for (one watch per fd). */
    private readonly events: number,
  ) {}

  /** The next readiness (HUP and ERR included). Rejects once cancelled. */
  wait(): Promise<number> {
    if (this.cancelled) return Promise.reject(this.cancelled);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      if (!this.watcher) {
        this.watcher = watch(this.fd, this.events, (ev) => {
          const p = this.pending;
          this.pending = undefined;
          p?.resolve(ev);
        });
      } else {
        const r = this.watcher.rearm();
        if (r < 0) {
          this.pending = undefined;
          reject(new SocketError(errnoName(-r), `cannot wait on the socket: ${describeErrno(-r)}`));
        }
      }
    });
  }

  /** Makes the pending and every later wait() reject (a timeout, the proxy closing). */
  cancel(why: Error): void {
    this.cancelled ??= why;
    const p = this.pending;
    this.pending = undefined;
    p?.reject(why);
  }

  /**
   * Peeks until `parse` is satisfied with what has arrived: it returns a
   * result, or a Need (how many bytes in all). At most `max` bytes are
   * looked at. EOF, an error, a need beyond `max` or too many pieces throw.
   */
  async peek<T>(max: number, parse: (bytes: Uint8Array) => T | Need): Promise<T> {
    for (let pieces = 0; ; pieces++) {
      // One buffer for every peek: parse runs synchronously and keeps nothing of it.
      if (scratch.length < max) scratch = new Uint8Array(max);
      const buf = scratch.subarray(0, max);
      const n = recvInto(this.fd, buf, true);
      if (n === 0) throw new SocketError("EOF", "the client closed the connection");
      if (n < 0 && n !== -EAGAIN) throw new SocketError(errnoName(-n), describeErrno(-n));
      const got = Math.max(n, 0);
      const r = parse(buf.subarray(0, got));
      if (!(r instanceof Need)) return r;
      if (r.bytes > max) throw new SocketError("E2BIG", `more than ${max} bytes`);
      if (pieces === MAX_PIECES) throw new SocketError("EPIECES", `sent in more than ${MAX_PIECES} pieces`);
      setRecvLowWater(this.fd, Math.max(r.bytes, got + 1));
      await this.wait();
    }
  }

  /** Takes `n` bytes that peek() saw (they are queued: this never waits). */
  consume(n: number): void {
    const buf = new Uint8Array(n);
    const got = recvInto(this.fd, buf, false);
    if (got !== n) throw new SocketError(got < 0 ? errnoName(-got) : "EIO", `could not take the ${n} bytes peeked`);
    setRecvLowWater(this.fd, 1);
  }

  /**
   * Sends all of `bytes`. On an EPOLLOUT socket it waits for room; on the
   * client's (EPOLLIN) socket a reply that does not fit the empty send buffer
   * of a new connection is an error (replies are a few hundred bytes).
   */
  async send(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) {
      const n = sendBytes(this.fd, bytes.subarray(off));
      if (n > 0) off += n;
      else if (n === -EAGAIN && this.events !== EPOLLIN) await this.wait();
      else throw new SocketError(errnoName(-n), `send failed: ${describeErrno(-n)}`);
    }
  }

  /** Stops watching; the fd now belongs to someone else (the relay). */
  release(): void {
    this.watcher?.close();
    this.watcher = undefined;
    this.open = false;
  }

  close(): void {
    if (!this.open) return;
    this.release();
    closeFd(this.fd);
  }

  /**
   * Closes after a refusal without resetting it: a close with unread input
   * sends RST, and the client could lose the 403 it has not read yet. So:
   * shut down our side, read and drop what the client still sends (at most
   * LINGER_BYTES, for at most LINGER_MS), then close.
   */
  async closeGracefully(): Promise<void> {
    if (!this.open || this.events !== EPOLLIN) return this.close();
    // A timeout is over once we answer it; the proxy closing (ECANCELED) is not.
    if (this.cancelled instanceof SocketError && this.cancelled.code === "ECANCELED") return this.close();
    this.cancelled = undefined;
    shutdownSocket(this.fd, SHUT_WR);
    setRecvLowWater(this.fd, 1);
    const sink = new Uint8Array(16 * 1024);
    const timer = setTimeout(() => this.cancel(new SocketError("ETIMEDOUT", "the client did not close")), LINGER_MS);
    try {
      for (let dropped = 0; dropped < LINGER_BYTES; ) {
        const n = recvInto(this.fd, sink, false);
        if (n === 0 || (n < 0 && n !== -EAGAIN)) break;
        if (n > 0) dropped += n;
        else await this.wait();
      }
    } catch {
      // cancelled: close anyway
    } finally {
      clearTimeout(timer);
      this.close();
    }
  }
}
