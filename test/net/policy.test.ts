// The decisions of `--net proxy` (src/net/policy.ts, pattern.ts, host.ts,
// resolve.ts): what is allowed, what is denied, and the reason given.
import { describe, expect, test } from "bun:test";
import { UsageError } from "../../src/errors.ts";
import { parseTarget } from "../../src/net/host.ts";
import { parsePattern } from "../../src/net/pattern.ts";
import { NetPolicy, parseAddHost } from "../../src/net/policy.ts";
import { resolveTarget, systemLookup } from "../../src/net/resolve.ts";

const policy = (allow: string[], deny: string[] = [], addHosts: Record<string, string> = {}) => new NetPolicy({ allow, deny, addHosts });

describe("patterns", () => {
  test("names, wildcards, addresses and ranges, each with an optional port", () => {
    expect(parsePattern("Example.COM.")).toMatchObject({ ok: true, value: { kind: "name", name: "example.com" } });
    expect(parsePattern("example.com:443")).toMatchObject({ ok: true, value: { kind: "name", port: 443 } });
    expect(parsePattern("*.example.com")).toMatchObject({ ok: true, value: { kind: "suffix", suffix: "example.com" } });
    expect(parsePattern("*.example.com:8443")).toMatchObject({ ok: true, value: { kind: "suffix", port: 8443 } });
    expect(parsePattern("10.0.0.0/8")).toMatchObject({ ok: true, value: { kind: "cidr", cidr: { prefix: 8 } } });
    expect(parsePattern("10.0.0.0/8:5432")).toMatchObject({ ok: true, value: { kind: "cidr", port: 5432 } });
    expect(parsePattern("::1")).toMatchObject({ ok: true, value: { kind: "cidr", cidr: { prefix: 128 } } });
    expect(parsePattern("[fd00::/8]:443")).toMatchObject({ ok: true, value: { kind: "cidr", port: 443, cidr: { prefix: 8 } } });
    expect(parsePattern("bücher.example")).toMatchObject({ ok: true, value: { name: "xn--bcher-kva.example" } });
  });

  const bad: [string, RegExp][] = [
    ["*", /bare \* would allow every name/],
    ["*.", /bare \*/],
    ["foo.*.com", /\* may only begin a pattern/],
    ["*foo.com", /\* may only begin a pattern/],
    ["*.foo*.com", /\* may only begin a pattern/],
    ["example.com:0", /not a port/],
    ["example.com:65536", /not a port/],
    ["example.com:http", /not a port/],
    ["10.1.0.0/8", /host bits must be zero/],
    ["10.0.0.0/33", /not an IP address or CIDR/],
    ["0x7f.1", /four decimal numbers/],
    ["127.1", /four decimal numbers/],
    ["exa mple.com", /cannot appear in a host name/],
    ["ex%41mple.com", /cannot appear in a host name/],
    ["a..b", /empty label/],
    ["-a.com", /not a DNS label/],
    ["1.2.3.999", /not an IP address/],
    ["[::1", /without "\]"/],
    ["[example.com]", /brackets are for IPv6/],
    ["", /empty/],
  ];
  for (const [text, why] of bad) {
    test(`"${text}" is refused: ${why.source}`, () => {
      const p = parsePattern(text);
      expect(p.ok).toBe(false);
      if (!p.ok) expect(p.error).toMatch(why);
    });
  }

  test("a bad entry is a usage error naming the entry and where it is", () => {
    const err = (() => {
      try {
        policy(["ok.example", "*.*.bad"]);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toBe('network.allow.1: "*.*.bad": * may only begin a pattern, as *.example.com');
    expect((err as UsageError).exitCode).toBe(2);
    expect(() => policy([], ["10.0.0.0/33"])).toThrow(/^network\.deny\.0: "10\.0\.0\.0\/33"/);
    expect(() => policy([], [], { "bad name": "10.0.0.1" })).toThrow(/network\.addHosts\.bad name: "bad name" is not a host name/);
    expect(() => policy([], [], { "ok.test": "10.0.0" })).toThrow(/network\.addHosts\.ok\.test: "10\.0\.0" is not an IP address/);
    expect(() =>
      new NetPolicy({ allow: ["*"] }, { allow: () => "--allow-host", deny: () => "--deny-host", addHost: () => "--add-host" }),
    ).toThrow(/^--allow-host: "\*": a bare \*/);
  });
});

describe("targets", () => {
  test("names are normalised as patterns are: case, one trailing dot, IDNA", () => {
    expect(parseTarget("WWW.Example.COM.")).toEqual({ ok: true, value: { kind: "name", name: "www.example.com" } });
    expect(parseTarget("ＥＸＡＭＰＬＥ.com")).toEqual({ ok: true, value: { kind: "name", name: "example.com" } });
    expect(parseTarget("bücher.example")).toEqual({ ok: true, value: { kind: "name", name: "xn--bcher-kva.example" } });
    expect(parseTarget("xn--zz").ok).toBe(true); // ASCII passes as written: it can only match itself
    expect(parseTarget("a.b\u200d.com").ok).toBe(false);
  });

  test("every way of writing an address is an address", () => {
    for (const t of ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "[::1]", "::ffff:127.0.0.1", "[::ffff:7f00:1]", "127.0.0.1."]) {
      const r = parseTarget(t);
      expect(r.ok && r.value.kind).toBe("ip");
    }
    expect(parseTarget("[fe80::1%eth0]")).toEqual({ ok: false, error: "IPv6 zone ids are not accepted" });
  });
});

describe("decisions", () => {
  test("an exact name is allowed on any port, and its subdomains are not", () => {
    const p = policy(["example.com"]);
    expect(p.decide("example.com", 443)).toMatchObject({ allowed: true, rule: "example.com", reason: "example.com matches example.com" });
    expect(p.decide("EXAMPLE.com.", 80).allowed).toBe(true);
    expect(p.decide("www.example.com", 443)).toMatchObject({ allowed: false, reason: "www.example.com is not in the allow list" });
    expect(p.decide("example.com.evil.test", 443).allowed).toBe(false);
    expect(p.decide("notexample.com", 443).allowed).toBe(false);
  });

  test("a wildcard allows subdomains, not the bare suffix unless listed", () => {
    const p = policy(["*.example.com"]);
    expect(p.decide("a.example.com", 443)).toMatchObject({ allowed: true, rule: "*.example.com" });
    expect(p.decide("a.b.example.com", 443).allowed).toBe(true);
    expect(p.decide("example.com", 443)).toMatchObject({
      allowed: false,
      reason: "example.com is not in the allow list (*.example.com matches its subdomains only; list example.com too)",
    });
    expect(p.decide("badexample.com", 443).allowed).toBe(false);
    expect(policy(["*.example.com", "example.com"]).decide("example.com", 443).allowed).toBe(true);
  });

  test("a port in the pattern limits it to that port", () => {
    const p = policy(["example.com:443", "*.cdn.test:8443"]);
    expect(p.decide("example.com", 443).allowed).toBe(true);
    expect(p.decide("example.com", 80)).toMatchObject({ allowed: false, reason: "example.com:80 is not in the allow list (example.com:443 allows another port)" });
    expect(p.decide("x.cdn.test", 8443).allowed).toBe(true);
    expect(p.decide("x.cdn.test", 443).allowed).toBe(false);
  });

  test("deny wins over allow, for names and for addresses", () => {
    const p = policy(["*.example.com", "10.0.0.0/8"], ["secret.example.com", "10.9.0.0/16", "*.internal.example.com:22"]);
    expect(p.decide("secret.example.com", 443)).toMatchObject({ allowed: false, rule: "secret.example.com", reason: "secret.example.com matches the deny entry secret.example.com" });
    expect(p.decide("x.internal.example.com", 22).allowed).toBe(false);
    expect(p.decide("x.internal.example.com", 443).allowed).toBe(true);
    expect(p.decide("10.1.2.3", 80).allowed).toBe(true);
    expect(p.decide("10.9.1.1", 80)).toMatchObject({ allowed: false, rule: "10.9.0.0/16" });
  });

  test("an IP literal is refused unless an IP/CIDR entry allows it, however it is written", () => {
    const p = policy(["example.com"]);
    for (const t of ["93.184.216.34", "[2606:2800:220:1:248:1893:25c8:1946]", "1572395042"]) {
      expect(p.decide(t, 443)).toMatchObject({ allowed: false, reason: expect.stringMatching(/is an IP address: refused unless an IP\/CIDR entry allows it/) });
    }
    expect(policy(["93.184.216.0/24"]).decide("93.184.216.34", 443)).toMatchObject({ allowed: true, rule: "93.184.216.0/24" });
    expect(policy(["0.0.0.0/0"]).decide("8.8.8.8", 53).allowed).toBe(true);
  });

  test("loopback, private, link-local and metadata addresses need an entry as narrow as their range", () => {
    const broad = policy(["0.0.0.0/0", "::/0"]);
    const cases: [string, RegExp][] = [
      ["127.0.0.1", /127\.0\.0\.1 is loopback: refused unless an IP\/CIDR entry allows it \(127\.0\.0\.0\/8 or narrower\)/],
      ["2130706433", /127\.0\.0\.1 is loopback/],
      ["[::1]", /::1 is loopback/],
      ["[::ffff:127.0.0.1]", /127\.0\.0\.1 is loopback/],
      ["0.0.0.0", /this host/],
      ["[::]", /unspecified/],
      ["10.0.0.1", /private address \(RFC 1918\)/],
      ["172.20.1.1", /private/],
      ["192.168.1.1", /private/],
      ["100.64.1.1", /CGNAT/],
      ["169.254.1.1", /link-local/],
      ["[fe80::1]", /link-local/],
      ["[fd00::1]", /unique local/],
      ["[::ffff:10.0.0.1]", /private/],
      ["169.254.169.254", /169\.254\.169\.254 is the cloud metadata address: refused unless an IP\/CIDR entry allows it \(169\.254\.169\.254\)$/],
      ["[fd00:ec2::254]", /cloud metadata/],
      ["[::ffff:169.254.169.254]", /cloud metadata/],
      ["[64:ff9b::a9fe:a9fe]", /NAT64 form of 169\.254\.169\.254/],
    ];
    for (const [t, why] of cases) expect(broad.decide(t, 80)).toMatchObject({ allowed: false, reason: expect.stringMatching(why) });
    expect(policy(["127.0.0.0/8"]).decide("127.0.0.1", 80).allowed).toBe(true);
    expect(policy(["127.0.0.1:8080"]).decide("127.0.0.1", 8080).allowed).toBe(true);
    expect(policy(["127.0.0.1:8080"]).decide("127.0.0.1", 8081).allowed).toBe(false);
    expect(policy(["10.0.0.0/8"]).decide("10.2.3.4", 80).allowed).toBe(true);
    // The metadata address opens only by itself: its link-local range does not.
    expect(policy(["169.254.0.0/16"]).decide("169.254.169.254", 80).allowed).toBe(false);
    expect(policy(["169.254.0.0/16"]).decide("169.254.1.1", 80).allowed).toBe(true);
    expect(policy(["169.254.169.254"]).decide("169.254.169.254", 80).allowed).toBe(true);
  });

  test("malformed targets and ports are refused with the reason", () => {
    const p = policy(["example.com"]);
    expect(p.decide("exa mple.com", 443)).toMatchObject({ allowed: false, reason: 'not a valid host name: " " cannot appear in a host name' });
    expect(p.decide("example.com", 0)).toMatchObject({ allowed: false, reason: "port 0 is not a port" });
    expect(p.decide("1.2.3.999", 80).allowed).toBe(false);
    expect(p.decide("", 80).allowed).toBe(false);
  });

  test("describe() lists the entries normalised, for -v", () => {
    expect(policy(["*.Example.com:443", "[fd00::/8]:443"], ["10.0.0.0/8"], { "A.test": "::1" }).describe()).toEqual([
      "allow *.example.com:443",
      "allow [fd00::/8]:443",
      "deny 10.0.0.0/8",
      "add-host a.test → ::1",
    ]);
    expect(policy([]).describe()).toEqual(["(no host allowed)"]);
  });

  test("--add-host NAME:IP splits at the first colon, so IPv6 works", () => {
    expect(parseAddHost("a.test:10.0.0.1")).toEqual(["a.test", "10.0.0.1"]);
    expect(parseAddHost("a.test:::1")).toEqual(["a.test", "::1"]);
    expect(parseAddHost("a.test:[::1]")).toEqual(["a.test", "[::1]"]);
    expect(parseAddHost("a.test")).toBeUndefined();
    expect(parseAddHost(":1.2.3.4")).toBeUndefined();
  });
});

describe("after resolution", () => {
  const answers = (table: Record<string, string[]>) => async (name: string) => {
    const a = table[name];
    if (!a) throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
    return a;
  };
  const resolve = async (p: NetPolicy, host: string, port: number, table: Record<string, string[]>) => {
    const v = p.decide(host, port);
    if (!v.allowed || !v.target) throw new Error(`test: ${host} was not allowed: ${v.reason}`);
    return resolveTarget(p, v.target, port, answers(table));
  };

  test("an allowed name that resolves to a private or loopback address is refused (DNS rebinding)", async () => {
    const p = policy(["rebind.test", "meta.test"]);
    expect(await resolve(p, "rebind.test", 443, { "rebind.test": ["10.0.0.5"] })).toEqual({
      kind: "denied",
      decision: { allowed: false, reason: "rebind.test resolves to 10.0.0.5; 10.0.0.5 is a private address (RFC 1918): refused unless an IP/CIDR entry allows it (10.0.0.0/8 or narrower)" },
    });
    expect(await resolve(p, "meta.test", 80, { "meta.test": ["::ffff:169.254.169.254"] })).toMatchObject({ kind: "denied", decision: { reason: expect.stringMatching(/cloud metadata/) } });
  });

  test("refused addresses are dropped and the others kept, in order", async () => {
    const p = policy(["mixed.test"]);
    const r = await resolve(p, "mixed.test", 443, { "mixed.test": ["127.0.0.1", "93.184.216.34", "fd00::1", "2606:2800::1"] });
    expect(r.kind).toBe("ok");
    if (r.kind === "ok") expect(r.addresses.map((a) => a.family)).toEqual([4, 6]);
  });

  test("an IP entry opens a special range for resolved names, and an IP deny entry closes a public one", async () => {
    expect((await resolve(policy(["db.test", "10.0.0.0/8"]), "db.test", 5432, { "db.test": ["10.1.1.1"] })).kind).toBe("ok");
    const denied = await resolve(policy(["cdn.test"], ["93.184.216.0/24"]), "cdn.test", 443, { "cdn.test": ["93.184.216.34"] });
    expect(denied).toMatchObject({ kind: "denied", decision: { rule: "93.184.216.0/24" } });
  });

  test("addHost replaces resolution and is trusted, but deny entries still apply", async () => {
    const p = policy(["local.test", "blocked.test"], ["10.9.9.9"], { "local.test": "127.0.0.1", "Blocked.test.": "10.9.9.9" });
    const r = await resolve(p, "local.test", 8080, {});
    expect(r).toMatchObject({ kind: "ok", via: "addHost" });
    expect(await resolve(p, "blocked.test", 80, {})).toMatchObject({ kind: "denied", decision: { rule: "10.9.9.9" } });
  });

  test("a name that does not resolve fails, not denied", async () => {
    expect(await resolve(policy(["gone.test"]), "gone.test", 80, {})).toEqual({ kind: "failed", code: "ENOTFOUND", error: "cannot resolve gone.test (ENOTFOUND)" });
    expect(await resolve(policy(["empty.test"]), "empty.test", 80, { "empty.test": [] })).toMatchObject({ kind: "failed", code: "ENOTFOUND" });
  });

  test("through the host's resolver: localhost is allowed by name, and refused for its address", async () => {
    const p = policy(["localhost"]);
    const v = p.decide("localhost", 80);
    const r = await resolveTarget(p, v.target!, 80, systemLookup);
    expect(r).toMatchObject({ kind: "denied", decision: { reason: expect.stringMatching(/^localhost resolves to .*; (127\.0\.0\.1|::1) is loopback/) } });
  });
});
