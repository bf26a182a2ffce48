/**
 * The special ranges a name must never silently lead to (loopback,
 * private, link-local, cloud metadata…), and the IPv6 forms that carry an
 * IPv4 address. A module of its own, required where an address is first
 * decided (src/net/policy.ts): its table is built when the module is
 * evaluated, and a run without a network policy never needs it (README.md,
 * "Start-up").
 */
import { type Cidr, canonical, cidrContains, formatIp, type Ip, parseCidr } from "./address.ts";

/** A range no name may lead to unless an IP/CIDR entry opens it. */
export interface SpecialRange {
  readonly cidr: Cidr;
  /** What it is, for the person reading a refusal. */
  readonly what: string;
}

function range(text: string, what: string): SpecialRange {
  return { cidr: parseCidr(text)!, what };
}

/** Most specific first: the first match names the address. */
const SPECIAL: readonly SpecialRange[] = [
  range("169.254.169.254", "the cloud metadata address"),
  range("169.254.170.2", "the cloud metadata address (AWS ECS credentials)"),
  range("100.100.100.200", "the cloud metadata address (Alibaba Cloud)"),
  range("168.63.129.16", "the cloud metadata address (Azure WireServer)"),
  range("fd00:ec2::254", "the cloud metadata address (AWS IPv6)"),
  range("0.0.0.0/8", "\"this host\" (0.0.0.0/8)"),
  range("127.0.0.0/8", "loopback"),
  range("10.0.0.0/8", "a private address (RFC 1918)"),
  range("172.16.0.0/12", "a private address (RFC 1918)"),
  range("192.168.0.0/16", "a private address (RFC 1918)"),
  range("100.64.0.0/10", "a shared (CGNAT) address (RFC 6598)"),
  range("169.254.0.0/16", "link-local"),
  range("192.0.0.0/24", "an IETF protocol address"),
  range("192.0.2.0/24", "a documentation address"),
  range("198.51.100.0/24", "a documentation address"),
  range("203.0.113.0/24", "a documentation address"),
  range("198.18.0.0/15", "a benchmarking address"),
  range("224.0.0.0/4", "multicast"),
  range("240.0.0.0/4", "reserved or broadcast"),
  range("::/128", "the unspecified address"),
  range("::1/128", "loopback"),
  range("64:ff9b:1::/48", "local-use NAT64"),
  range("100::/64", "discard-only"),
  range("2001:db8::/32", "a documentation address"),
  range("fc00::/7", "a unique local address (ULA)"),
  range("fe80::/10", "link-local"),
  range("fec0::/10", "site-local"),
  range("ff00::/8", "multicast"),
];

/** IPv6 prefixes that carry an IPv4 address, and where it sits. */
const EMBEDDING: readonly { cidr: Cidr; at: number; what: string }[] = [
  { cidr: parseCidr("::/96")!, at: 12, what: "IPv4-compatible IPv6 form" },
  { cidr: parseCidr("64:ff9b::/96")!, at: 12, what: "NAT64 form" },
  { cidr: parseCidr("2002::/16")!, at: 2, what: "6to4 form" },
];

/** The special range `ip` falls in (checked in its canonical form), if any. */
export function specialRange(ip: Ip): SpecialRange | undefined {
  const c = canonical(ip);
  const hit = SPECIAL.find((r) => cidrContains(r.cidr, c));
  if (hit) return hit;
  for (const e of EMBEDDING) {
    if (!cidrContains(e.cidr, c)) continue;
    const inner: Ip = { family: 4, bytes: c.bytes.slice(e.at, e.at + 4) };
    const r = SPECIAL.find((s) => cidrContains(s.cidr, inner));
    if (r) return { cidr: e.cidr, what: `the ${e.what} of ${formatIp(inner)} (${r.what})` };
  }
  return undefined;
}
