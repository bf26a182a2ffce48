/**
 * The entries of the allow and deny lists, as written by a person:
 *
 *   example.com          that name, any port
 *   example.com:443      that name, port 443
 *   *.example.com        every subdomain of example.com, not example.com itself
 *   10.0.0.1, 10.0.0.0/8, ::1, fd00::/8          addresses and ranges
 *   10.0.0.0/8:5432, [fd00::/8]:443, [::1]:80    the same, one port
 *
 * A bare "*" is refused: allowing every name is `--net host` with extra
 * steps, and it would open nothing the special ranges guard anyway.
 */
import { type Cidr, cidrContains, formatCidr, type Ip, parseCidr, parseIpv4Loose } from "./address.ts";
import { type Checked, normalizeName } from "./host.ts";

export type HostPattern =
  | { readonly kind: "name"; readonly name: string; readonly port?: number; readonly text: string }
  | { readonly kind: "suffix"; readonly suffix: string; readonly port?: number; readonly text: string }
  | { readonly kind: "cidr"; readonly cidr: Cidr; readonly port?: number; readonly text: string };

function fail(error: string): Checked<never> {
  return { ok: false, error };
}

function parsePort(s: string): number | undefined {
  return /^[1-9]\d{0,4}$/.test(s) && Number(s) <= 65535 ? Number(s) : undefined;
}

/** Splits off ":port": brackets around IPv6, and a bare IPv6 has no port. */
function splitPort(text: string): Checked<{ host: string; port?: number }> {
  let host = text;
  let portText: string | undefined;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) return fail("\"[\" without \"]\"");
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) return fail(`unexpected "${rest}" after "]"`);
      portText = rest.slice(1);
    }
    if (!host.includes(":")) return fail("brackets are for IPv6 addresses");
  } else if (text.split(":").length === 2) {
    [host, portText] = text.split(":") as [string, string];
  }
  if (portText === undefined) return { ok: true, value: { host } };
  const port = parsePort(portText);
  if (port === undefined) return fail(`"${portText}" is not a port (1-65535)`);
  return { ok: true, value: { host, port } };
}

/** One allow/deny entry, or why it is not one (the caller names the entry). */
export function parsePattern(text: string): Checked<HostPattern> {
  const split = splitPort(text.trim());
  if (!split.ok) return split;
  const { host, port } = split.value;
  const withPort = port === undefined ? {} : { port };
  if (host === "*" || host === "*.") {
    return fail("a bare * would allow every name: list the hosts (or *.example.com), or use --net host");
  }
  if (host.startsWith("*.")) {
    const suffix = normalizeName(host.slice(2));
    if (!suffix.ok) return fail(suffix.error.includes("\"*\"") ? "* may only begin a pattern, as *.example.com" : suffix.error);
    return { ok: true, value: { kind: "suffix", suffix: suffix.value, ...withPort, text } };
  }
  if (host.includes("*")) return fail("* may only begin a pattern, as *.example.com");
  if (host.includes(":") || host.includes("/") || /^[\d.]+$/.test(host)) {
    const cidr = parseCidr(host);
    if (cidr) return { ok: true, value: { kind: "cidr", cidr, ...withPort, text } };
    if (parseIpv4Loose(host)) return fail("write an IPv4 address as four decimal numbers, like 10.0.0.1");
    return fail("not an IP address or CIDR range (a range's host bits must be zero, like 10.0.0.0/8)");
  }
  if (parseIpv4Loose(host)) return fail("write an IPv4 address as four decimal numbers, like 10.0.0.1");
  const name = normalizeName(host);
  if (!name.ok) return name;
  return { ok: true, value: { kind: "name", name: name.value, ...withPort, text } };
}

function portMatches(p: HostPattern, port: number): boolean {
  return p.port === undefined || p.port === port;
}

/** Does a name pattern match this normalised name and port? */
export function matchesName(p: HostPattern, name: string, port: number): boolean {
  if (!portMatches(p, port)) return false;
  if (p.kind === "name") return p.name === name;
  if (p.kind === "suffix") return name.endsWith(`.${p.suffix}`);
  return false;
}

/** Does an IP/CIDR pattern cover this (canonical) address and port? */
export function matchesIp(p: HostPattern, ip: Ip, port: number): boolean {
  return p.kind === "cidr" && portMatches(p, port) && cidrContains(p.cidr, ip);
}

/** The pattern in its normalised spelling (for -v). */
export function formatPattern(p: HostPattern): string {
  const host = p.kind === "name" ? p.name : p.kind === "suffix" ? `*.${p.suffix}` : formatCidr(p.cidr);
  if (p.port === undefined) return host;
  return p.kind === "cidr" && p.cidr.ip.family === 6 ? `[${host}]:${p.port}` : `${host}:${p.port}`;
}
