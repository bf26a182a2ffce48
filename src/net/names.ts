/**
 * The names a sandbox's DNS stub has answered for, each with an address of
 * its own from 198.18.0.0/15 (RFC 2544's benchmarking range: never a real
 * host's, and refused as a literal by the policy, address.ts). The stub
 * never hands out a real address: a connection to a pool address through
 * the proxy (a SOCKS5 client that resolved first) or, in transparent mode,
 * a plain connect() to one is mapped back to its name and decided as that
 * name.
 *
 * One pool per sandbox: the same name always gets the same address in a
 * sandbox's life, and an address never changes its name. Bounded: a
 * sandboxee asking for endless subdomains of a wildcard gets SERVFAIL once
 * the pool is full, not bunbox's memory.
 */
import { type Ip, parseIp } from "./address.ts";

/** 198.18.0.0/15 has 131072 addresses; the first is left out. */
const BASE = (198 << 24) | (18 << 16);
const SIZE = 1 << 17;

export const DEFAULT_MAX_NAMES = 16384;

function ipOf(n: number): Ip {
  const v = (BASE + n) >>> 0;
  return parseIp(`${v >>> 24}.${(v >> 16) & 0xff}.${(v >> 8) & 0xff}.${v & 0xff}`)!;
}

export class NamePool {
  private readonly byName = new Map<string, Ip>();
  private readonly byIndex = new Map<number, string>();

  constructor(readonly max = DEFAULT_MAX_NAMES) {
    if (!Number.isInteger(max) || max < 1 || max >= SIZE) throw new RangeError(`NamePool: max ${max} is not in 1..${SIZE - 1}`);
  }

  /** `name`'s address, given on first use; undefined once the pool is full. */
  addressOf(name: string): Ip | undefined {
    let ip = this.byName.get(name);
    if (ip) return ip;
    if (this.byName.size >= this.max) return undefined;
    const index = this.byName.size + 1;
    ip = ipOf(index);
    this.byName.set(name, ip);
    this.byIndex.set(index, name);
    return ip;
  }

  /** The name a pool address was given to, if it was. */
  nameOf(ip: Ip): string | undefined {
    if (ip.family !== 4) return undefined;
    const v = ((ip.bytes[0]! << 24) | (ip.bytes[1]! << 16) | (ip.bytes[2]! << 8) | ip.bytes[3]!) >>> 0;
    const index = v - (BASE >>> 0);
    return index > 0 && index < SIZE ? this.byIndex.get(index) : undefined;
  }

  get size(): number {
    return this.byName.size;
  }
}
