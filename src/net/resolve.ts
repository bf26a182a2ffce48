/**
 * From an allowed target to the addresses the proxy may connect to: addHost
 * first (the run's own NAME → IP table), else the host's resolver; then every
 * address goes through NetPolicy.decideAddress, so a name that resolves to
 * loopback, a private range or the metadata address leads nowhere (DNS
 * rebinding), and a deny entry for an address wins over the allowed name.
 *
 * Addresses that fail the check are dropped; the others are kept in the
 * resolver's order. None left: the connection is denied, with the reason of
 * the first one dropped.
 */
import { promises as dns } from "node:dns";
import { canonical, type Ip, parseIp } from "./address.ts";
import type { Target } from "./host.ts";
import type { Decision, NetPolicy } from "./policy.ts";

/** Resolves a name to address strings; rejects when it cannot. */
export type Lookup = (name: string) => Promise<string[]>;

export const systemLookup: Lookup = async (name) =>
  (await dns.lookup(name, { all: true, verbatim: true })).map((a) => a.address);

export type Resolution =
  | { readonly kind: "ok"; readonly addresses: readonly Ip[]; /** How the addresses came: "addHost", "DNS", "literal". */ readonly via: string }
  | { readonly kind: "denied"; readonly decision: Decision }
  | { readonly kind: "failed"; /** An errno-like code, ENOTFOUND for a name with no address. */ readonly code: string; readonly error: string };

export async function resolveTarget(policy: NetPolicy, target: Target, port: number, lookup: Lookup): Promise<Resolution> {
  if (target.kind === "ip") return { kind: "ok", addresses: [target.ip], via: "literal" };
  const mapped = policy.addHosts.get(target.name);
  if (mapped) {
    const d = policy.decideAddress(mapped, port, "addHost");
    return d.allowed ? { kind: "ok", addresses: [mapped], via: "addHost" } : { kind: "denied", decision: d };
  }
  let answers: string[];
  try {
    answers = await lookup(target.name);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "ENOTFOUND";
    return { kind: "failed", code, error: `cannot resolve ${target.name} (${code})` };
  }
  const kept: Ip[] = [];
  let firstRefusal: Decision | undefined;
  for (const text of answers) {
    const parsed = parseIp(text);
    if (!parsed) continue;
    const ip = canonical(parsed);
    const d = policy.decideAddress(ip, port, "dns");
    if (d.allowed) kept.push(ip);
    else firstRefusal ??= d;
  }
  if (kept.length > 0) return { kind: "ok", addresses: kept, via: "DNS" };
  if (firstRefusal) {
    return { kind: "denied", decision: { ...firstRefusal, reason: `${target.name} resolves to ${answers.join(", ")}; ${firstRefusal.reason}` } };
  }
  return { kind: "failed", code: "ENOTFOUND", error: `${target.name} has no address` };
}
