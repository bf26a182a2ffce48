/**
 * What one sandbox's proxy lets its sandboxee use, so that a sandboxee
 * opening thousands of connections, or trickling a request header one byte a
 * minute, cannot exhaust bunbox's fds, memory or event loop.
 *
 * Each connection costs the host up to FDS_PER_CONNECTION fds (the client
 * socket, the upstream socket, a dup while the first TLS bytes are checked,
 * two pipes for splice) and, while its request is read, one peek buffer of
 * at most maxHeaderBytes (a ClientHello: MAX_HELLO). Besides the
 * per-sandbox limits, all proxies of a process share one fd budget taken
 * from RLIMIT_NOFILE (proxy.ts).
 */
import { UsageError } from "../errors.ts";

export interface NetLimits {
  /** Connections open at once (default 256). */
  readonly maxConcurrent: number;
  /** Connections over the run, refused ones excluded (default 16384; 0: no limit). */
  readonly maxTotal: number;
  /** From accepting a connection to a complete request head or SOCKS request (default 10 s). */
  readonly headerTimeoutMs: number;
  /** Largest request head, in bytes (default 16 KiB). */
  readonly maxHeaderBytes: number;
  /** Resolving and connecting upstream (default 10 s). */
  readonly connectTimeoutMs: number;
  /** For the first TLS bytes on a TLS port, after the tunnel opened (default 10 s). */
  readonly handshakeTimeoutMs: number;
  /** A tunnel with no byte moving either way ends (default 10 min; 0: never). */
  readonly idleTimeoutMs: number;
  /** Once one direction has finished, the other's idle limit (default 60 s; 0: none). */
  readonly halfOpenTimeoutMs: number;
  /** Connection records kept in the report; later ones are only counted (default 4096). */
  readonly maxRecords: number;
}

export const DEFAULT_NET_LIMITS: NetLimits = Object.freeze({
  maxConcurrent: 256,
  maxTotal: 16384,
  headerTimeoutMs: 10_000,
  maxHeaderBytes: 16 * 1024,
  connectTimeoutMs: 10_000,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 600_000,
  halfOpenTimeoutMs: 60_000,
  maxRecords: 4096,
});

export const FDS_PER_CONNECTION = 7;

const RANGES: Record<keyof NetLimits, [min: number, max: number]> = {
  maxConcurrent: [1, 65536],
  maxTotal: [0, 2 ** 31],
  headerTimeoutMs: [1, 2 ** 31],
  maxHeaderBytes: [1024, 1024 * 1024],
  connectTimeoutMs: [1, 2 ** 31],
  handshakeTimeoutMs: [1, 2 ** 31],
  idleTimeoutMs: [0, 2 ** 32 - 1],
  halfOpenTimeoutMs: [0, 2 ** 32 - 1],
  maxRecords: [0, 1 << 20],
};

/** The defaults with `partial` over them; a value out of range is a UsageError naming it. */
export function netLimits(partial: Partial<NetLimits> = {}): NetLimits {
  const out = { ...DEFAULT_NET_LIMITS };
  for (const [key, value] of Object.entries(partial) as [keyof NetLimits, number | undefined][]) {
    if (value === undefined) continue;
    const range = RANGES[key];
    if (!range) throw new UsageError(`net limits.${key}`, "not a network limit");
    if (!Number.isInteger(value) || value < range[0] || value > range[1]) {
      throw new UsageError(`net limits.${key}`, `${value} is not an integer in ${range[0]}..${range[1]}`);
    }
    out[key] = value;
  }
  return Object.freeze(out);
}
