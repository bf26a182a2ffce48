// What the proxy refuses, from the sandboxee's side and in the report:
// names not allowed, IP literals, the metadata address, private and loopback
// addresses (also behind an allowed name: DNS rebinding), a wildcard's bare
// suffix, TLS whose server name differs from the host asked for (domain
// fronting). The proxy, its servers (HTTP on 80, HTTPS on 443) and each
// client run in network namespaces with only loopback (world.ts), so no
// refusal that broke could reach a real address.
import { beforeAll, describe, expect, test } from "bun:test";
import { runWorld, type WorldRun } from "./harness.ts";

const curl = (...args: string[]) => ["curl", "-sS", "--max-time", "10", ...args];
const viaProxy = (...args: string[]) => curl("-x", "{PROXY}", ...args);
const viaSocks = (...args: string[]) => curl("--socks5-hostname", "{SOCKS}", ...args);
/** Python sending `request` raw to the proxy, printing each answer (curl would rewrite the host). */
const raw = (...parts: string[]) => [
  "{PYTHON}",
  "-c",
  `import socket
s = socket.create_connection(("127.0.0.1", 3128))
for part in [${parts.map((p) => JSON.stringify(p)).join(", ")}]:
    s.sendall(part.encode())
    try: print(s.recv(1000))
    except ConnectionResetError: print("reset")`,
];

const RUNS = {
  allowedHttp: viaProxy("http://allowed.test/hello"),
  allowedHttps: viaProxy("--cacert", "{CA}", "https://allowed.test/hello"),
  deniedHttp: viaProxy("http://denied.test/"),
  deniedConnect: viaProxy("https://denied.test/"),
  deniedSocks: viaSocks("http://denied.test/"),
  ipLiteral: viaProxy("http://93.184.216.34/"),
  ipLiteralSocks: curl("--socks5", "{SOCKS}", "http://93.184.216.34/"),
  metadata: viaProxy("http://169.254.169.254/latest/meta-data/"),
  metadataSocks: curl("--socks5", "{SOCKS}", "http://169.254.169.254/latest/meta-data/"),
  metadataMapped: viaProxy("http://[::ffff:169.254.169.254]/"),
  metadataDecimal: raw("GET http://2852039166/ HTTP/1.1\r\n\r\n"),
  metadataHex: raw("CONNECT 0xa9.0xfe.0xa9.0xfe:443 HTTP/1.1\r\n\r\n"),
  private: viaProxy("http://10.0.0.1/"),
  loopbackLiteral: viaProxy("http://127.0.0.1/hello"),
  rebinding: viaProxy("http://rebind.test/"),
  localhost: viaProxy("http://localhost/hello"),
  wildcardBare: viaProxy("http://wild.test/hello"),
  wildcardSub: viaProxy("http://a.wild.test/hello"),
  denyWins: viaProxy("http://bad.wild.test/hello"),
  sniCurl: viaProxy("--cacert", "{CA}", "--connect-to", "allowed.test:443:other.test:443", "https://allowed.test/hello"),
  sniOpenssl: ["sh", "-c", "openssl s_client -proxy {SOCKS} -connect other.test:443 -servername allowed.test -CAfile {CA} </dev/null"],
  noSni: ["sh", "-c", "openssl s_client -proxy {SOCKS} -connect allowed.test:443 -noservername -CAfile {CA} </dev/null"],
  plainOn443: raw("CONNECT allowed.test:443 HTTP/1.1\r\n\r\n", "GET /hello HTTP/1.1\r\nHost: allowed.test\r\n\r\n"),
  bunFetch: ["bun", "-e", `const r = await fetch("http://denied.test/", { proxy: "http://127.0.0.1:3128" }); console.log(r.status, await r.text());`],
  python: [
    "{PYTHON}",
    "-c",
    `import urllib.request, urllib.error
try: urllib.request.urlopen("http://denied.test/")
except urllib.error.HTTPError as e: print(e.code, e.read().decode())`,
  ],
};

let world: Record<string, WorldRun>;

beforeAll(async () => {
  world = await runWorld({
    rules: {
      allow: ["allowed.test", "other.test", "*.wild.test", "rebind.test", "localhost"],
      deny: ["bad.wild.test"],
      addHosts: Object.fromEntries(["allowed.test", "other.test", "wild.test", "a.wild.test", "bad.wild.test"].map((n) => [n, "127.0.0.1"])),
    },
    dns: { "rebind.test": ["10.1.2.3"] },
    runs: Object.fromEntries(
      Object.entries(RUNS).map(([k, argv]) => [k, { argv: argv.map((a) => (a === "bun" ? process.execPath : a)), env: { http_proxy: "{PROXY}" } }]),
    ),
  });
}, 120_000);

/** The run's one connection record. */
function only(name: keyof typeof RUNS) {
  const r = world[name]!;
  expect(r.records.length).toBe(1);
  return r.records[0]!;
}

