/**
 * IP addresses for the network policy: parsing (strict for policy entries,
 * inet_aton's loose forms for what a sandboxee sends) and CIDR ranges; the
 * special ranges a name must never silently lead to are src/net/special.ts.
 *
 * Why the loose parse: glibc's getaddrinfo and inet_aton accept "127.1",
 * "0x7f000001" and "017700000001" as 127.0.0.1. A target written that way is
 * an IP literal, not a name, whatever it looks like.
 */

export interface Ip {
  readonly family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  readonly bytes: Uint8Array;
}

export interface Cidr {
  readonly ip: Ip;
  /** Prefix length: 0–32 or 0–128. */
  readonly prefix: number;
}

/** Dotted quad, four decimal numbers without leading zeros (policy entries). */
export function parseIpv4(s: string): Ip | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255) return undefined;
    bytes[i] = Number(p);
  }
  return { family: 4, bytes };
}

/**
 * inet_aton's forms: one to four parts, each decimal, 0x-hex or 0-octal; the
 * last part fills the remaining bytes ("127.1" is 127.0.0.1).
 */
export function parseIpv4Loose(s: string): Ip | undefined {
  const parts = s.split(".");
  if (parts.length > 4) return undefined;
  const values: number[] = [];
  for (const p of parts) {
    let v: number;
    if (/^0[xX][0-9a-fA-F]*$/.test(p)) v = p.length === 2 ? 0 : parseInt(p.slice(2), 16);
    else if (/^0[0-7]*$/.test(p)) v = p.length === 1 ? 0 : parseInt(p.slice(1), 8);
    else if (/^[1-9]\d*$/.test(p)) v = Number(p);
    else return undefined;
    if (!Number.isFinite(v) || p.length > 12) return undefined;
    values.push(v);
  }
  const last = values.pop()!;
  if (values.some((v) => v > 255) || last >= 2 ** (8 * (4 - values.length))) return undefined;
  const bytes = new Uint8Array(4);
  values.forEach((v, i) => (bytes[i] = v));
  for (let i = 3, rest = last; i >= values.length; i--, rest = Math.floor(rest / 256)) bytes[i] = rest % 256;
  return { family: 4, bytes };
}

/** IPv6 text (RFC 4291 forms, an IPv4 tail allowed); no zone id, no brackets. */
export function parseIpv6(s: string): Ip | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || s.length > 45) return undefined;
  let tail: Uint8Array | undefined;
  let text = s;
  const lastColon = s.lastIndexOf(":");
  if (s.indexOf(".", lastColon) >= 0) {
    const v4 = parseIpv4(s.slice(lastColon + 1));
    if (!v4) return undefined;
    tail = v4.bytes;
    text = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0]!);
  const back = halves.length === 2 ? groups(halves[1]!) : [];
  const total = head.length + back.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return undefined;
  const all = [...head, ...Array<string>(8 - total).fill("0"), ...back];
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(all[i]!)) return undefined;
    const v = parseInt(all[i]!, 16);
    bytes[2 * i] = v >> 8;
    bytes[2 * i + 1] = v & 0xff;
  }
  if (tail) bytes.set(tail, 12);
  return { family: 6, bytes };
}

/** Either family, strict forms (policy entries, resolver answers). */
export function parseIp(s: string): Ip | undefined {
  return s.includes(":") ? parseIpv6(s) : parseIpv4(s);
}

export function formatIp(ip: Ip): string {
  const b = ip.bytes;
  if (ip.family === 4) return b.join(".");
  const g = Array.from({ length: 8 }, (_, i) => (b[2 * i]! << 8) | b[2 * i + 1]!);
  // RFC 5952: the longest run (≥ 2) of zero groups becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/** "a.b.c.d", "[v6]" for v6 beside a port. */
export function formatHostPort(ip: Ip, port: number): string {
  return ip.family === 6 ? `[${formatIp(ip)}]:${port}` : `${formatIp(ip)}:${port}`;
}

/**
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address: a
 * connect() to one reaches the other, so every check sees the IPv4 form.
 */
export function canonical(ip: Ip): Ip {
  const b = ip.bytes;
  if (ip.family === 6 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return { family: 4, bytes: b.slice(12) };
  }
  return ip;
}

export function parseCidr(s: string): Cidr | undefined {
  const slash = s.indexOf("/");
  const ip = parseIp(slash < 0 ? s : s.slice(0, slash));
  if (!ip) return undefined;
  const max = ip.family === 4 ? 32 : 128;
  if (slash < 0) return { ip, prefix: max };
  const p = s.slice(slash + 1);
  if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > max) return undefined;
  const prefix = Number(p);
  // Host bits set ("10.1.2.3/8") are a typo more often than not: refuse them.
  if (!hostBitsClear(ip.bytes, prefix)) return undefined;
  return { ip, prefix };
}

function hostBitsClear(bytes: Uint8Array, prefix: number): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - 8 * i));
    if ((bytes[i]! & (0xff >> keep)) !== 0) return false;
  }
  return true;
}

function sameBits(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((a[i]! & mask) !== (b[i]! & mask)) return false;
  }
  return true;
}

export function cidrContains(c: Cidr, ip: Ip): boolean {
  return c.ip.family === ip.family && sameBits(c.ip.bytes, ip.bytes, c.prefix);
}

export function formatCidr(c: Cidr): string {
  return c.prefix === (c.ip.family === 4 ? 32 : 128) ? formatIp(c.ip) : `${formatIp(c.ip)}/${c.prefix}`;
}
