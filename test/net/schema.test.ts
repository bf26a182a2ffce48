// The "network" key of policy files (src/net/schema.ts), as the loader in
// src/policy/file.ts will use it: each mistake named by its dotted path.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { NetPolicy } from "../../src/net/policy.ts";
import { NetworkSchema } from "../../src/net/schema.ts";

const File = v.strictObject({ network: v.optional(NetworkSchema) });

function problems(network: unknown): string[] {
  const r = v.safeParse(File, { network });
  return r.success ? [] : r.issues.map((i) => `${v.getDotPath(i) ?? "(top level)"}: ${i.message}`);
}

describe("network in a policy file", () => {
  test("the mode names and the proxy object are accepted; the object feeds NetPolicy as is", () => {
    for (const mode of ["none", "loopback", "host"]) expect(problems(mode)).toEqual([]);
    const network = { mode: "proxy" as const, allow: ["registry.npmjs.org", "*.pythonhosted.org:443", "10.1.2.0/24"], deny: ["evil.pythonhosted.org"], addHosts: { "mirror.internal": "10.1.2.3", "v6.internal": "[::1]" } };
    const parsed = v.parse(File, { network }).network;
    expect(parsed).toEqual(network);
    if (typeof parsed !== "object") throw new Error("test: not the object form");
    expect(new NetPolicy(parsed).describe()).toContain("allow *.pythonhosted.org:443");
  });

  test("each bad entry is named by its path, with the reason", () => {
    expect(problems({ mode: "proxy", allow: ["ok.test", "*.*.bad", 3], deny: ["10.1.0.0/8"] })).toEqual([
      'network.allow.1: "*.*.bad": * may only begin a pattern, as *.example.com',
      "network.allow.2: a host pattern is a string",
      'network.deny.0: "10.1.0.0/8": not an IP address or CIDR range (a range\'s host bits must be zero, like 10.0.0.0/8)',
    ]);
    expect(problems({ mode: "proxy", addHosts: { "a.test": "10.0.0", "bad name": "10.0.0.1" } })).toEqual([
      'network.addHosts.a.test: "10.0.0" is not an IP address',
      'network.addHosts.bad name: "bad name" is not a host name: " " cannot appear in a host name',
    ]);
  });

  test("typos are errors (strict object), and a wrong mode says what is expected", () => {
    expect(problems({ mode: "proxy", allwo: ["a.test"] })).toEqual(['network.allwo: Invalid key: Expected never but received "allwo"']);
    expect(problems({ mode: "transparent" })[0]).toMatch(/^network\.mode: mode: "proxy"/);
    expect(problems("proxi")).toEqual(['network: a network mode (none, loopback, host, proxy, proxy-transparent), or { "mode": "proxy", "allow": [...] }']);
    expect(problems({ allow: [] })[0]).toMatch(/^network\.mode: /);
  });
});
