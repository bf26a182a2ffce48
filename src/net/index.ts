/**
 * `--net proxy`: allow-listed egress through a proxy in the bunbox process.
 * The policy (which hosts), the proxy (HTTP CONNECT, HTTP forwarding and
 * SOCKS5 on one socket), its limits and its report. docs/network.md tells
 * how a sandbox reaches it.
 */
export { NetPolicy, type Decision, type NetworkRules, type RuleSubjects, POLICY_FILE_SUBJECTS, parseAddHost } from "./policy.ts";
export { NetProxy, type ProxyOptions } from "./proxy.ts";
export { DEFAULT_NET_LIMITS, type NetLimits, netLimits } from "./limits.ts";
export { type ConnectionRecord, type NetEvent, type NetworkReport, type Outcome, type Protocol, formatEvent } from "./report.ts";
export { type Lookup, systemLookup } from "./resolve.ts";
export { NetworkSchema, NetworkProxySchema, type NetworkFile } from "./schema.ts";
