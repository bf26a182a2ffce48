// `bunbox run --net proxy` end to end: curl, python and node inside a
// sandbox reach allowed names over HTTP, HTTPS (CONNECT, a certificate the
// sandboxee is told to trust) and SOCKS5 through the proxy bunbox runs, and
// the proxy variables bunbox sets; every refusal is seen by the program and
// listed in the Result (--json); a program that ignores the proxy gets
// ENETUNREACH; the DNS stub answers allowed names only; the proxy's sockets
// never enter the sandboxee's fd table. bunbox runs as root and as nobody,
// in a network namespace with only loopback (sandbox-world.ts), where its
// HTTP and HTTPS servers listen on 127.0.0.1:80 and :443, named through
// --add-host: no test can reach another address.
import { beforeAll, expect, test } from "bun:test";
import { BUNBOX, DIR, describeUnless, IS_ROOT } from "../helpers.ts";
import { nodeGet, pythonDirect, pythonDns, pythonGet, pythonSocks } from "./clients.ts";
import { runSandboxWorld } from "./harness.ts";
import type { SandboxRun } from "./sandbox-world.ts";

const NAMES = ["allowed.test", "other.test", "wild.test", "a.wild.test", "bad.wild.test"];
const NET = [
  ...["allowed.test", "other.test", "*.wild.test"].flatMap((h) => ["--allow-host", h]),
  "--deny-host", "bad.wild.test",
  ...NAMES.flatMap((n) => ["--add-host", `${n}:127.0.0.1`]),
];
const curl = (...args: string[]) => ["curl", "-sS", "--max-time", "10", "--cacert", "/ca.pem", ...args];

/** Each run: extra options before the command, and the command. */
const RUNS: Record<string, { opts?: string[]; cmd: string[] }> = {
  curlHttp: { cmd: curl("http://allowed.test/hello") },
  curlHttps: { cmd: curl("https://allowed.test/hello") },
  curlSocks: { cmd: curl("--proxy", "socks5h://127.0.0.1:3128", "https://a.wild.test/host") },
  pythonHttp: { cmd: pythonGet("http://allowed.test/hello") },
  pythonHttps: { cmd: pythonGet("https://allowed.test/host") },
  pythonSocks: { cmd: pythonSocks("allowed.test", 80, "/host") },
  node: { cmd: nodeGet("allowed.test", "/hello") },

  deniedName: { cmd: curl("http://denied.test/") },
  deniedConnect: { cmd: curl("https://denied.test/") },
  deniedSocks: { cmd: curl("--proxy", "socks5h://127.0.0.1:3128", "http://denied.test/") },
  ipLiteral: { cmd: curl("http://93.184.216.34/") },
  metadata: { cmd: curl("http://169.254.169.254/latest/meta-data/") },
  // Even an entry that covers every address does not open a private one.
  private: { opts: ["--allow-host", "0.0.0.0/0"], cmd: curl("http://10.0.0.1/") },
  sniMismatch: { cmd: curl("--connect-to", "allowed.test:443:other.test:443", "https://allowed.test/hello") },
  wildcardSub: { cmd: curl("http://a.wild.test/host") },
  wildcardBare: { cmd: curl("http://wild.test/hello") },
  denyWins: { cmd: curl("http://bad.wild.test/hello") },

  ignoresProxy: { cmd: pythonDirect([["10.0.0.1", 80], ["93.184.216.34", 443], ["169.254.169.254", 80]]) },
  dns: { cmd: pythonDns(["allowed.test", "a.wild.test", "allowed.test", "denied.test", "wild.test", "bad.wild.test"], { tcp: "other.test" }) },
  dnsThenSocks: {
    cmd: ["sh", "-c", `${pythonDns(["allowed.test"]).map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ")} && ${pythonSocks("198.18.0.1", 80, "/hello", { ipv4: true }).map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ")}`],
  },
  // getaddrinfo through /etc/resolv.conf, then curl's SOCKS5 with the address it resolved (not socks5h).
  resolver: { cmd: ["sh", "-c", "getent hosts allowed.test; getent hosts denied.test; echo $?; curl -sS --max-time 10 --socks5 127.0.0.1:3128 http://allowed.test/hello"] },
  fds: { opts: ["--ro", `${DIR}:/fx`], cmd: ["/fx/probe", "fds"] },
  // 64 requests through the proxy, all sent before any answer is read.
  concurrent: {
    cmd: [
      "/usr/bin/python3",
      "-c",
      `import socket
conns = [socket.create_connection(("127.0.0.1", 3128)) for _ in range(64)]
for i, s in enumerate(conns): s.sendall(b"GET http://allowed.test/bytes?n=%d HTTP/1.1\\r\\nHost: allowed.test\\r\\n\\r\\n" % (10000 + i))
total = 0
for s in conns:
    data = b""
    while True:
        b = s.recv(65536)
        if not b: break
        data += b
    total += len(data.split(b"\\r\\n\\r\\n", 1)[1])
print(total)`,
    ],
  },
  // Thousands of connections held open against a limit of 100 at once.
  flood: {
    opts: ["--max-connections", "100", "--max-files", "4096"],
    cmd: ["/usr/bin/python3", "-c", `import socket, time\nconns = [socket.create_connection(("127.0.0.1", 3128)) for _ in range(3000)]\ntime.sleep(1)\nprint(len(conns))`],
  },
  env: { cmd: ["sh", "-c", "env | grep -i _proxy= | sort"] },
  envOwn: { opts: ["--env", "HTTPS_PROXY=http://corp.example:8080"], cmd: ["sh", "-c", "env | grep -i _proxy= | sort"] },
  verbose: { opts: ["-v"], cmd: curl("-o", "/dev/null", "http://allowed.test/hello") },
};

