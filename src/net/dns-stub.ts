/**
 * The DNS stub of a `--net proxy` sandbox: UDP and TCP on the sandbox's
 * 127.0.0.1:53 (its /etc/resolv.conf points there), served by bunbox
 * through the sockets A bound (docs/network.md).
 *
 * It never forwards a query and never hands out a real address. A name the
 * policy allows (NetPolicy.mayResolve) gets an A record from the sandbox's
 * name pool (names.ts), which the proxy maps back to the name; AAAA and
 * other types get an empty answer, so clients use the A record; every other
 * name gets NXDOMAIN. A PTR query for a pool address names its name. So a
 * program that resolves before it connects (curl --socks5, a transparent
 * connect()) works, and DNS carries nothing out of the sandbox: no query
 * leaves it, and the answers say only what the policy already allows.
 */
import { EAGAIN } from "../native/comms.ts";
import { acceptOne, adoptSocket, recvDatagram, sendDatagram, setNonBlocking } from "../native/net.ts";
import { EPOLLIN, watch, type Watch } from "../native/reactor.ts";
import { closeFd } from "../native/sys.ts";
import { formatIp } from "./address.ts";
import { buildAnswer, buildError, encodeName, MAX_UDP, parseQuery, RCODE, reverseName, TYPE } from "./dns.ts";
import { normalizeName } from "./host.ts";
import type { NamePool } from "./names.ts";
import type { NetPolicy } from "./policy.ts";
import { Need, Socket, SocketError } from "./socket.ts";

/** What the stub did for one name (queries of every type counted together). */
export interface DnsRecord {
  /** Normalised where it could be; else as asked. */
  readonly name: string;
  readonly outcome: "answered" | "refused";
  /** Why, in words (the policy's reason for a refusal). */
  readonly reason: string;
  /** The pool address it was given. */
  readonly address?: string;
  readonly queries: number;
}

export interface DnsReport {
  readonly queries: number;
  readonly answered: number;
  readonly refused: number;
  /** One record per name and outcome, up to maxRecords; later names are only counted. */
  readonly names: readonly DnsRecord[];
  readonly unlisted: number;
}

export type DnsEvent = { readonly type: "dns"; readonly record: Omit<DnsRecord, "queries">; readonly qtype: number };

export interface DnsOptions {
  readonly policy: NetPolicy;
  readonly pool: NamePool;
  readonly maxRecords: number;
  readonly onEvent?: (e: DnsEvent) => void;
}

const TTL = 300;
const BATCH = 64;
/** TCP: connections at once, queries per connection, the wait for each query, the largest query. */
const TCP_MAX = 16;
const TCP_QUERIES = 256;
const TCP_IDLE_MS = 10_000;
const TCP_QUERY_MAX = 1024;

export class DnsStub {
  private readonly watches = new Map<number, Watch>();
  private readonly tcp = new Set<Socket>();
  private readonly records = new Map<string, DnsRecord>();
  private counts = { queries: 0, answered: 0, refused: 0, unlisted: 0 };
  private closed = false;
  private readonly buf = new Uint8Array(4096);

  constructor(private readonly opts: DnsOptions) {}

  /** Answers datagrams on `fd`, a bound UDP socket (the stub owns it from here on). */
  serveUdp(fd: number): void {
    setNonBlocking(fd);
    const w = watch(fd, EPOLLIN, () => {
      for (let i = 0; i < BATCH && !this.closed; i++) {
        const got = recvDatagram(fd, this.buf);
        if (got === -EAGAIN) break;
        if (typeof got === "number") continue; // too large (dropped), or a queued ICMP error
        const reply = this.answer(this.buf.subarray(0, got.length));
        if (reply && reply.length <= MAX_UDP) sendDatagram(fd, reply, got.from);
      }
      if (!this.closed) w.rearm();
    });
    this.watches.set(fd, w);
  }

  /** Serves DNS over TCP on `fd`, a listening socket (the stub owns it from here on). */
  serveTcp(fd: number): void {
    if (adoptSocket(fd, true) < 0) return closeFd(fd);
    const w = watch(fd, EPOLLIN, () => {
      for (let i = 0; i < BATCH && !this.closed; i++) {
        const c = acceptOne(fd);
        if (c === -EAGAIN) break;
        if (c < 0) continue;
        if (this.tcp.size >= TCP_MAX) closeFd(c);
        else void this.connection(new Socket(c, EPOLLIN));
      }
      if (!this.closed) w.rearm();
    });
    this.watches.set(fd, w);
  }

