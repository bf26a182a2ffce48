// The ways to ask for --net proxy: bunbox run's options, a policy file's
// network object, PolicyBuilder's host lists; every bad entry or
// contradiction is an error naming the option, field or call (exit 2),
// before anything runs.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { bunbox } from "../helpers.ts";
import { PolicyBuilder } from "../../src/policy/builder.ts";
import { policyFromJson } from "../../src/policy/file.ts";
import { work } from "./harness.ts";

const run = (...args: string[]) => bunbox(["run", ...args, "--", "true"], { bare: true });

/** A usage error (exit 2) whose one message is `text` (a string, or a pattern for its start). */
function usage(r: { code: number; stderr: string }, text: string | RegExp): void {
  expect(r.code).toBe(2);
  const message = r.stderr.replace(/^bunbox: (error: )?/, "");
  if (typeof text === "string") expect(message).toBe(`${text}\n`);
  else expect(message).toMatch(text);
}

describe("bunbox run", () => {
  test("host lists imply --net proxy; with another mode they are a usage error", async () => {
    const v = await run("-v", "--allow-host", "a.test");
    expect(v.code).toBe(0);
    expect(v.stderr).toContain("bunbox: network: proxy;");
    usage(await run("--net", "host", "--allow-host", "a.test"), "--allow-host: implies --net proxy; it cannot go with --net host");
    usage(await run("--net", "loopback", "--add-host", "a.test:10.0.0.1"), "--add-host: implies --net proxy; it cannot go with --net loopback");
    const t = await run("-v", "--net", "proxy-transparent", "--allow-host", "a.test");
    expect(t.stderr).toContain("bunbox: network: proxy-transparent;");
  });

  test("a bad entry names its option", async () => {
    usage(await run("--allow-host", "*"), /^--allow-host: "\*": a bare \* would allow every name/);
    usage(await run("--deny-host", "a..b"), /^--deny-host: "a\.\.b": has an empty label/);
    usage(await run("--add-host", "nocolon"), '--add-host: "nocolon" is not NAME:IP');
    usage(await run("--add-host", "a.test:nope"), '--add-host: "nope" is not an IP address');
    usage(await run("--net", "proxi"), '--net: "proxi" is not one of none, loopback, host, proxy, proxy-transparent');
    usage(await run("--max-connections", "5"), /^--max-connections: limits the proxy's connections: it goes with --net proxy/);
    usage(await run("--allow-host", "a.test", "--max-connections", "0"), "--max-connections: 0 is not in 1..65536");
  });

  test("a policy file's network object, with --allow-host adding to its lists; --net none turns it off", async () => {
    const file = join(work(), "net-policy.json");
    writeFileSync(file, JSON.stringify({ profile: "default", network: { mode: "proxy", allow: ["registry.test"], deny: ["bad.registry.test"], addHosts: { "registry.test": "10.1.2.3" } } }));
    const r = await bunbox(["run", "-v", "--policy", file, "--allow-host", "*.more.test", "--", "true"], { bare: true });
    expect(r.code).toBe(0);
    for (const line of ["  allow registry.test\n", "  allow *.more.test\n", "  deny bad.registry.test\n", "  add-host registry.test → 10.1.2.3\n"]) expect(r.stderr).toContain(line);
    expect(r.stderr).toContain("relaxation: network proxy: the sandboxee may reach 2 host patterns through bunbox's proxy (registry.test, *.more.test)");
    const off = await bunbox(["run", "-v", "--policy", file, "--net", "none", "--", "true"], { bare: true });
    expect(off.stderr).toContain("bunbox: network: none;");
    expect(off.stderr).toContain("relaxations: none");
  });

  test("a policy file's bad network entry names its path", async () => {
    const file = join(work(), "bad-net-policy.json");
    writeFileSync(file, JSON.stringify({ network: { mode: "proxy", allow: ["ok.test", "*bad.test"] } }));
    const r = await bunbox(["run", "--policy", file, "--", "true"], { bare: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('network.allow.1: "*bad.test": * may only begin a pattern, as *.example.com');
    writeFileSync(file, JSON.stringify({ network: { mode: "proxy", allwo: ["ok.test"] } }));
    const typo = await bunbox(["run", "--policy", file, "--", "true"], { bare: true });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain("network.allwo: unknown key (did you mean allow?)");
  });
});

describe("PolicyBuilder", () => {
  test("allowHosts, denyHosts, addHost make a proxy policy; a proxy-transparent one stays so", () => {
    const p = new PolicyBuilder().allowHosts("a.test", "*.b.test:443").denyHosts("x.b.test").addHost("a.test", "10.0.0.5").build();
    expect(p.net).toBe("proxy");
    expect(p.network!.rules()).toEqual({ allow: ["a.test", "*.b.test:443"], deny: ["x.b.test"], addHosts: { "a.test": "10.0.0.5" } });
    expect(p.relaxations).toEqual(["network proxy: the sandboxee may reach 2 host patterns through bunbox's proxy (a.test, *.b.test:443)"]);
    const t = new PolicyBuilder().setNetwork("proxy-transparent").allowHosts("a.test").build();
    expect(t.net).toBe("proxy-transparent");
    expect(new PolicyBuilder().setNetwork("proxy").build().network!.describe()).toEqual(["(no host allowed)"]);
    // Another mode drops the rules: derive keeps them only for a proxy mode.
    expect(p.derive({ net: "none" }).network).toBeUndefined();
  });

  test("bad entries and a host list under another mode are sticky problems naming the call", () => {
    const r = new PolicyBuilder().allowHosts("*").denyHosts("a..b").addHost("a.test", "300.1.1.1").tryBuild();
    expect(r.problems).toEqual([
      'allowHosts: "*": a bare * would allow every name: list the hosts (or *.example.com), or use --net host',
      'denyHosts: "a..b": has an empty label ("..")',
      'addHost(a.test): "300.1.1.1" is not an IP address',
    ]);
    const m = new PolicyBuilder().setNetwork("host").allowHosts("a.test").tryBuild();
    expect(m.problems).toEqual(['allowHosts/denyHosts/addHost: the network is "host"; host lists need "proxy" or "proxy-transparent"']);
  });

  test("policy files: the string modes and the object, validated like the rest", () => {
    expect(policyFromJson({ network: "proxy" }, "p.json").network!.allow).toEqual([]);
    const p = policyFromJson({ network: { mode: "proxy-transparent", allow: ["a.test:443"] } }, "p.json");
    expect(p.net).toBe("proxy-transparent");
    expect(p.network!.rules().allow).toEqual(["a.test:443"]);
    expect(() => policyFromJson({ network: { mode: "proxy", addHosts: { "a.test": "nope" } } }, "p.json")).toThrow(/network\.addHosts\.a\.test: "nope" is not an IP address/);
  });
});
