/**
 * One sandbox's proxy: HTTP (CONNECT and absolute-URL forwarding) and SOCKS5
 * on one socket, told apart by the first byte (SOCKS5 starts with 0x05, an
 * HTTP method with a capital letter). One listener means one socket to
 * create in the sandbox's network namespace and one port for every proxy
 * variable (HTTP_PROXY=http://127.0.0.1:PORT, ALL_PROXY=socks5h://127.0.0.1:PORT).
 *
 * The proxy never opens a listening socket of its own: it is handed
 * sockets, as docs/network.md describes, either a listening one created in
 * the sandbox's namespace (serveListener: bunbox accepts on it, so accepted
 * connections live in the sandbox's namespace and outgoing ones in the
 * host's) or connections accepted elsewhere (adopt). Both must be TCP.
 *
 * Limits (limits.ts): per proxy, connections at once and in all; per
 * process, an fd budget shared by every proxy, taken from RLIMIT_NOFILE. A
 * connection over a limit is closed at once and reported denied.
 */
import { BunboxError } from "../errors.ts";
import { describeErrno } from "../native/errno.ts";
import { EAGAIN } from "../native/comms.ts";
import { acceptOne, adoptSocket, fdLimit, peerPort } from "../native/net.ts";
import { EPOLLIN, watch, type Watch } from "../native/reactor.ts";
import { closeFd } from "../native/sys.ts";
import { FDS_PER_CONNECTION, type NetLimits, netLimits } from "./limits.ts";
import type { Ip } from "./address.ts";
import type { NetPolicy } from "./policy.ts";
import { type ConnectionRecord, type NetEvent, type NetworkReport, ReportBook } from "./report.ts";
import { type Lookup, systemLookup } from "./resolve.ts";
import type { Connection, SessionContext } from "./connection.ts";
import { Session } from "./session.ts";
import { TransparentSession } from "./transparent.ts";

export interface ProxyOptions {
  readonly policy: NetPolicy;
  readonly limits?: Partial<NetLimits>;
  /** Ports where a tunnel must carry TLS (its SNI checked even if the client sends nothing else). Default [443]. */
  readonly tlsPorts?: readonly number[];
  /** The resolver (default: the host's, through getaddrinfo). */
  readonly lookup?: Lookup;
  /** Each connection opening and ending, for `-v`. */
  readonly onEvent?: (event: NetEvent) => void;
  /** The sandbox's DNS stub's names: a target that is one of its addresses is decided as its name. */
  readonly names?: (ip: Ip) => string | undefined;
}

/** Connections in flight in all proxies of this process, against the fd budget. */
let processConnections = 0;
let processBudget: number | undefined;

/** How many connections all proxies together may hold: a quarter of the fds is kept for the rest of bunbox. */
function budget(): number {
  processBudget ??= Math.max(16, Math.floor((fdLimit() * 3) / 4 / FDS_PER_CONNECTION));
  return processBudget;
}

const ACCEPT_BATCH = 64;
/** How long a trapped connect()'s socket may take to reach the proxy once connected (on loopback: at once). */
const JOIN_WAIT_MS = 5000;
const ECONNREFUSED = 111;
const ACCEPT_BACKOFF_MS = 100;
const ECONNABORTED = 103;

export class NetProxy {
  readonly limits: NetLimits;
  private readonly book: ReportBook;
  private readonly sessions = new Set<Connection>();
  /** Transparent sessions whose sandboxee socket is on its way, by that socket's local port. */
  private readonly joining = new Map<number, { session: TransparentSession; timer: ReturnType<typeof setTimeout> }>();
  private readonly listeners = new Map<number, Watch>();
  private readonly idle: (() => void)[] = [];
  private readonly context: Omit<SessionContext, "finished">;
  private nextId = 1;
  private served = 0;
  private closed = false;

  constructor(private readonly opts: ProxyOptions) {
    this.limits = netLimits(opts.limits);
    this.book = new ReportBook(this.limits.maxRecords);
    this.context = {
      policy: opts.policy,
      limits: this.limits,
      tlsPorts: new Set(opts.tlsPorts ?? [443]),
      lookup: opts.lookup ?? systemLookup,
      ...(opts.names ? { names: opts.names } : {}),
      opened: (record) => opts.onEvent?.({ type: "open", record }),
    };
  }

  /**
   * Accepts connections on `fd`, a listening TCP socket, until close().
   * The proxy owns the fd from here on.
   */
  serveListener(fd: number): void {
    this.checkOpen(fd);
    const r = adoptSocket(fd, true);
    if (r < 0) {
      closeFd(fd);
      throw new BunboxError("net", `the proxy's listening socket (fd ${fd}) is not a listening TCP socket: ${describeErrno(-r)}`);
    }
    const w = watch(fd, EPOLLIN, () => {
      // A batch per wake-up, so one busy listener cannot hold the event loop.
      let error = 0;
      for (let i = 0; i < ACCEPT_BATCH && !this.closed; i++) {
        const c = acceptOne(fd);
        if (c === -ECONNABORTED) continue;
        if (c < 0) {
          error = c === -EAGAIN ? 0 : c;
          break;
        }
        this.serve(c);
      }
      if (this.closed) return;
      // Out of fds (EMFILE): the connection stays queued and the listener
      // readable, so re-arming at once would spin; wait for fds to free up.
      if (error) setTimeout(() => this.closed || w.rearm(), ACCEPT_BACKOFF_MS);
      else w.rearm();
    });
    this.listeners.set(fd, w);
  }