function deniedOverHttp(name: keyof typeof RUNS, host: string, reason: RegExp) {
  const r = world[name]!;
  expect(r.stdout).toStartWith(`bunbox: the sandbox's network policy refused ${host}: `);
  const rec = only(name);
  expect(rec).toMatchObject({ outcome: "denied", host: host.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1"), bytesUp: 0, bytesDown: 0 });
  expect(rec.reason).toMatch(reason);
  expect(r.stdout).toContain(rec.reason);
  expect(rec.address).toBeUndefined(); // never connected
}

describe("allowed, for reference", () => {
  test("an allowed name over HTTP and over HTTPS on 443", () => {
    expect(world.allowedHttp!.stdout).toBe("hello");
    expect(world.allowedHttps!.stdout).toBe("hello");
    expect(only("allowedHttps")).toMatchObject({ outcome: "allowed", sni: "allowed.test", address: "127.0.0.1:443" });
  });
});

describe("names", () => {
  test("a name not in the allow list: HTTP 403 naming bunbox's policy and the reason", () => {
    deniedOverHttp("deniedHttp", "denied.test:80", /^denied\.test is not in the allow list$/);
  });

  test("the same through CONNECT: the tunnel is refused with 403", () => {
    expect(world.deniedConnect!.stderr).toMatch(/CONNECT tunnel failed, response 403/);
    expect(only("deniedConnect")).toMatchObject({ protocol: "connect", outcome: "denied", reason: "denied.test is not in the allow list" });
  });

  test("the same through SOCKS5: reply 2, 'connection not allowed by ruleset'", () => {
    expect(world.deniedSocks!.code).not.toBe(0);
    expect(world.deniedSocks!.stderr).toMatch(/Can't complete SOCKS5 connection to denied\.test\. \(2\)/); // REP 2: not allowed by ruleset
    expect(only("deniedSocks")).toMatchObject({ protocol: "socks5", outcome: "denied", reason: "denied.test is not in the allow list" });
  });

  test("a wildcard allows a subdomain, not its bare suffix, and deny wins over it", () => {
    expect(world.wildcardSub!.stdout).toBe("hello");
    deniedOverHttp("wildcardBare", "wild.test:80", /^wild\.test is not in the allow list \(\*\.wild\.test matches its subdomains only; list wild\.test too\)$/);
    deniedOverHttp("denyWins", "bad.wild.test:80", /^bad\.wild\.test matches the deny entry bad\.wild\.test$/);
    expect(only("denyWins").rule).toBe("bad.wild.test");
  });

  test("Bun's fetch and python see the 403 and its body", () => {
    expect(world.bunFetch!.stdout).toMatch(/^403 bunbox: the sandbox's network policy refused denied\.test:80: denied\.test is not in the allow list/);
    expect(world.python!.stdout).toMatch(/^403 bunbox: the sandbox's network policy refused denied\.test:80/);
  });
});

describe("addresses", () => {
  test("an IP literal is refused unless an IP/CIDR entry allows it (HTTP and SOCKS5)", () => {
    deniedOverHttp("ipLiteral", "93.184.216.34:80", /^93\.184\.216\.34 is an IP address: refused unless an IP\/CIDR entry allows it$/);
    expect(world.ipLiteralSocks!.stderr).toMatch(/\(2\)\n$/);
    expect(only("ipLiteralSocks")).toMatchObject({ protocol: "socks5", outcome: "denied", host: "93.184.216.34" });
  });

  test("169.254.169.254, however it is written, over HTTP and SOCKS5", () => {
    deniedOverHttp("metadata", "169.254.169.254:80", /^169\.254\.169\.254 is the cloud metadata address/);
    expect(only("metadataSocks")).toMatchObject({ outcome: "denied", reason: expect.stringMatching(/cloud metadata/) });
    expect(only("metadataMapped")).toMatchObject({ outcome: "denied", reason: expect.stringMatching(/^169\.254\.169\.254 is the cloud metadata address/) });
    expect(only("metadataDecimal")).toMatchObject({ outcome: "denied", host: "2852039166", reason: expect.stringMatching(/^169\.254\.169\.254 is the cloud metadata/) });
    expect(world.metadataDecimal!.stdout).toMatch(/^b.HTTP\/1\.1 403 Forbidden/);
    expect(only("metadataHex")).toMatchObject({ outcome: "denied", host: "0xa9.0xfe.0xa9.0xfe", reason: expect.stringMatching(/^169\.254\.169\.254 is the cloud metadata/) });
  });

  test("a private address and a loopback one (with a server listening there)", () => {
    deniedOverHttp("private", "10.0.0.1:80", /^10\.0\.0\.1 is a private address \(RFC 1918\): refused unless/);
    deniedOverHttp("loopbackLiteral", "127.0.0.1:80", /^127\.0\.0\.1 is loopback: refused unless/);
  });

  test("an allowed name that resolves to a private address (DNS rebinding), or to loopback through the real resolver", () => {
    deniedOverHttp("rebinding", "rebind.test:80", /^rebind\.test resolves to 10\.1\.2\.3; 10\.1\.2\.3 is a private address/);
    deniedOverHttp("localhost", "localhost:80", /^localhost resolves to .*(127\.0\.0\.1|::1) is loopback/);
  });
});

describe("TLS", () => {
  test("curl --connect-to: CONNECT other.test with SNI allowed.test is domain fronting, refused", () => {
    expect(world.sniCurl!.code).not.toBe(0);
    expect(only("sniCurl")).toMatchObject({
      protocol: "connect",
      host: "other.test",
      outcome: "denied",
      sni: "allowed.test",
      reason: "the TLS server name allowed.test is not the host asked for, other.test (domain fronting)",
    });
  });

  test("openssl s_client -servername through the proxy: the same", () => {
    expect(world.sniOpenssl!.stdout).toContain("no peer certificate available");
    expect(only("sniOpenssl")).toMatchObject({ outcome: "denied", sni: "allowed.test", reason: expect.stringMatching(/domain fronting/) });
  });

  test("no SNI for a name is refused", () => {
    expect(only("noSni")).toMatchObject({ outcome: "denied", reason: "the TLS ClientHello names no server (SNI) for allowed.test" });
  });

  test("port 443 carries TLS only: plain bytes after CONNECT are refused", () => {
    expect(world.plainOn443!.stdout).toMatch(/^b'HTTP\/1\.1 200 Connection established\\r\\n\\r\\n'\n(b''|reset)\n$/);
    expect(only("plainOn443")).toMatchObject({ outcome: "denied", reason: "port 443 carries TLS only, and the first bytes were not a ClientHello", bytesUp: 0 });
  });
});
