/**
 * One connection through the proxy, from the first byte to the relay:
 *
 *   sniff     0x05 is SOCKS5, an ASCII capital letter an HTTP request
 *   request   CONNECT host:port, GET http://host/…, or a SOCKS5 CONNECT
 *   decide    NetPolicy.decide, then resolve (resolve.ts) and connect
 *   answer    200 / the forwarded head / SOCKS success, or a refusal
 *   relay     both fds to the relay thread (src/native/net.ts)
 *   gate      for a tunnel: the client's first bytes; a ClientHello's SNI
 *             must name the host asked for, and a TLS port carries TLS only
 *
 * Everything up to the relay has one deadline (the header timeout for the
 * request, the connect timeout after it); past it the sockets are cancelled
 * and the connection is reported failed. Every path ends in exactly one
 * call of `finished` with the connection's record.
 */
import { dupFd } from "../native/comms.ts";
import { describeErrno, errnoName } from "../native/errno.ts";
import { RELAY_ABORTED, RELAY_CLOSED, RELAY_HALFOPEN, RELAY_IDLE, type RelayEnd, relay, setRecvLowWater, type Tunnel } from "../native/net.ts";
import { EPOLLIN } from "../native/reactor.ts";
import { closeFd } from "../native/sys.ts";
import type { Target } from "./host.ts";
import { splitHostPort } from "./host.ts";
import { CONNECT_ESTABLISHED, forwardHead, headEnd, type HttpHead, parseAbsoluteUrl, parseHead, proxyResponse } from "./http.ts";
import type { NetLimits } from "./limits.ts";
import type { NetPolicy } from "./policy.ts";
import type { ConnectionRecord, Outcome, Protocol } from "./report.ts";
import { type Lookup, resolveTarget } from "./resolve.ts";
import { CMD_CONNECT, METHOD_NO_AUTH, NO_ACCEPTABLE_METHODS, readGreeting, readRequest, REP, repForError, socksReply } from "./socks.ts";
import { Need, Socket, SocketError } from "./socket.ts";
import { MAX_HELLO, readClientHello } from "./tls.ts";
import { connectUpstream, type Upstream } from "./upstream.ts";

export interface SessionContext {
  readonly policy: NetPolicy;
  readonly limits: NetLimits;
  readonly tlsPorts: ReadonlySet<number>;
  readonly lookup: Lookup;
  /** An allowed connection is open (for -v). */
  opened(record: ConnectionRecord): void;
  /** The connection is over: its final record. */
  finished(record: ConnectionRecord): void;
}

/** A refusal sent in the client's own protocol. */
interface Refusal {
  outcome: Exclude<Outcome, "allowed">;
  reason: string;
  rule?: string;
  /** HTTP status. */
  status: number;
  /** SOCKS5 REP code. */
  rep: number;
}

