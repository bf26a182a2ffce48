/**
 * The network policy of `--net proxy`: which hosts a sandboxee may reach
 * through bunbox's proxy. Every decision says yes or no and why, in words.
 *
 * The order of the checks, and why:
 *   1. The target is parsed; a malformed one is refused.
 *   2. Deny entries first: deny wins over allow, for names and addresses.
 *   3. An IP literal is refused unless an IP/CIDR allow entry covers it, so a
 *      name allow list cannot be bypassed by asking for the address.
 *   4. A name must match an allow entry (exact, or *.suffix for subdomains).
 *   5. After resolution (resolve.ts), each address is checked again: deny
 *      entries, and the special ranges (loopback, private, link-local, cloud
 *      metadata; address.ts), which an allowed name must not lead to unless
 *      an IP/CIDR entry opens them. That is what defeats DNS rebinding: the
 *      name is allowed, the address it resolves to today is not.
 *
 * A broad entry does not open a special range: 0.0.0.0/0 allows any public
 * address but not 127.0.0.1 or 169.254.169.254. Opening one takes an entry
 * at least as narrow as the range (127.0.0.0/8, 127.0.0.1; the metadata
 * address only by itself).
 *
 * Addresses given with addHost (like curl --resolve or docker --add-host) are
 * the policy author's own statement and skip the special-range check; deny
 * entries still apply to them.
 */
import { UsageError } from "../errors.ts";
import { formatIp, type Ip, parseIp, canonical } from "./address.ts";
import { normalizeName, parseTarget, type Target } from "./host.ts";
import { formatPattern, type HostPattern, matchesIp, matchesName, parsePattern } from "./pattern.ts";

let specialModule: typeof import("./special.ts") | undefined;
/** The special ranges' table, built when an address is first decided: a run without a proxy never is (README.md, "Start-up"). */
const specialRanges = () => (specialModule ??= require("./special.ts") as typeof import("./special.ts"));

export interface NetworkRules {
  /** Host patterns the sandboxee may reach (pattern.ts). */
  allow?: readonly string[];
  /** Host patterns it may not, whatever allow says. */
  deny?: readonly string[];
  /** NAME → IP, used instead of resolving NAME. */
  addHosts?: Readonly<Record<string, string>>;
}

/** Where each kind of entry came from, to name it in errors ("network.allow.2", "--allow-host"). */
export interface RuleSubjects {
  allow(index: number): string;
  deny(index: number): string;
  addHost(name: string): string;
}

export const POLICY_FILE_SUBJECTS: RuleSubjects = {
  allow: (i) => `network.allow.${i}`,
  deny: (i) => `network.deny.${i}`,
  addHost: (name) => `network.addHosts.${name}`,
};

export interface Decision {
  readonly allowed: boolean;
  /** In words, for the report, `-v` and the refusal sent to the client. */
  readonly reason: string;
  /** The entry that decided, as written, when one did. */
  readonly rule?: string;
}

/** A decision before resolution; an allowed name still has its addresses checked. */
export interface Verdict extends Decision {
  readonly target?: Target;
}

const allow = (reason: string, rule?: string): Decision => ({ allowed: true, reason, ...(rule ? { rule } : {}) });
const deny = (reason: string, rule?: string): Decision => ({ allowed: false, reason, ...(rule ? { rule } : {}) });

export class NetPolicy {
  readonly allow: readonly HostPattern[];
  readonly deny: readonly HostPattern[];
  readonly addHosts: ReadonlyMap<string, Ip>;

  /** Throws a UsageError naming the first bad entry (and why). */
  constructor(rules: NetworkRules, subjects: RuleSubjects = POLICY_FILE_SUBJECTS) {
    const parse = (list: readonly string[] | undefined, subject: (i: number) => string) =>
      (list ?? []).map((text, i) => {
        const p = parsePattern(text);
        if (!p.ok) throw new UsageError(subject(i), `"${text}": ${p.error}`);
        return p.value;
      });
    this.allow = parse(rules.allow, (i) => subjects.allow(i));
    this.deny = parse(rules.deny, (i) => subjects.deny(i));
    const hosts = new Map<string, Ip>();
    for (const [rawName, rawIp] of Object.entries(rules.addHosts ?? {})) {
      const name = normalizeName(rawName);
      if (!name.ok) throw new UsageError(subjects.addHost(rawName), `"${rawName}" is not a host name: ${name.error}`);
      const ip = parseIp(rawIp.startsWith("[") && rawIp.endsWith("]") ? rawIp.slice(1, -1) : rawIp);
      if (!ip) throw new UsageError(subjects.addHost(rawName), `"${rawIp}" is not an IP address`);
      hosts.set(name.value, canonical(ip));
    }
    this.addHosts = hosts;
    Object.freeze(this);
  }