  /** Stops answering; closes every socket. */
  close(): void {
    this.closed = true;
    for (const [fd, w] of this.watches) {
      w.close();
      closeFd(fd);
    }
    this.watches.clear();
    for (const s of this.tcp) s.cancel(new SocketError("ECANCELED", "the DNS stub closed"));
  }

  report(): DnsReport {
    const { unlisted, ...counts } = this.counts;
    return { ...counts, names: [...this.records.values()], unlisted };
  }

  /** One TCP client: length-prefixed queries, answered in order, until EOF, an error or the idle limit. */
  private async connection(sock: Socket): Promise<void> {
    this.tcp.add(sock);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      for (let n = 0; n < TCP_QUERIES && !this.closed; n++) {
        clearTimeout(timer);
        timer = setTimeout(() => sock.cancel(new SocketError("ETIMEDOUT", "idle")), TCP_IDLE_MS);
        const query = await sock.peek(TCP_QUERY_MAX, (b) => {
          if (b.length < 2) return new Need(2);
          const len = (b[0]! << 8) | b[1]!;
          return b.length < 2 + len ? new Need(2 + len) : b.slice(2, 2 + len);
        });
        sock.consume(query.length + 2);
        const reply = this.answer(query);
        if (!reply) break;
        const framed = new Uint8Array(reply.length + 2);
        framed[0] = reply.length >> 8;
        framed[1] = reply.length & 0xff;
        framed.set(reply, 2);
        await sock.send(framed);
      }
    } catch {
      // EOF, a timeout, a query too large or in too many pieces: the connection ends
    } finally {
      clearTimeout(timer);
      this.tcp.delete(sock);
      sock.close();
    }
  }

  /** The answer to one query, or undefined to say nothing (not a query). */
  answer(query: Uint8Array): Uint8Array | undefined {
    const parsed = parseQuery(query);
    if (!parsed.ok) return parsed.id === undefined ? undefined : buildError(query, parsed.id, parsed.rcode);
    const q = parsed.question;
    this.counts.queries++;
    const norm = normalizeName(q.name);
    if (!norm.ok) return this.refuse(query, q, q.name, `not a host name: ${norm.error}`);
    const name = norm.value;
    if (q.type === TYPE.PTR) {
      const ip = reverseName(name);
      const owner = ip && this.opts.pool.nameOf({ family: 4, bytes: ip });
      if (!owner) return this.refuse(query, q, name, "a reverse lookup of an address bunbox's DNS stub did not give out");
      this.note({ name, outcome: "answered", reason: `the stub's address of ${owner}` }, q.type);
      return buildAnswer(query, q, RCODE.NOERROR, [{ type: TYPE.PTR, ttl: TTL, data: encodeName(owner) }]);
    }
    const d = this.opts.policy.mayResolve(name);
    if (!d.allowed) return this.refuse(query, q, name, d.reason);
    const ip = this.opts.pool.addressOf(name);
    if (!ip) {
      this.note({ name, outcome: "refused", reason: `bunbox's DNS stub has given out ${this.opts.pool.max} names, its limit for a sandbox` }, q.type);
      return buildAnswer(query, q, RCODE.SERVFAIL);
    }
    const address = formatIp(ip);
    this.note({ name, outcome: "answered", reason: d.reason, address }, q.type);
    // Only A: an empty AAAA answer (NODATA) sends a client to the A record.
    return q.type === TYPE.A ? buildAnswer(query, q, RCODE.NOERROR, [{ type: TYPE.A, ttl: TTL, data: ip.bytes }]) : buildAnswer(query, q, RCODE.NOERROR);
  }

  private refuse(query: Uint8Array, q: Parameters<typeof buildAnswer>[1], name: string, reason: string): Uint8Array {
    this.note({ name, outcome: "refused", reason }, q.type);
    return buildAnswer(query, q, RCODE.NXDOMAIN);
  }

  private note(r: Omit<DnsRecord, "queries">, qtype: number): void {
    this.counts[r.outcome]++;
    const key = `${r.outcome}\0${r.name}`;
    const seen = this.records.get(key);
    if (seen) this.records.set(key, { ...seen, queries: seen.queries + 1 });
    else if (this.records.size < this.opts.maxRecords) this.records.set(key, { ...r, queries: 1 });
    else this.counts.unlisted++;
    this.opts.onEvent?.({ type: "dns", record: r, qtype });
  }
}
