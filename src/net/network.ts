/**
 * One `--net proxy` sandbox's network, on bunbox's side: its proxy and its
 * DNS stub, served on the sockets A bound in the sandbox's namespace
 * (src/native/spawn.ts NetSockets), sharing its name pool; closed with the
 * run, when its report becomes the Result's `network`.
 */
import type { NetSockets } from "../native/spawn.ts";
import type { Notification } from "../native/sys.ts";
import { PROXY_PORT } from "./env.ts";
import { type ConnectAnswer, ConnectInterceptor } from "./transparent.ts";
import { type DnsEvent, type DnsReport, DnsStub } from "./dns-stub.ts";
import { TYPE } from "./dns.ts";
import type { NetLimits } from "./limits.ts";
import { NamePool } from "./names.ts";
import type { NetPolicy } from "./policy.ts";
import { NetProxy } from "./proxy.ts";
import { formatEvent, type NetEvent, type NetworkReport } from "./report.ts";
import type { Lookup } from "./resolve.ts";

export interface SandboxNetworkReport extends NetworkReport {
  readonly mode: "proxy" | "proxy-transparent";
  /** What the DNS stub answered and refused. */
  readonly dns: DnsReport;
}

export interface SandboxNetworkOptions {
  readonly mode: "proxy" | "proxy-transparent";
  /** The sockets the spawn bound in the sandbox's namespace (served from serve() on). */
  readonly sockets: NetSockets;
  readonly policy: NetPolicy;
  readonly limits: NetLimits;
  /** The resolver (default: the host's). */
  readonly lookup?: Lookup;
  /** Each connection and DNS answer, for `-v`. */
  readonly onEvent?: (event: NetEvent | DnsEvent) => void;
}

/**
 * How long connections of a sandbox that has ended get to finish on their
 * own (its sockets are closed: the relay sees that within milliseconds)
 * before the rest are aborted.
 */
const CLOSE_GRACE_MS = 200;

export class SandboxNetwork {
  readonly pool = new NamePool();
  readonly proxy: NetProxy;
  readonly dns: DnsStub;
  private readonly interceptor: ConnectInterceptor | undefined;
  private closing: Promise<SandboxNetworkReport> | undefined;

  constructor(private readonly opts: SandboxNetworkOptions) {
    const onEvent = opts.onEvent;
    this.proxy = new NetProxy({
      policy: opts.policy,
      limits: opts.limits,
      names: (ip) => this.pool.nameOf(ip),
      ...(opts.lookup ? { lookup: opts.lookup } : {}),
      ...(onEvent ? { onEvent } : {}),
    });
    this.dns = new DnsStub({ policy: opts.policy, pool: this.pool, maxRecords: opts.limits.maxRecords, ...(onEvent ? { onEvent } : {}) });
    if (opts.mode === "proxy-transparent") this.interceptor = new ConnectInterceptor(this.proxy, opts.sockets.proxy, PROXY_PORT);
  }

  /** proxy-transparent: the answer to a connect() the monitor was sent (transparent.ts); else undefined. */
  get intercept(): ((n: Notification, listener: number) => Promise<ConnectAnswer>) | undefined {
    const i = this.interceptor;
    return i ? (n, listener) => i.handle(n, listener) : undefined;
  }

  /** Serves the sandbox's sockets; they are this network's from here on (closed by close()). */
  serve(): void {
    const { sockets } = this.opts;
    this.dns.serveUdp(sockets.dnsUdp);
    this.dns.serveTcp(sockets.dnsTcp);
    this.proxy.serveListener(sockets.proxy);
  }

  /** Stops serving and ends every connection; the report of the whole run. Idempotent. */
  close(): Promise<SandboxNetworkReport> {
    this.closing ??= (async () => {
      this.dns.close();
      await this.proxy.close({ graceMs: CLOSE_GRACE_MS });
      return { mode: this.opts.mode, ...this.proxy.report(), dns: this.dns.report() };
    })();
    return this.closing;
  }
}

const QTYPES: Record<number, string> = Object.fromEntries(Object.entries(TYPE).map(([k, v]) => [v, k]));

/** One line for `bunbox run -v`: a connection (report.ts formatEvent) or a DNS answer. */
export function formatNetworkEvent(e: NetEvent | DnsEvent): string {
  if (e.type !== "dns") return formatEvent(e);
  const r = e.record;
  const type = QTYPES[e.qtype] ?? `type ${e.qtype}`;
  if (r.outcome === "refused") return `dns: refused ${r.name} ${type}: ${r.reason}`;
  // Only A records are given (an empty answer for the rest sends clients to them).
  const answer = e.qtype === TYPE.A || e.qtype === TYPE.PTR ? (r.address ? ` → ${r.address}` : "") : ": no record (A only)";
  return `dns: ${r.name} ${type}${answer} (${r.reason})`;
}
