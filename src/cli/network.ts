/**
 * `bunbox run`'s network options: --net MODE, and the host lists of the
 * proxy (--allow-host, --deny-host, --add-host), which imply --net proxy.
 *
 * They change the policy the way --net always did: the mode given wins over
 * the policy's; the host lists add to a proxy policy's own lists (a policy
 * file that allows the registry, and --allow-host for one more name). A host
 * list with another mode (--net host --allow-host x) is a usage error, never
 * a silent choice between the two.
 */
import { UsageError } from "../errors.ts";
import { NetPolicy, parseAddHost, type RuleSubjects } from "../net/policy.ts";
import { isProxyMode, NET_MODES, type NetMode, type Policy, type PolicyInit } from "../policy/policy.ts";

export interface NetworkOptions {
  net: string | undefined;
  allow: readonly string[];
  deny: readonly string[];
  addHosts: readonly string[];
}

const CLI_SUBJECTS: RuleSubjects = { allow: () => "--allow-host", deny: () => "--deny-host", addHost: () => "--add-host" };

/** The policy changes the options ask for (none: the policy's network stays). */
export function networkChanges(o: NetworkOptions, base: Policy): Pick<PolicyInit, "net" | "network"> | undefined {
  const { net } = o;
  if (net !== undefined && !NET_MODES.includes(net as NetMode)) {
    throw new UsageError("--net", `"${net}" is not one of ${NET_MODES.join(", ")}`);
  }
  const listed = ([["--allow-host", o.allow], ["--deny-host", o.deny], ["--add-host", o.addHosts]] as const).find(([, l]) => l.length > 0);
  if (listed && net !== undefined && !isProxyMode(net as NetMode)) {
    throw new UsageError(listed[0], `implies --net proxy; it cannot go with --net ${net}`);
  }
  const mode = (net as NetMode | undefined) ?? (listed ? (isProxyMode(base.net) ? base.net : "proxy") : undefined);
  if (mode === undefined) return undefined;
  if (!isProxyMode(mode)) return { net: mode };

  const addHosts: Record<string, string> = Object.create(null);
  for (const spec of o.addHosts) {
    const pair = parseAddHost(spec);
    if (!pair) throw new UsageError("--add-host", `"${spec}" is not NAME:IP`);
    addHosts[pair[0]] = pair[1];
  }
  // Checked on their own first, so that an error names the option, not an index in the merged list.
  const extra = new NetPolicy({ allow: o.allow, deny: o.deny, addHosts }, CLI_SUBJECTS).rules();
  const own = base.network?.rules() ?? { allow: [], deny: [], addHosts: {} };
  const network = new NetPolicy({
    allow: [...own.allow, ...extra.allow],
    deny: [...own.deny, ...extra.deny],
    addHosts: { ...own.addHosts, ...extra.addHosts },
  });
  return { net: mode, network };
}
