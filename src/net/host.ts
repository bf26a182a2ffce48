/**
 * Host names as the policy compares them, and the targets a sandboxee asks
 * for (a CONNECT authority, a SOCKS5 address, an absolute URL's host).
 *
 * One normalisation serves patterns and targets, so they always compare the
 * same way: lower case, one trailing dot dropped, and a name with non-ASCII
 * letters turned into its IDNA (punycode) form by UTS #46, as browsers and
 * resolvers do ("ÉXAMPLE.com" and "xn--xample-9ua.com" are one name).
 * Characters a DNS name cannot hold are refused before that: WHATWG's
 * domainToASCII would percent-decode "ex%41mple" into another name.
 */
import { canonical, type Ip, parseIpv4Loose, parseIpv6 } from "./address.ts";

export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
const fail = <T>(error: string): Checked<T> => ({ ok: false, error });

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** A DNS name in the form the policy compares, or why it is not one. */
export function normalizeName(raw: string): Checked<string> {
  const bad = /[\x00-\x2c\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]/.exec(raw);
  if (bad) return fail(`${JSON.stringify(bad[0])} cannot appear in a host name`);
  let name = raw.endsWith(".") ? raw.slice(0, -1) : raw;
  if (/[^\x00-\x7f]/.test(name)) {
    // node:url is read only here: evaluating it costs every start ~1 ms of CPU (README.md, "Start-up").
    const { domainToASCII } = require("node:url") as typeof import("node:url");
    const ascii = domainToASCII(name);
    if (ascii === "") return fail("not a valid internationalised (IDNA) name");
    name = ascii;
  }
  name = name.toLowerCase();
  if (name.length === 0) return fail("empty");
  if (name.length > 253) return fail("longer than 253 characters");
  const labels = name.split(".");
  for (const l of labels) {
    if (!LABEL.test(l)) return fail(l === "" ? "has an empty label (\"..\")" : `label "${l}" is not a DNS label (letters, digits, - and _, at most 63)`);
  }
  // "1.2.3.999" is neither an address nor a name: resolvers would treat a
  // numeric last label as an address, so it is not a name here either.
  if (/^(\d+|0x[0-9a-f]*)$/.test(labels.at(-1)!)) return fail("ends in a number: not a name, and not a valid IP address");
  return ok(name);
}

export type Target =
  | { readonly kind: "name"; readonly name: string }
  | { readonly kind: "ip"; readonly ip: Ip; /** As the client wrote it. */ readonly written: string };

/**
 * What a client asked for: an IP literal (any form inet_aton or an IPv6
 * parser accepts, brackets allowed) or a normalised name.
 */
export function parseTarget(raw: string): Checked<Target> {
  const inner = raw.startsWith("[") && raw.endsWith("]") ? raw.slice(1, -1) : undefined;
  if (inner !== undefined || raw.includes(":")) {
    const text = inner ?? raw;
    if (text.includes("%")) return fail("IPv6 zone ids are not accepted");
    const ip = parseIpv6(text);
    return ip ? ok({ kind: "ip", ip: canonical(ip), written: raw }) : fail("not a valid IPv6 address");
  }
  const v4 = parseIpv4Loose(raw.endsWith(".") ? raw.slice(0, -1) : raw);
  if (v4) return ok({ kind: "ip", ip: v4, written: raw });
  const name = normalizeName(raw);
  return name.ok ? ok({ kind: "name", name: name.value }) : fail(`not a valid host name: ${name.error}`);
}

/** "host:port" or "[v6]:port" as in a CONNECT request line; port 1–65535. */
export function splitHostPort(authority: string): Checked<{ host: string; port: number }> {
  const m = /^(\[[^\]]*\]|[^:]*):(\d{1,5})$/.exec(authority);
  if (!m) return fail(`"${authority}" is not host:port`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return fail(`port ${m[2]} is out of range`);
  return ok({ host: m[1]!, port });
}
