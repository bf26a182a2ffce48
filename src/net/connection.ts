/**
 * What every connection through the proxy goes through once its target is
 * known (session.ts reads it from a request; transparent.ts from a trapped
 * connect()):
 *
 *   decide    NetPolicy.decide (a DNS stub address standing for its name),
 *             then resolve (resolve.ts) and connect
 *   refuse    a refusal in the client's protocol, or an errno to answer
 *   relay     both fds to the relay thread (src/native/net.ts)
 *   gate      for a tunnel: the client's first bytes; a ClientHello's SNI
 *             must name the host asked for, and a TLS port carries TLS only;
 *             for a forwarded request: the response head, with
 *             Connection: close
 *
 * Everything up to the relay has one deadline (the header timeout for the
 * request, the connect timeout after it); past it the sockets are cancelled
 * and the connection is reported failed. Every path ends in exactly one
 * call of `finished` with the connection's record.
 */
import { dupFd, EPOLLOUT } from "../native/comms.ts";
import { describeErrno, errnoName } from "../native/errno.ts";
import { GATE_DOWN, GATE_UP, RELAY_ABORTED, RELAY_CLOSED, RELAY_HALFOPEN, RELAY_IDLE, type RelayEnd, relay, setRecvLowWater, type Tunnel } from "../native/net.ts";
import { EPOLLIN } from "../native/reactor.ts";
import { closeFd } from "../native/sys.ts";
import type { Ip } from "./address.ts";
import { parseTarget, type Target } from "./host.ts";
import { clientHead, headEnd, type HttpHead, proxyResponse } from "./http.ts";
import type { NetLimits } from "./limits.ts";
import type { NetPolicy } from "./policy.ts";
import type { ConnectionRecord, Outcome } from "./report.ts";
import { type Lookup, resolveTarget } from "./resolve.ts";
import { REP, repForError, socksReply } from "./socks.ts";
import { Need, Socket, SocketError } from "./socket.ts";
import { MAX_HELLO, readClientHello } from "./tls.ts";
import { connectUpstream, type Upstream } from "./upstream.ts";

export interface SessionContext {
  readonly policy: NetPolicy;
  readonly limits: NetLimits;
  readonly tlsPorts: ReadonlySet<number>;
  readonly lookup: Lookup;
  /** The name the sandbox's DNS stub gave this address to (names.ts), if it did. */
  readonly names?: (ip: Ip) => string | undefined;
  /** An allowed connection is open (for -v). */
  opened(record: ConnectionRecord): void;
  /** The connection is over: its final record. */
  finished(record: ConnectionRecord): void;
}

/** A refusal sent in the client's own protocol. */
export interface Refusal {
  outcome: Exclude<Outcome, "allowed">;
  reason: string;
  rule?: string;
  /** HTTP status. */
  status: number;
  /** SOCKS5 REP code. */
  rep: number;
  /** What failed, as an errno name ("ECONNREFUSED", "ETIMEDOUT", "ENOTFOUND"), for an errno answer. */
  code?: string;
}

