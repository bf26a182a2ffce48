/**
 * A world of its own for the proxy's refusal tests (refusals.test.ts): run
 * by the netns fixture in a fresh network namespace with only `lo`, it
 * starts HTTP on 127.0.0.1:80 and HTTPS on 127.0.0.1:443, a proxy with the
 * scenario's rules, and each client in a namespace of its own again. Nothing
 * in here can reach past loopback, even if the proxy let everything through.
 *
 * Input (stdin): a Scenario. Output (stdout): { [run]: Run & { records } }.
 * In a client's argv, {PROXY} is the proxy's URL, {SOCKS} its host:port,
 * {CA} the HTTPS server's certificate, {PYTHON} python3.
 */
import type { NetLimits } from "../../src/net/limits.ts";
import { NetPolicy, type NetworkRules } from "../../src/net/policy.ts";
import { NetProxy } from "../../src/net/proxy.ts";
import { type Lookup, systemLookup } from "../../src/net/resolve.ts";
import { PROXY_PORT, PYTHON, runInNamespace, startServers, until } from "./harness.ts";

export interface Scenario {
  rules: NetworkRules;
  limits?: Partial<NetLimits>;
  /** What "DNS" answers for these names (other names: the host's resolver, /etc/hosts only in here). */
  dns?: Record<string, string[]>;
  runs: Record<string, { argv: string[]; env?: Record<string, string> }>;
}

const scenario = (await Bun.stdin.json()) as Scenario;
const servers = startServers({ http: 80, https: 443 });
const table = scenario.dns ?? {};
const lookup: Lookup = async (name) => table[name] ?? systemLookup(name);
const proxy = new NetProxy({ policy: new NetPolicy(scenario.rules), ...(scenario.limits ? { limits: scenario.limits } : {}), lookup });
const vars: Record<string, string> = { PROXY: `http://127.0.0.1:${PROXY_PORT}`, SOCKS: `127.0.0.1:${PROXY_PORT}`, CA: servers.ca, PYTHON };
const out: Record<string, unknown> = {};
let seen = 0;
for (const [name, run] of Object.entries(scenario.runs)) {
  const argv = run.argv.map((a) => a.replace(/\{(\w+)\}/g, (m, k: string) => vars[k] ?? m));
  const env = Object.fromEntries(Object.entries(run.env ?? {}).map(([k, v]) => [k, v.replace(/\{(\w+)\}/g, (m, n: string) => vars[n] ?? m)]));
  const r = await runInNamespace(proxy, argv, { env });
  await until(() => proxy.active === 0, 10_000, `the connections of ${name} to end`);
  const records = proxy.report().connections.filter((c) => c.id > seen);
  seen = Math.max(seen, ...records.map((c) => c.id));
  out[name] = { ...r, records };
}
await proxy.close();
servers.stop();
process.stdout.write(JSON.stringify(out));
process.exit(0);
