/**
 * A connection a client makes to the proxy, up to its target:
 *
 *   sniff     0x05 is SOCKS5, an ASCII capital letter an HTTP request
 *   request   CONNECT host:port, GET http://host/…, or a SOCKS5 CONNECT
 *   answer    200 / the forwarded head / SOCKS success, or a refusal
 *
 * then connection.ts (decide, connect, relay, gates).
 */
import { splitHostPort } from "./host.ts";
import { CONNECT_ESTABLISHED, forwardHead, headEnd, parseAbsoluteUrl, parseHead } from "./http.ts";
import { Connection, type SessionContext } from "./connection.ts";
import { CMD_CONNECT, METHOD_NO_AUTH, NO_ACCEPTABLE_METHODS, readGreeting, readRequest, REP, socksReply } from "./socks.ts";
import { Need, Socket, SocketError } from "./socket.ts";
import { EPOLLIN } from "../native/reactor.ts";

export type { SessionContext } from "./connection.ts";

const SOCKS_REQUEST_MAX = 4 + 1 + 255 + 2;
const SOCKS4 = 4;

export class Session extends Connection {
  private sniffedHttp = false;
  protected override client: Socket;

  constructor(ctx: SessionContext, fd: number, id: number) {
    super(ctx, id);
    this.client = this.track(new Socket(fd, EPOLLIN));
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

}
