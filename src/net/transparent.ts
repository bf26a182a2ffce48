/**
 * --net proxy-transparent: a program that ignores the proxy variables (a
 * Go binary, most CLIs) connects as it would anywhere, and its connect()
 * goes through the proxy all the same.
 *
 * The policy's filter sends connect() to the monitor (Policy.filter: where
 * the policy allows connect, it traces it). For a TCP connect to an address
 * outside the sandbox, the monitor asks ConnectInterceptor, while the
 * sandboxee's thread waits:
 *
 *   1. the sockaddr is copied out of its memory once; the decision is made
 *      on that copy, and the original call never runs (no CONTINUE: no
 *      time-of-check race on the address);
 *   2. an address of the DNS stub stands for its name (names.ts); any other
 *      is an IP literal, decided as one (refused unless an IP/CIDR entry);
 *   3. the proxy decides, resolves and connects upstream (TransparentSession,
 *      connection.ts) before the sandboxee's connect() returns, so a refusal
 *      or a failure is its errno: ECONNREFUSED for a denial, the upstream's
 *      own (ETIMEDOUT, ECONNREFUSED, EHOSTUNREACH) otherwise;
 *   4. bunbox takes a dup of the sandboxee's socket (pidfd_getfd) and
 *      connects it to the proxy's listener on the sandbox's own loopback;
 *      the proxy knows the accepted connection by its port and relays it to
 *      the upstream connection, SNI gate included; connect() returns 0.
 *
 * The sandboxee keeps its own socket, in its own namespace: nothing of the
 * host's network ever enters it, and if anything here failed open the
 * namespace would still have no route out (ENETUNREACH). Everything else
 * (UDP, loopback, a socket of another namespace, an address bunbox cannot
 * read) runs as the kernel would run it: in the sandbox's namespace. Costs:
 * getpeername() names the proxy, not the target; a non-blocking connect()
 * returns 0 at once instead of EINPROGRESS.
 */
import { errnoNumber } from "../native/errno.ts";
import { interceptAddress, interceptJoin, interceptTake } from "../native/net.ts";
import type { Notification } from "../native/sys.ts";
import { closeFd } from "../native/sys.ts";
import { canonical, formatIp, type Ip } from "./address.ts";
import { Connection } from "./connection.ts";
import type { Target } from "./host.ts";
import type { NetProxy } from "./proxy.ts";
import { Socket } from "./socket.ts";
import type { Upstream } from "./upstream.ts";
import { EPOLLIN } from "../native/reactor.ts";

/** How the monitor answers a trapped connect(). */
export type ConnectAnswer = { readonly continue: true } | { readonly errno: number } | { readonly returns: number };

const CONTINUE: ConnectAnswer = Object.freeze({ continue: true });
const ECONNREFUSED = 111;
const AF_INET = 2;
const AF_INET6 = 10;

/**
 * One trapped connect(), from the decision to the relay: the upstream is
 * connected first (prepare), the sandboxee's socket arrives at the proxy
 * later (attach).
 */
export class TransparentSession extends Connection {
  private prepared: (Upstream & { target: Target }) | undefined;

  /** Decides, resolves and connects: 0, or the errno the sandboxee's connect() gets. */
  async prepare(host: string, port: number): Promise<number> {
    this.record.protocol = "transparent";
    try {
      this.prepared = await this.decideAndConnect(host, port, undefined);
    } catch (e) {
      this.failed(e);
    }
    if (this.prepared) return 0;
    const r = this.refusal;
    if (!r || r.outcome === "denied") return ECONNREFUSED;
    const code = r.code === "ENOTFOUND" ? "EHOSTUNREACH" : r.code;
    return (code && errnoNumber(code)) || ECONNREFUSED;
  }

  /** The sandboxee's socket reached the proxy: relay it (gated: its first bytes are checked). */
  attach(fd: number): void {
    this.client = this.track(new Socket(fd, EPOLLIN));
    this.handOff(this.prepared!, true);
  }

  /** It never arrived, or could not be sent: the upstream goes, the record says why. */
  abandon(reason: string): void {
    this.prepared?.socket.close();
    this.finish({ outcome: "failed", reason });
  }

  /** The proxy is closing. */
  override abort(): void {
    if (this.client) return super.abort();
    this.abandon("the proxy closed");
  }
}

/** Is `ip` (canonical: a mapped IPv4 is IPv4) one the sandbox reaches by itself (127/8, 0/8, ::1, ::), so not the proxy's? */
function local(ip: Ip): boolean {
  if (ip.family === 4) return ip.bytes[0] === 127 || ip.bytes[0] === 0;
  return ip.bytes.subarray(0, 15).every((b) => b === 0) && ip.bytes[15]! <= 1;
}

/** A sockaddr_in or sockaddr_in6 (host byte order family, network order port): its address and port, or undefined. */
function parseSockaddr(b: Uint8Array): { ip: Ip; port: number } | undefined {
  if (b.length < 2) return undefined;
  const family = b[0]! | (b[1]! << 8);
  const port = b.length >= 4 ? (b[2]! << 8) | b[3]! : 0;
  if (family === AF_INET && b.length >= 16) return { ip: canonical({ family: 4, bytes: b.slice(4, 8) }), port };
  if (family === AF_INET6 && b.length >= 24) return { ip: canonical({ family: 6, bytes: b.slice(8, 24) }), port };
  return undefined;
}

export class ConnectInterceptor {
  constructor(
    private readonly proxy: NetProxy,
    /** The proxy's listener: its port, and its network namespace, which a socket must share. */
    private readonly listenerFd: number,
    private readonly port: number,
  ) {}

  /** The answer to connect() notification `n` of `listener` (the seccomp listener). */
  async handle(n: Notification, listener: number): Promise<ConnectAnswer> {
    const fd = Number(BigInt.asIntN(32, n.args[0]!));
    const bytes = interceptAddress(listener, n.id, n.pid, n.args[1]!, Number(n.args[2]! & 0xffffffffn));
    if (typeof bytes === "number") return CONTINUE; // gone, or a bad pointer the kernel will refuse itself
    const to = parseSockaddr(bytes);
    if (!to || to.port === 0 || local(to.ip)) return CONTINUE;
    // Not a TCP socket of this sandbox (UDP, or a socket the host mapped in): as the kernel would have it.
    const sock = interceptTake(listener, n.id, n.pid, fd, this.listenerFd);
    if (sock < 0) return CONTINUE;
    try {
      // A DNS stub address stands for its name there (connection.ts decideAndConnect).
      const errno = await this.proxy.intercept(formatIp(to.ip), to.port, () => interceptJoin(sock, this.port));
      return errno ? { errno } : { returns: 0 };
    } finally {
      closeFd(sock);
    }
  }
}