const who = ["root", "nobody"] as const;
/** bunbox runs in a network namespace of the test's own (a user namespace's root could not map nobody), and as nobody. */
const WORLD = IS_ROOT ? undefined : "needs root: bunbox runs in a network namespace made for the test, as root and as nobody";
let world: Record<string, SandboxRun>;

beforeAll(async () => {
  if (WORLD) return;
  const runs: Record<string, { args: string[]; nobody: boolean }> = {};
  for (const w of who) {
    for (const [name, r] of Object.entries(RUNS)) {
      runs[`${name}:${w}`] = { args: [...NET, ...(r.opts ?? []), "--ro", "{CA}:/ca.pem", "--", ...r.cmd], nobody: w === "nobody" };
    }
  }
  world = await runSandboxWorld({ bunbox: BUNBOX, runs });
}, 180_000);

for (const w of who) {
  describeUnless(WORLD)(`bunbox run --net proxy, as ${w}`, () => {
    const get = (name: keyof typeof RUNS) => world[`${name}:${w}`]!;
    /** The Result's connection records. */
    const records = (name: keyof typeof RUNS) => (get(name).result?.network?.connections ?? []) as Record<string, any>[];
    const only = (name: keyof typeof RUNS) => {
      const list = records(name);
      expect(list.length).toBe(1);
      return list[0]!;
    };

    test("curl reaches an allowed name over HTTP, HTTPS through CONNECT and SOCKS5, through the variables bunbox set", () => {
      expect(get("curlHttp")).toMatchObject({ code: 0, stdout: "hello" });
      expect(only("curlHttp")).toMatchObject({ protocol: "http", host: "allowed.test", port: 80, outcome: "allowed", rule: "allowed.test", address: "127.0.0.1:80", end: "closed" });
      expect(get("curlHttps")).toMatchObject({ code: 0, stdout: "hello" });
      expect(only("curlHttps")).toMatchObject({ protocol: "connect", host: "allowed.test", port: 443, outcome: "allowed", sni: "allowed.test" });
      expect(get("curlSocks")).toMatchObject({ code: 0, stdout: "a.wild.test" });
      expect(only("curlSocks")).toMatchObject({ protocol: "socks5", host: "a.wild.test", rule: "*.wild.test", sni: "a.wild.test" });
      for (const r of [only("curlHttp"), only("curlHttps"), only("curlSocks")]) {
        expect(r.bytesUp).toBeGreaterThan(0);
        expect(r.bytesDown).toBeGreaterThan(0);
        expect(r.durationMs).toBeGreaterThanOrEqual(0);
      }
      expect(get("curlHttp").result).toMatchObject({ status: "OK", network: { mode: "proxy", allowed: 1, denied: 0 } });
    });

    test("python's urllib (HTTP, HTTPS) and a raw SOCKS5 client; node over HTTP, CONNECT and SOCKS5", () => {
      expect(get("pythonHttp").stdout).toBe("hello\n");
      expect(get("pythonHttps").stdout).toBe("allowed.test\n");
      expect(only("pythonHttps")).toMatchObject({ protocol: "connect", sni: "allowed.test", outcome: "allowed" });
      expect(get("pythonSocks").stdout).toBe("allowed.test\n");
      expect(get("node").stdout).toBe("hello hello hello\n");
      expect(records("node").map((r) => [r.protocol, r.outcome])).toEqual([["http", "allowed"], ["connect", "allowed"], ["socks5", "allowed"]]);
    });

    test("a denied name: 403 naming bunbox's policy (HTTP and CONNECT), SOCKS5 reply 2; each in the Result", () => {
      expect(get("deniedName").stdout).toBe("bunbox: the sandbox's network policy refused denied.test:80: denied.test is not in the allow list\n");
      expect(only("deniedName")).toMatchObject({ protocol: "http", host: "denied.test", outcome: "denied", reason: "denied.test is not in the allow list", bytesUp: 0, bytesDown: 0 });
      expect(only("deniedName").address).toBeUndefined();
      expect(get("deniedConnect").stderr).toContain("CONNECT tunnel failed, response 403");
      expect(only("deniedConnect")).toMatchObject({ protocol: "connect", outcome: "denied" });
      expect(get("deniedSocks").stderr).toMatch(/Can't complete SOCKS5 connection to denied\.test\. \(2\)/);
      expect(only("deniedSocks")).toMatchObject({ protocol: "socks5", outcome: "denied" });
      expect(get("deniedName").result).toMatchObject({ network: { allowed: 0, denied: 1 } });
    });

    test("an IP literal, the metadata address and a private address (even under 0.0.0.0/0) are refused", () => {
      expect(only("ipLiteral")).toMatchObject({ outcome: "denied", host: "93.184.216.34", reason: "93.184.216.34 is an IP address: refused unless an IP/CIDR entry allows it" });
      expect(get("ipLiteral").stdout).toContain("bunbox: the sandbox's network policy refused 93.184.216.34:80");
      expect(only("metadata")).toMatchObject({ outcome: "denied", reason: expect.stringMatching(/^169\.254\.169\.254 is the cloud metadata address/) });
      expect(only("private")).toMatchObject({ outcome: "denied", reason: expect.stringMatching(/^10\.0\.0\.1 is a private address \(RFC 1918\): refused unless/) });
    });

    test("a TLS server name other than the CONNECT host (domain fronting) is refused", () => {
      expect(get("sniMismatch").code).not.toBe(0);
      expect(only("sniMismatch")).toMatchObject({
        protocol: "connect",
        host: "other.test",
        outcome: "denied",
        sni: "allowed.test",
        reason: "the TLS server name allowed.test is not the host asked for, other.test (domain fronting)",
      });
    });

    test("a wildcard allows a subdomain, not its bare suffix; deny wins", () => {
      expect(get("wildcardSub").stdout).toBe("a.wild.test");
      expect(only("wildcardBare")).toMatchObject({ outcome: "denied", reason: "wild.test is not in the allow list (*.wild.test matches its subdomains only; list wild.test too)" });
      expect(only("denyWins")).toMatchObject({ outcome: "denied", rule: "bad.wild.test", reason: "bad.wild.test matches the deny entry bad.wild.test" });
    });

    test("a program ignoring the proxy variables gets ENETUNREACH, over TCP and UDP", () => {
      expect(get("ignoresProxy").stdout).toBe("ENETUNREACH ENETUNREACH ENETUNREACH ENETUNREACH\n");
      expect(records("ignoresProxy")).toEqual([]);
    });

    test("the DNS stub: an address of its own for allowed names (stable), NXDOMAIN for others; UDP and TCP; reported", () => {
      expect(get("dns").stdout).toBe(
        ["allowed.test 0 198.18.0.1", "a.wild.test 0 198.18.0.2", "allowed.test 0 198.18.0.1", "denied.test 3 -", "wild.test 3 -", "bad.wild.test 3 -", "other.test/tcp 0 198.18.0.3", ""].join("\n"),
      );
      const dns = get("dns").result!.network.dns;
      expect(dns).toMatchObject({ queries: 7, answered: 4, refused: 3 });
      expect(dns.names).toContainEqual({ name: "allowed.test", outcome: "answered", reason: "allowed.test matches allowed.test", address: "198.18.0.1", queries: 2 });
      expect(dns.names).toContainEqual({ name: "bad.wild.test", outcome: "refused", reason: "bad.wild.test matches the deny entry bad.wild.test", queries: 1 });
    });

    test("an address the stub gave out stands for its name at the proxy", () => {
      expect(get("dnsThenSocks").stdout).toBe("allowed.test 0 198.18.0.1\nhello\n");
      expect(only("dnsThenSocks")).toMatchObject({ protocol: "socks5", host: "allowed.test", stubAddress: "198.18.0.1", outcome: "allowed", rule: "allowed.test" });
    });

    test("/etc/resolv.conf names the stub: getaddrinfo gets its answers, and curl --socks5 connects by the address", () => {
      expect(get("resolver").stdout).toBe("198.18.0.1      allowed.test\n2\nhello");
      expect(only("resolver")).toMatchObject({ protocol: "socks5", host: "allowed.test", stubAddress: "198.18.0.1", outcome: "allowed" });
    });

    test("the proxy's and the DNS stub's sockets are not in the sandboxee's fd table", () => {
      expect(get("fds").stdout.trim().split("\n").sort()).toEqual(["0", "1", "2"]);
    });

    test("64 connections at once from one sandbox all complete", () => {
      expect(get("concurrent").stdout).toBe(`${64 * 10000 + (63 * 64) / 2}\n`);
      expect(get("concurrent").result!.network).toMatchObject({ allowed: 64, denied: 0, failed: 0 });
    });

    test("thousands of connections: past --max-connections each is refused at once, and reported", () => {
      expect(get("flood").stdout).toBe("3000\n");
      const net = get("flood").result!.network;
      expect(net).toMatchObject({ denied: 2900, failed: 100 });
      expect(net.connections.length + net.unlisted).toBe(3000);
      expect(net.connections.find((c: Record<string, any>) => c.outcome === "denied").reason).toBe("connection limit reached: 100 connections at once (the sandbox's limit)");
    });

    test("the proxy variables, upper and lower case, unless the caller set the variable", () => {
      const lines = ["ALL_PROXY=socks5h://127.0.0.1:3128", "HTTPS_PROXY=http://127.0.0.1:3128", "HTTP_PROXY=http://127.0.0.1:3128", "NO_PROXY=localhost,127.0.0.1,::1"];
      const both = lines.flatMap((l) => [l, l.replace(/^\w+/, (n) => n.toLowerCase())]);
      expect(get("env").stdout.trim().split("\n").sort()).toEqual(both.sort());
      const own = get("envOwn").stdout.trim().split("\n");
      expect(own).toContain("HTTPS_PROXY=http://corp.example:8080");
      expect(own.some((l) => l.startsWith("https_proxy="))).toBe(false);
      expect(own).toContain("http_proxy=http://127.0.0.1:3128");
    });

    test("-v: the rules, the relaxation and a line per connection", () => {
      const err = get("verbose").stderr;
      expect(err).toContain("bunbox: relaxation: network proxy: the sandboxee may reach 3 host patterns through bunbox's proxy (allowed.test, other.test, *.wild.test)");
      expect(err).toContain("  allow *.wild.test\n");
      expect(err).toContain("  deny bad.wild.test\n");
      expect(err).toContain("  add-host allowed.test → 127.0.0.1\n");
      expect(err).toContain("bunbox: net: open HTTP allowed.test:80 → 127.0.0.1:80 (allowed.test matches allowed.test)\n");
      expect(err).toMatch(/bunbox: net: closed HTTP allowed\.test:80 → 127\.0\.0\.1:80: \d+ B up, [\d.]+ (B|KiB) down, \d+ ms \(closed\)\n/);
    });
  });
}
