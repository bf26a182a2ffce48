/**
 * `--net proxy`: allow-listed egress through a proxy in the bunbox process.
 * The policy (which hosts), the proxy (HTTP CONNECT, HTTP forwarding and
 * SOCKS5 on one socket), the DNS stub, transparent mode, a sandbox's network
 * and its report. docs/network.md tells how it all fits.
 */
export { NetPolicy, type Decision, type NetworkRules, type RuleSubjects, POLICY_FILE_SUBJECTS, parseAddHost } from "./policy.ts";
export { NetProxy, type ProxyOptions } from "./proxy.ts";
export { DEFAULT_NET_LIMITS, type NetLimits, netLimits } from "./limits.ts";
export { type ConnectionRecord, type NetEvent, type NetworkReport, type Outcome, type Protocol, formatEvent } from "./report.ts";
export { type Lookup, systemLookup } from "./resolve.ts";
export { NetworkSchema, NetworkProxySchema, type NetworkFile } from "./schema.ts";
export { SandboxNetwork, type SandboxNetworkReport, formatNetworkEvent } from "./network.ts";
export { type DnsEvent, type DnsRecord, type DnsReport } from "./dns-stub.ts";
