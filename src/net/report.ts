/**
 * What the proxy tells about each connection: one record per connection
 * (for the Result and --json), an event when one opens or ends (for `-v`
 * lines), and totals.
 */

/** transparent: a connect() trapped in --net proxy-transparent (src/net/transparent.ts). */
export type Protocol = "http" | "connect" | "socks5" | "transparent" | "unknown";

/**
 * allowed: the policy let it through (it may still have ended in an error,
 * see `end`); denied: the policy or a limit refused it; failed: it never got
 * to a decision or a connection (a malformed request, a timeout, a name that
 * does not resolve, a refused upstream connect).
 */
export type Outcome = "allowed" | "denied" | "failed";

export interface ConnectionRecord {
  /** In the order connections arrived, from 1. */
  readonly id: number;
  readonly protocol: Protocol;
  /** As the client asked for it ("" when it never said); the name, when it asked for an address of the DNS stub's. */
  readonly host: string;
  /** The address of bunbox's DNS stub the client asked for, standing for `host` (names.ts). */
  readonly stubAddress?: string;
  readonly port: number;
  readonly outcome: Outcome;
  /** Why, in words; for a denial, the rule or the check that refused it. */
  readonly reason: string;
  /** The policy entry that decided, as written, when one did. */
  readonly rule?: string;
  /** The address the proxy connected to ("127.0.0.1:8443", "[::1]:80"). */
  readonly address?: string;
  /** The server name of the client's TLS ClientHello, when it sent one. */
  readonly sni?: string;
  /** Bytes client → server and server → client through the tunnel. */
  readonly bytesUp: number;
  readonly bytesDown: number;
  /** When it was accepted (ms since the epoch) and how long it lasted. */
  readonly startedAt: number;
  readonly durationMs: number;
  /** How an allowed connection ended: "closed", "idle timeout", "ECONNRESET"… */
  readonly end?: string;
}

export interface NetworkReport {
  /** Every connection, up to the maxRecords limit. */
  readonly connections: readonly ConnectionRecord[];
  /** Connections past maxRecords: counted below, not listed. */
  readonly unlisted: number;
  readonly allowed: number;
  readonly denied: number;
  readonly failed: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
}

export type NetEvent = { readonly type: "open" | "end"; readonly record: ConnectionRecord };

const PROTOCOL_NAME: Record<Protocol, string> = { http: "HTTP", connect: "CONNECT", socks5: "SOCKS5", transparent: "connect()", unknown: "?" };

function size(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** One line for `bunbox run -v`. */
export function formatEvent(e: NetEvent): string {
  const r = e.record;
  const what = r.host ? `${PROTOCOL_NAME[r.protocol]} ${r.host.includes(":") && !r.host.startsWith("[") ? `[${r.host}]` : r.host}:${r.port}` : `connection ${r.id}`;
  if (e.type === "open") return `net: open ${what} → ${r.address} (${r.reason})`;
  if (r.outcome !== "allowed") return `net: ${r.outcome} ${what}: ${r.reason}`;
  return `net: closed ${what} → ${r.address}: ${size(r.bytesUp)} up, ${size(r.bytesDown)} down, ${Math.round(r.durationMs)} ms (${r.end ?? "closed"})`;
}

/** Collects records and totals; bounded by `maxRecords`. */
export class ReportBook {
  private readonly records: ConnectionRecord[] = [];
  private unlisted = 0;
  private counts = { allowed: 0, denied: 0, failed: 0, bytesUp: 0, bytesDown: 0 };

  constructor(private readonly maxRecords: number) {}

  add(r: ConnectionRecord): void {
    if (this.records.length < this.maxRecords) this.records.push(r);
    else this.unlisted++;
    this.counts[r.outcome]++;
    this.counts.bytesUp += r.bytesUp;
    this.counts.bytesDown += r.bytesDown;
  }

  report(): NetworkReport {
    return { connections: [...this.records].sort((a, b) => a.id - b.id), unlisted: this.unlisted, ...this.counts };
  }
}