export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export abstract class Connection {
  protected readonly record: Mutable<ConnectionRecord>;
  /** The client's socket: a request's, or (transparent) the sandboxee's once it reaches the proxy. */
  protected client: Socket | undefined;
  private readonly sockets = new Set<Socket>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private tunnel: Tunnel | undefined;
  protected done = false;
  /** Why the session was cancelled (a deadline, the proxy closing), once it was. */
  private stopped: Error | undefined;
  private readonly stopWaiters = new Set<(e: Error) => void>();
  /** The forwarded request head: sent before the relay, counted with its bytes. */
  protected forwarded = 0;
  /** The response heads sent to the client by respond(), counted with the relay's bytes. */
  private headsDown = 0;
  /** The refusal answered, once one was. */
  protected refusal: Refusal | undefined;

  constructor(
    protected readonly ctx: SessionContext,
    id: number,
  ) {
    this.record = { id, protocol: "unknown", host: "", port: 0, outcome: "failed", reason: "", bytesUp: 0, bytesDown: 0, startedAt: Date.now(), durationMs: 0 };
  }

  /** The proxy is closing: end whatever state this connection is in. */
  abort(): void {
    if (this.tunnel) this.tunnel.abort();
    else this.cancel(new SocketError("ECANCELED", "the proxy closed"));
  }

  protected track<S extends Socket>(s: S): S {
    this.sockets.add(s);
    if (this.stopped) s.cancel(this.stopped);
    return s;
  }

  /** `p`, unless the session is cancelled first (a resolver that hangs must not outlive the deadline). */
  protected orStop<T>(p: Promise<T>): Promise<T> {
    if (this.stopped) return Promise.reject(this.stopped);
    let off = () => {};
    const stop = new Promise<never>((_, reject) => {
      this.stopWaiters.add(reject);
      off = () => this.stopWaiters.delete(reject);
    });
    return Promise.race([p, stop]).finally(off);
  }

  protected deadline(ms: number, what: string): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.cancel(new SocketError("ETIMEDOUT", `${what} (${ms} ms)`)), ms);
  }

  protected cancel(why: Error): void {
    this.stopped ??= why;
    for (const s of this.sockets) s.cancel(why);
    for (const f of this.stopWaiters) f(why);
  }

  /** The decision, resolution and connect; on a refusal, answers the client and returns undefined. */
  protected async decideAndConnect(asked: string, port: number, head: HttpHead | undefined): Promise<(Upstream & { target: Target }) | undefined> {
    // An address the DNS stub gave out stands for its name (a client that resolved first).
    const t = this.ctx.names ? parseTarget(asked) : undefined;
    const named = t?.ok && t.value.kind === "ip" ? this.ctx.names!(t.value.ip) : undefined;
    const host = named ?? asked;
    Object.assign(this.record, { host, port }, named ? { stubAddress: asked } : {});
    const verdict = this.ctx.policy.decide(host, port);
    const rule = verdict.rule ? { rule: verdict.rule } : {};
    if (!verdict.allowed || !verdict.target) {
      if (head) this.client!.consume(head.length);
      await this.refuse({ outcome: "denied", reason: verdict.reason, ...rule, status: 403, rep: REP.notAllowed });
      return undefined;
    }
    this.deadline(this.ctx.limits.connectTimeoutMs, `connecting to ${host}:${port} took too long`);
    let up: Upstream;
    try {
      const resolution = await this.orStop(resolveTarget(this.ctx.policy, verdict.target, port, this.ctx.lookup));
      if (resolution.kind !== "ok") {
        if (head) this.client!.consume(head.length);
        if (resolution.kind === "denied") {
          const r = resolution.decision;
          await this.refuse({ outcome: "denied", reason: r.reason, ...(r.rule ? { rule: r.rule } : {}), status: 403, rep: REP.notAllowed });
        } else {
          await this.refuse({ outcome: "failed", reason: resolution.error, status: 502, rep: repForError(resolution.code), code: resolution.code });
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
      if (head) this.client!.consume(head.length);
      await this.refuse({ outcome: "failed", reason: e.message, status: e.code === "ETIMEDOUT" ? 504 : 502, rep: repForError(e.code), code: e.code });
      return undefined;
    }
    this.track(up.socket);
    // The deadline still runs: it covers sending the forwarded head too.
    Object.assign(this.record, { outcome: "allowed", reason: verdict.reason, ...rule, address: up.address });
    return { ...up, target: verdict.target };
  }

  /**
   * Both fds go to the relay thread. A tunnel is gated until its first
   * client bytes pass (gate); a forwarded request's response until its head
   * has gone to the client with Connection: close (respond).
   */
  protected handOff(up: Upstream & { target: Target }, tunnel: boolean): void {
    const client = this.client!;
    clearTimeout(this.timer);
    setRecvLowWater(client.fd, 1);
    // Each gate works through dups: the relay may close its fds at any time.
    const gateFd = tunnel ? dupFd(client.fd) : -1;
    if (tunnel && gateFd < 0) {
      // Without the dup nothing could check the tunnel's first bytes: refuse, never pass them unchecked.
      up.socket.close();
      client.close();
      return this.finish({ outcome: "failed", reason: `cannot check the tunnel's first bytes: ${describeErrno(-gateFd)}` });
    }
    // Without these the response passes as it came (only its Connection: close is lost).
    let response = tunnel ? undefined : { up: dupFd(up.socket.fd), client: dupFd(client.fd) };
    if (response && (response.up < 0 || response.client < 0)) {
      for (const fd of [response.up, response.client]) if (fd >= 0) closeFd(fd);
      response = undefined;
    }
    client.release();
    up.socket.release();
    this.sockets.clear();
    const { limits } = this.ctx;
    const gates = (gateFd >= 0 ? GATE_UP : 0) | (response ? GATE_DOWN : 0);
    const t = relay(client.fd, up.socket.fd, { gates, idleMs: limits.idleTimeoutMs, halfOpenMs: limits.halfOpenTimeoutMs }, (end) => this.ended(end));
    if (typeof t === "number") {
      for (const fd of [gateFd, response?.up ?? -1, response?.client ?? -1]) if (fd >= 0) closeFd(fd);
      return this.finish({ outcome: "failed", reason: `cannot relay: ${describeErrno(-t)}` });
    }
    this.tunnel = t;
    this.ctx.opened({ ...this.record });
    if (gateFd >= 0) void this.gate(t, this.track(new Socket(gateFd, EPOLLIN)), up.target);
    if (response) void this.respond(t, this.track(new Socket(response.up, EPOLLIN)), this.track(new Socket(response.client, EPOLLOUT)));
  }

  /**
   * A forwarded request's response heads, from the server (peeked, then
   * taken) to the client, each final one with Connection: close (http.ts
   * clientHead); 1xx heads go as they came. Anything unreadable as a head
   * passes untouched: the relay carries it once the gate opens.
   */
  private async respond(t: Tunnel, server: Socket, client: Socket): Promise<void> {
    try {
      for (;;) {
        const head = await server.peek(this.ctx.limits.maxHeaderBytes, (b) => {
          const end = headEnd(b);
          return end < 0 ? new Need(b.length + 1) : clientHead(b.subarray(0, end));
        });
        if (!head.ok) break;
        server.consume(head.value.length);
        await client.send(head.value.forClient);
        this.headsDown += head.value.forClient.length;
        if (head.value.status >= 200) break;
      }
    } catch (e) {
      // EOF, an error, a head too large or in too many pieces: the relay takes it from here
      if (!(e instanceof SocketError)) throw e;
      if (e.code === "ECANCELED") {
        server.close();
        client.close();
        return;
      }
    }
    setRecvLowWater(server.fd, 1);
    for (const s of [server, client]) {
      s.close();
      this.sockets.delete(s);
    }
    t.open(GATE_DOWN);
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
    if (refusal === undefined) return t.open(GATE_UP);
    Object.assign(this.record, { outcome: "denied", reason: refusal });
    delete this.record.rule;
    t.abort();
  }

  private ended(end: RelayEnd): void {
    this.cancel(new SocketError("ECANCELED", "the tunnel ended"));
    for (const s of this.sockets) s.close();
    this.record.bytesUp = this.forwarded + end.up;
    this.record.bytesDown = this.headsDown + end.down;
    const how: Record<number, string> = { [RELAY_CLOSED]: "closed", [RELAY_IDLE]: "idle timeout", [RELAY_HALFOPEN]: "half-open timeout", [RELAY_ABORTED]: "aborted" };
    this.record.end = how[end.reason] ?? `${errnoName(-end.reason)} from the ${end.side === "client" ? "client" : "server"}`;
    this.finish({});
  }

  /**
   * Sends `refusal` in the client's protocol (or `raw`), closes politely,
   * then reports: the connection counts against the limits until its fd is
   * closed. Without a client yet (transparent), only reports: the caller
   * answers the connect() with an errno.
   */
  protected async refuse(refusal: Refusal, raw?: Uint8Array): Promise<void> {
    clearTimeout(this.timer);
    this.done = true;
    this.refusal = refusal;
    const { status, rep, code: _code, ...rest } = refusal;
    const where = this.record.host ? `${this.record.host}:${this.record.port}` : "this request";
    const body =
      refusal.outcome === "denied"
        ? `the sandbox's network policy refused ${where}: ${refusal.reason}${refusal.rule ? ` (rule: ${refusal.rule})` : ""}`
        : `cannot proxy ${where}: ${refusal.reason}`;
    const reply = raw ?? (this.record.protocol === "socks5" ? socksReply(rep) : proxyResponse(status, body));
    for (const s of this.sockets) if (s !== this.client) s.close();
    try {
      if (reply.length) await this.client?.send(reply);
    } catch {
      // the client is gone; the record says why it was refused anyway
    }
    Object.assign(this.record, rest);
    this.record.durationMs = Date.now() - this.record.startedAt;
    await this.client?.closeGracefully();
    this.ctx.finished({ ...this.record });
  }

  protected failed(e: unknown): void {
    if (this.done) return;
    for (const s of this.sockets) s.close();
    const reason = e instanceof SocketError ? (e.code === "EOF" ? "the client closed the connection before its request was complete" : e.message) : `internal error: ${(e as Error)?.stack ?? e}`;
    this.finish({ outcome: "failed", reason });
  }

  protected finish(update: Partial<Mutable<ConnectionRecord>>): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    Object.assign(this.record, update);
    this.record.durationMs = Date.now() - this.record.startedAt;
    this.ctx.finished({ ...this.record });
  }
}