  /** The decision on `host`:`port` before any resolution. */
  decide(host: string, port: number): Verdict {
    if (!Number.isInteger(port) || port < 1 || port > 65535) return deny(`port ${port} is not a port`);
    const parsed = parseTarget(host);
    if (!parsed.ok) return deny(parsed.error);
    const target = parsed.value;
    if (target.kind === "ip") return { ...this.decideAddress(target.ip, port, "literal"), target };
    const name = target.name;
    const denied = this.deny.find((p) => matchesName(p, name, port));
    if (denied) return { ...deny(`${name} matches the deny entry ${denied.text}`, denied.text), target };
    const allowed = this.allow.find((p) => matchesName(p, name, port));
    if (allowed) return { ...allow(`${name} matches ${allowed.text}`, allowed.text), target };
    return { ...deny(this.whyNotAllowed(name, port)), target };
  }

  /**
   * Checks one address an allowed name resolved to (`via` "dns"), was mapped
   * to by addHost, or that a client wrote ("literal").
   */
  decideAddress(ip: Ip, port: number, via: "literal" | "dns" | "addHost"): Decision {
    const addr = formatIp(ip);
    const denied = this.deny.find((p) => matchesIp(p, ip, port));
    if (denied) return deny(`${addr} matches the deny entry ${denied.text}`, denied.text);
    if (via === "addHost") return allow(`${addr} from addHost`);
    const special = specialRanges().specialRange(ip);
    const opens = this.allow.find(
      (p) => matchesIp(p, ip, port) && (!special || (p.kind === "cidr" && p.cidr.prefix >= special.cidr.prefix)),
    );
    if (opens) return allow(`${addr} is allowed by ${opens.text}`, opens.text);
    if (special) {
      const narrow = special.cidr.prefix === (ip.family === 4 ? 32 : 128) ? addr : `${formatIp(special.cidr.ip)}/${special.cidr.prefix}`;
      return deny(`${addr} is ${special.what}: refused unless an IP/CIDR entry allows it (${narrow}${narrow === addr ? "" : ` or narrower`})`);
    }
    if (via === "literal") return deny(`${addr} is an IP address: refused unless an IP/CIDR entry allows it`);
    return allow(`${addr} is a public address`);
  }

  /**
   * Whether the DNS stub may answer for `name` (normalised): an allow entry
   * matches it on some port, and no deny entry refuses it on every port.
   * The answer is never a real address (dns.ts): a connection to it still
   * goes through decide().
   */
  mayResolve(name: string): Decision {
    const denied = this.deny.find((p) => p.port === undefined && matchesName(p, name, 0));
    if (denied) return deny(`${name} matches the deny entry ${denied.text}`, denied.text);
    const allowed = this.allow.find((p) => matchesName({ ...p, port: undefined } as HostPattern, name, 0));
    if (allowed) return allow(`${name} matches ${allowed.text}`, allowed.text);
    return deny(this.whyNotAllowed(name, 0));
  }

  /** The denial of a name no allow entry matches, with a hint when one nearly did. */
  private whyNotAllowed(name: string, port: number): string {
    const bare = this.allow.find((p) => p.kind === "suffix" && p.suffix === name);
    if (bare) return `${name} is not in the allow list (${bare.text} matches its subdomains only; list ${name} too)`;
    const otherPort = this.allow.find((p) => matchesName({ ...p, port: undefined } as HostPattern, name, port));
    if (otherPort) return `${name}:${port} is not in the allow list (${otherPort.text} allows another port)`;
    return `${name} is not in the allow list`;
  }

  /** The entries as written (addHosts canonical): what a policy with more entries is built from. */
  rules(): Required<NetworkRules> {
    return {
      allow: this.allow.map((p) => p.text),
      deny: this.deny.map((p) => p.text),
      addHosts: Object.fromEntries([...this.addHosts].map(([n, ip]) => [n, formatIp(ip)])),
    };
  }

  /** One line per entry, for `bunbox run -v`. */
  describe(): string[] {
    const lines = [
      ...this.allow.map((p) => `allow ${formatPattern(p)}`),
      ...this.deny.map((p) => `deny ${formatPattern(p)}`),
      ...[...this.addHosts].map(([n, ip]) => `add-host ${n} → ${formatIp(ip)}`),
    ];
    return lines.length > 0 ? lines : ["(no host allowed)"];
  }
}

/** `--add-host NAME:IP` (the IP may be IPv6, bracketed or not). */
export function parseAddHost(text: string): [string, string] | undefined {
  const colon = text.indexOf(":");
  if (colon <= 0 || colon === text.length - 1) return undefined;
  return [text.slice(0, colon), text.slice(colon + 1)];
}