const SOCKS_REQUEST_MAX = 4 + 1 + 255 + 2;
const SOCKS4 = 4;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export class Session {
  private readonly record: Mutable<ConnectionRecord>;
  private readonly client: Socket;
  private readonly sockets = new Set<Socket>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private tunnel: Tunnel | undefined;
  private done = false;
  /** Why the session was cancelled (a deadline, the proxy closing), once it was. */
  private stopped: Error | undefined;
  private readonly stopWaiters = new Set<(e: Error) => void>();
  private sniffedHttp = false;
  /** The forwarded request head: sent before the relay, counted with its bytes. */
  private forwarded = 0;

  constructor(
    private readonly ctx: SessionContext,
    fd: number,
    id: number,
  ) {
    this.client = this.track(new Socket(fd, EPOLLIN));
    this.record = { id, protocol: "unknown", host: "", port: 0, outcome: "failed", reason: "", bytesUp: 0, bytesDown: 0, startedAt: Date.now(), durationMs: 0 };
  }

  /** Serves the connection; never throws (every failure is reported). */
  async run(): Promise<void> {
    this.deadline(this.ctx.limits.headerTimeoutMs, "the request did not arrive in time");
    try {
      const first = await this.client.peek(1, (b) => (b.length ? b[0]! : new Need(1)));
      if (first === 5) return await this.socks();
      if (first >= 0x41 && first <= 0x5a) {
        this.sniffedHttp = true;
        return await this.http();
      }
      // SOCKS4's own refusal ("request rejected"); anything else is just closed.
      const reply = first === SOCKS4 ? Uint8Array.of(0, 0x5b, 0, 0, 0, 0, 0, 0) : new Uint8Array(0);
      const reason = first === SOCKS4 ? "SOCKS4 is not spoken (use SOCKS5)" : `neither HTTP nor SOCKS5 (first byte 0x${first.toString(16).padStart(2, "0")})`;
      await this.refuse({ outcome: "failed", reason, status: 400, rep: REP.generalFailure }, reply);
    } catch (e) {
      // Too slow a request (slowloris) still gets an answer, and a close
      // that does not reset it: 408 to an HTTP client, nothing to others.
      if (e instanceof SocketError && e.code === "ETIMEDOUT" && !this.done) {
        return this.refuse({ outcome: "failed", reason: e.message, status: 408, rep: REP.generalFailure }, this.sniffedHttp ? undefined : new Uint8Array(0));
      }
      this.failed(e);
    }
  }

  /** The proxy is closing: end whatever state this connection is in. */
  abort(): void {
    if (this.tunnel) this.tunnel.abort();
    else this.cancel(new SocketError("ECANCELED", "the proxy closed"));
  }

  private track<S extends Socket>(s: S): S {
    this.sockets.add(s);
    if (this.stopped) s.cancel(this.stopped);
    return s;
  }

  /** `p`, unless the session is cancelled first (a resolver that hangs must not outlive the deadline). */
  private orStop<T>(p: Promise<T>): Promise<T> {
    if (this.stopped) return Promise.reject(this.stopped);
    let off = () => {};
    const stop = new Promise<never>((_, reject) => {
      this.stopWaiters.add(reject);
      off = () => this.stopWaiters.delete(reject);
    });
    return Promise.race([p, stop]).finally(off);
  }

  private deadline(ms: number, what: string): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.cancel(new SocketError("ETIMEDOUT", `${what} (${ms} ms)`)), ms);
  }

  private cancel(why: Error): void {
    this.stopped ??= why;
    for (const s of this.sockets) s.cancel(why);
    for (const f of this.stopWaiters) f(why);
  }

  private async http(): Promise<void> {
    const head = await this.client
      .peek(this.ctx.limits.maxHeaderBytes, (b) => {
        const end = headEnd(b);
        return end < 0 ? new Need(b.length + 1) : parseHead(b.subarray(0, end));
      })
      .catch((e: unknown) => {
        if (e instanceof SocketError && e.code === "E2BIG") return { ok: false as const, error: `the request head is larger than ${this.ctx.limits.maxHeaderBytes} bytes`, status: 431 };
        throw e;
      });
    if (!head.ok) return this.refuse({ outcome: "failed", reason: head.error, status: "status" in head ? head.status : 400, rep: 0 });
    if (head.value.method === "CONNECT") {
      this.record.protocol = "connect";
      const hp = splitHostPort(head.value.target);
      if (!hp.ok) return this.refuse({ outcome: "failed", reason: hp.error, status: 400, rep: 0 });
      const up = await this.decideAndConnect(hp.value.host, hp.value.port, head.value);
      if (!up) return;
      this.client.consume(head.value.length);
      await this.client.send(CONNECT_ESTABLISHED);
      return this.handOff(up, true);
    }
    this.record.protocol = "http";
    const url = parseAbsoluteUrl(head.value.target);
    if (!url.ok) return this.refuse({ outcome: "failed", reason: url.error, status: 400, rep: 0 });
    const forward = forwardHead(head.value, url.value);
    if (!forward.ok) return this.refuse({ outcome: "failed", reason: forward.error, status: 400, rep: 0 });
    const up = await this.decideAndConnect(url.value.host, url.value.port, head.value);
    if (!up) return;
    this.client.consume(head.value.length);
    await up.socket.send(forward.value);
    this.forwarded = forward.value.length;
    return this.handOff(up, false);
  }

  private async socks(): Promise<void> {
    this.record.protocol = "socks5";
    const greeting = await this.client.peek(257, (b) => {
      const r = readGreeting(b);
      return r.status === "incomplete" ? new Need(r.need) : r;
    });
    if (greeting.status !== "ok") return this.refuse({ outcome: "failed", reason: greeting.error, status: 400, rep: REP.generalFailure }, new Uint8Array(0));
    this.client.consume(greeting.length);
    if (!greeting.noAuth) {
      return this.refuse({ outcome: "failed", reason: "the SOCKS5 client offered no \"no authentication\" method", status: 400, rep: 0 }, NO_ACCEPTABLE_METHODS);
    }
    await this.client.send(METHOD_NO_AUTH);
    const req = await this.client.peek(SOCKS_REQUEST_MAX, (b) => {
      const r = readRequest(b);
      return r.status === "incomplete" ? new Need(r.need) : r;
    });
    if (req.status !== "ok") {
      return this.refuse({ outcome: "failed", reason: `a malformed SOCKS5 request: ${req.error}`, status: 400, rep: REP.generalFailure }, req.reply ?? new Uint8Array(0));
    }
    this.client.consume(req.length);
    this.record.host = req.host;
    this.record.port = req.port;
    if (req.command !== CMD_CONNECT) {
      const name = req.command === 2 ? "BIND" : req.command === 3 ? "UDP ASSOCIATE" : `command ${req.command}`;
      return this.refuse({ outcome: "denied", reason: `SOCKS5 ${name} is not supported (only CONNECT)`, status: 400, rep: REP.commandNotSupported });
    }
    const up = await this.decideAndConnect(req.host, req.port, undefined);
    if (!up) return;
    await this.client.send(socksReply(REP.succeeded));
    return this.handOff(up, true);
  }

  /** The decision, resolution and connect; on a refusal, answers the client and returns undefined. */
  private async decideAndConnect(host: string, port: number, head: HttpHead | undefined): Promise<(Upstream & { target: Target }) | undefined> {
    Object.assign(this.record, { host, port });
    const verdict = this.ctx.policy.decide(host, port);
    const rule = verdict.rule ? { rule: verdict.rule } : {};
    if (!verdict.allowed || !verdict.target) {
      if (head) this.client.consume(head.length);
      await this.refuse({ outcome: "denied", reason: verdict.reason, ...rule, status: 403, rep: REP.notAllowed });
      return undefined;
    }
    this.deadline(this.ctx.limits.connectTimeoutMs, `connecting to ${host}:${port} took too long`);
    let up: Upstream;
    try {
      const resolution = await this.orStop(resolveTarget(this.ctx.policy, verdict.target, port, this.ctx.lookup));
      if (resolution.kind !== "ok") {
        if (head) this.client.consume(head.length);
        if (resolution.kind === "denied") {
          const r = resolution.decision;
          await this.refuse({ outcome: "denied", reason: r.reason, ...(r.rule ? { rule: r.rule } : {}), status: 403, rep: REP.notAllowed });
        } else {
          await this.refuse({ outcome: "failed", reason: resolution.error, status: 502, rep: repForError(resolution.code) });
        }
        return undefined;
      }
      up = await connectUpstream(resolution.addresses, port, (s) => s && this.track(s));
      // Connected at once (no wait to reject) while the deadline or close() came: stop here.
      if (this.stopped) {
        up.socket.close();
        throw this.stopped;
      }
    } catch (e) {
      if (!(e instanceof SocketError)) throw e;
      if (head) this.client.consume(head.length);
      await this.refuse({ outcome: "failed", reason: e.message, status: e.code === "ETIMEDOUT" ? 504 : 502, rep: repForError(e.code) });
      return undefined;
    }
    this.track(up.socket);
    // The deadline still runs: it covers sending the forwarded head too.
    Object.assign(this.record, { outcome: "allowed", reason: verdict.reason, ...rule, address: up.address });
    return { ...up, target: verdict.target };
  }

  /** Both fds go to the relay thread; a tunnel is gated until its first client bytes pass. */
  private handOff(up: Upstream & { target: Target }, tunnel: boolean): void {
    clearTimeout(this.timer);
    setRecvLowWater(this.client.fd, 1);
    // The gate peeks through its own dup: the relay may close the client's fd at any time.
    const gateFd = tunnel ? dupFd(this.client.fd) : -1;
    if (tunnel && gateFd < 0) {
      // Without the dup nothing could check the tunnel's first bytes: refuse, never pass them unchecked.
      up.socket.close();
      this.client.close();
      return this.finish({ outcome: "failed", reason: `cannot check the tunnel's first bytes: ${describeErrno(-gateFd)}` });
    }
    this.client.release();
    up.socket.release();
    this.sockets.clear();
    const { limits } = this.ctx;
    const t = relay(this.client.fd, up.socket.fd, { gated: gateFd >= 0, idleMs: limits.idleTimeoutMs, halfOpenMs: limits.halfOpenTimeoutMs }, (end) => this.ended(end));
    if (typeof t === "number") {
      closeFd(gateFd);
      return this.finish({ outcome: "failed", reason: `cannot relay: ${describeErrno(-t)}` });
    }
    this.tunnel = t;
    this.ctx.opened({ ...this.record });
    if (gateFd >= 0) void this.gate(t, this.track(new Socket(gateFd, EPOLLIN)), up.target);
  }

  /**
   * The client's first bytes through a tunnel. A ClientHello must carry the
   * name that was asked for (no SNI for a name is refused too: nothing would
   * stop a fronted request); on a TLS port anything but a ClientHello is
   * refused. A target given as an IP address has no name to compare: its
   * SNI is recorded, not checked.
   */
  private async gate(t: Tunnel, sock: Socket, target: Target): Promise<void> {
    const tlsPort = this.ctx.tlsPorts.has(this.record.port);
    if (tlsPort) this.deadline(this.ctx.limits.handshakeTimeoutMs, "no TLS ClientHello in time");
    let refusal: string | undefined;
    try {
      const hello = await sock.peek(MAX_HELLO, (b) => {
        const r = readClientHello(b);
        return r.status === "incomplete" ? new Need(r.need) : r;
      });
      if (hello.status === "not-tls") {
        if (tlsPort) refusal = `port ${this.record.port} carries TLS only, and the first bytes were not a ClientHello`;
      } else if (hello.status === "invalid") {
        refusal = `a malformed TLS ClientHello: ${hello.error}`;
      } else if (hello.status === "ok") {
        if (hello.sni !== undefined) this.record.sni = hello.sni;
        if (target.kind === "name" && hello.sni === undefined) refusal = `the TLS ClientHello names no server (SNI) for ${target.name}`;
        else if (target.kind === "name" && hello.sni !== target.name) {
          refusal = `the TLS server name ${hello.sni} is not the host asked for, ${target.name} (domain fronting)`;
        }
      }
    } catch (e) {
      // EOF or an error: the relay sees it too. A timeout or a request too
      // big or too fragmented to read is a refusal on a TLS port.
      if (!(e instanceof SocketError)) throw e;
      if (tlsPort || e.code === "E2BIG" || e.code === "EPIECES") refusal = `the TLS ClientHello: ${e.message}`;
      if (e.code === "ECANCELED") return sock.close();
    } finally {
      clearTimeout(this.timer);
    }
    setRecvLowWater(sock.fd, 1);
    sock.close();
    this.sockets.delete(sock);
    if (refusal === undefined) return t.open();
    Object.assign(this.record, { outcome: "denied", reason: refusal });
    delete this.record.rule;
    t.abort();
  }

  private ended(end: RelayEnd): void {
    this.cancel(new SocketError("ECANCELED", "the tunnel ended"));
    for (const s of this.sockets) s.close();
    this.record.bytesUp = this.forwarded + end.up;
    this.record.bytesDown = end.down;
    const how: Record<number, string> = { [RELAY_CLOSED]: "closed", [RELAY_IDLE]: "idle timeout", [RELAY_HALFOPEN]: "half-open timeout", [RELAY_ABORTED]: "aborted" };
    this.record.end = how[end.reason] ?? `${errnoName(-end.reason)} from the ${end.side === "client" ? "client" : "server"}`;
    this.finish({});
  }

  /**
   * Sends `refusal` in the client's protocol (or `raw`), closes politely,
   * then reports: the connection counts against the limits until its fd is
   * closed.
   */
  private async refuse(refusal: Refusal, raw?: Uint8Array): Promise<void> {
    clearTimeout(this.timer);
    this.done = true;
    const { status, rep, ...rest } = refusal;
    const where = this.record.host ? `${this.record.host}:${this.record.port}` : "this request";
    const body =
      refusal.outcome === "denied"
        ? `the sandbox's network policy refused ${where}: ${refusal.reason}${refusal.rule ? ` (rule: ${refusal.rule})` : ""}`
        : `cannot proxy ${where}: ${refusal.reason}`;
    const reply = raw ?? (this.record.protocol === "socks5" ? socksReply(rep) : proxyResponse(status, body));
    for (const s of this.sockets) if (s !== this.client) s.close();
    try {
      if (reply.length) await this.client.send(reply);
    } catch {
      // the client is gone; the record says why it was refused anyway
    }
    Object.assign(this.record, rest);
    this.record.durationMs = Date.now() - this.record.startedAt;
    await this.client.closeGracefully();
    this.ctx.finished({ ...this.record });
  }

  private failed(e: unknown): void {
    if (this.done) return;
    for (const s of this.sockets) s.close();
    const reason = e instanceof SocketError ? (e.code === "EOF" ? "the client closed the connection before its request was complete" : e.message) : `internal error: ${(e as Error)?.stack ?? e}`;
    this.finish({ outcome: "failed", reason });
  }

  private finish(update: Partial<Mutable<ConnectionRecord>>): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    Object.assign(this.record, update);
    this.record.durationMs = Date.now() - this.record.startedAt;
    this.ctx.finished({ ...this.record });
  }
}