  /** Serves one connected TCP socket; the proxy owns the fd from here on. */
  adopt(fd: number): void {
    this.checkOpen(fd);
    const r = adoptSocket(fd, false);
    if (r < 0) {
      closeFd(fd);
      this.record(this.refusedRecord(`not a connected TCP socket: ${describeErrno(-r)}`, "failed"));
      return;
    }
    this.serve(fd);
  }

  /**
   * Transparent mode (transparent.ts): a connect() to host:port the
   * sandboxee made. Decides, resolves and connects like any request; then
   * `join` connects the sandboxee's socket to the proxy's listener and
   * returns its local port (or -errno), by which the accepted connection is
   * known and relayed. Resolves with 0, or the errno the connect() fails with.
   */
  async intercept(host: string, port: number, join: () => number): Promise<number> {
    if (this.closed) return ECONNREFUSED;
    const over = this.overLimit();
    if (over) {
      this.record({ ...this.refusedRecord(`connection limit reached: ${over}`, "denied"), protocol: "transparent", host, port });
      return ECONNREFUSED;
    }
    const session = new TransparentSession(this.sessionContext(() => session), this.nextId++);
    this.admit(session);
    const errno = await session.prepare(host, port);
    if (errno) return errno;
    if (this.closed) {
      session.abandon("the proxy closed");
      return ECONNREFUSED;
    }
    const local = join();
    if (local < 0) {
      session.abandon(`cannot connect the sandboxee's socket to the proxy: ${describeErrno(-local)}`);
      return -local;
    }
    const timer = setTimeout(() => {
      if (this.joining.get(local)?.session !== session) return;
      this.joining.delete(local);
      session.abandon("the sandboxee's socket never reached the proxy");
    }, JOIN_WAIT_MS);
    this.joining.set(local, { session, timer });
    return 0;
  }

  /** Every connection so far. */
  report(): NetworkReport {
    return this.book.report();
  }

  /** Connections being served now. */
  get active(): number {
    return this.sessions.size;
  }

  /**
   * Stops accepting, ends every connection (tunnels are aborted), and
   * resolves once all are reported. With `graceMs`, connections first get
   * that long to end by themselves (a sandbox that has ended: its sockets
   * are closed, and the relay is seeing it).
   */
  async close(opts: { graceMs?: number } = {}): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const [fd, w] of this.listeners) {
        w.close();
        closeFd(fd);
      }
      this.listeners.clear();
      for (const { timer } of this.joining.values()) clearTimeout(timer);
      this.joining.clear(); // abort() below abandons them
      if (opts.graceMs && this.sessions.size > 0) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((resolve) => {
          this.idle.push(resolve);
          timer = setTimeout(resolve, opts.graceMs);
        });
        clearTimeout(timer);
      }
      for (const s of this.sessions) s.abort();
    }
    if (this.sessions.size > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  private checkOpen(fd: number): void {
    if (this.closed) {
      closeFd(fd);
      throw new BunboxError("net", "the proxy is closed");
    }
  }

  /** Why one more connection is over a limit, or undefined. */
  private overLimit(): string | undefined {
    if (this.sessions.size >= this.limits.maxConcurrent) return `${this.limits.maxConcurrent} connections at once (the sandbox's limit)`;
    if (this.limits.maxTotal > 0 && this.served >= this.limits.maxTotal) return `${this.limits.maxTotal} connections in all (the sandbox's limit)`;
    if (processConnections >= budget()) return `bunbox's file descriptor budget (${budget()} connections across sandboxes)`;
    return undefined;
  }

  private serve(fd: number): void {
    // A trapped connect()'s socket arriving: already decided and counted.
    const port = this.joining.size > 0 ? peerPort(fd) : -1;
    const joined = this.joining.get(port);
    if (joined) {
      this.joining.delete(port);
      clearTimeout(joined.timer);
      return joined.session.attach(fd);
    }
    const over = this.overLimit();
    if (over) {
      closeFd(fd);
      this.record(this.refusedRecord(`connection limit reached: ${over}`, "denied"));
      return;
    }
    const session = new Session(this.sessionContext(() => session), fd, this.nextId++);
    this.admit(session);
    void session.run();
  }

  /** Counts a session in (until its record comes). */
  private admit(session: Connection): void {
    this.served++;
    processConnections++;
    this.sessions.add(session);
  }

  private sessionContext(self: () => Connection): SessionContext {
    return {
      ...this.context,
      finished: (record) => {
        this.sessions.delete(self());
        processConnections--;
        this.record(record);
        if (this.sessions.size === 0) this.idle.splice(0).forEach((f) => f());
      },
    };
  }

  private refusedRecord(reason: string, outcome: "denied" | "failed"): ConnectionRecord {
    return { id: this.nextId++, protocol: "unknown", host: "", port: 0, outcome, reason, bytesUp: 0, bytesDown: 0, startedAt: Date.now(), durationMs: 0 };
  }

  private record(r: ConnectionRecord): void {
    this.book.add(r);
    this.opts.onEvent?.({ type: "end", record: r });
  }
}
