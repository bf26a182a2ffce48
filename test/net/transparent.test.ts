// `bunbox run --net proxy-transparent`: programs that ignore the proxy
// variables connect as they would anywhere (curl --noproxy, node 20's http,
// python's sockets, blocking and not, IPv4 and IPv6 sockets), resolve
// through the DNS stub, and their connect() is decided by the same policy
// and relayed by the proxy (SNI gate included); a refusal is an errno. Root
// and nobody, in a loopback-only world (sandbox-world.ts).
import { beforeAll, expect, test } from "bun:test";
import { BUNBOX, describeUnless, IS_ROOT } from "../helpers.ts";
import { runSandboxWorld } from "./harness.ts";
import type { SandboxRun } from "./sandbox-world.ts";

const NET = [
  "--net", "proxy-transparent",
  "--allow-host", "allowed.test", "--allow-host", "other.test", "--allow-host", "closed.test",
  ...["allowed.test", "other.test", "closed.test"].flatMap((n) => ["--add-host", `${n}:127.0.0.1`]),
];
const curl = (...args: string[]) => ["curl", "-sS", "--noproxy", "*", "--max-time", "10", "--cacert", "/ca.pem", ...args];
/** python3: `body` after a prelude with a GET helper over a connected socket; prints what it says. */
const py = (body: string) => [
  "/usr/bin/python3",
  "-c",
  `import errno, select, socket
def get(s, host):
    s.sendall(("GET /hello HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n" % host).encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b: break
        data += b
    return data.split(b"\\r\\n\\r\\n", 1)[1].decode()
def err(f):
    try: return f()
    except OSError as e: return errno.errorcode.get(e.errno, str(e))
${body}`,
];

const RUNS: Record<string, string[]> = {
  curlHttp: curl("http://allowed.test/hello"),
  curlHttps: curl("https://allowed.test/hello"),
  node: ["/usr/bin/node", "-e", `require("http").get("http://allowed.test/hello", (r) => { let d = ""; r.on("data", (c) => (d += c)); r.on("end", () => console.log(d)); }).on("error", (e) => console.log("error", e.code));`],
  pythonBlocking: py(`s = socket.create_connection(("allowed.test", 80))
print(s.getpeername()[0], get(s, "allowed.test"))`),
  pythonNonBlocking: py(`s = socket.socket()
s.setblocking(False)
r = s.connect_ex((socket.gethostbyname("allowed.test"), 80))
select.select([], [s], [], 5)
s.setblocking(True)
print(errno.errorcode.get(r, r), s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), get(s, "allowed.test"))`),
  pythonIpv6: py(`s = socket.socket(socket.AF_INET6)
s.connect(("::ffff:" + socket.gethostbyname("allowed.test"), 80))
print(get(s, "allowed.test"))`),
  ipLiteral: py(`print(err(lambda: socket.create_connection(("93.184.216.34", 80))))`),
  metadata: py(`print(err(lambda: socket.create_connection(("169.254.169.254", 80))))`),
  deniedName: curl("http://denied.test/"),
  sniMismatch: curl("--connect-to", "allowed.test:443:other.test:443", "https://allowed.test/hello"),
  upstreamRefused: py(`print(err(lambda: socket.create_connection(("closed.test", 81))))`),
  // Not the proxy's: UDP, and loopback (nothing listens on its port 9), run as the kernel runs them.
  untouched: py(`u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print(err(lambda: u.sendto(b"x", ("192.0.2.1", 53))), err(lambda: socket.create_connection(("127.0.0.1", 9))))`),
};

const who = ["root", "nobody"] as const;
/** bunbox runs in a network namespace of the test's own (a user namespace's root could not map nobody), and as nobody. */
const WORLD = IS_ROOT ? undefined : "needs root: bunbox runs in a network namespace made for the test, as root and as nobody";
let world: Record<string, SandboxRun>;

beforeAll(async () => {
  if (WORLD) return;
  const runs: Record<string, { args: string[]; nobody: boolean }> = {};
  for (const w of who) {
    for (const [name, cmd] of Object.entries(RUNS)) runs[`${name}:${w}`] = { args: [...NET, "--ro", "{CA}:/ca.pem", "--", ...cmd], nobody: w === "nobody" };
  }
  world = await runSandboxWorld({ bunbox: BUNBOX, runs });
}, 180_000);

for (const w of who) {
  describeUnless(WORLD)(`bunbox run --net proxy-transparent, as ${w}`, () => {
    const get = (name: keyof typeof RUNS) => world[`${name}:${w}`]!;
    const records = (name: keyof typeof RUNS) => (get(name).result?.network?.connections ?? []) as Record<string, any>[];
    const only = (name: keyof typeof RUNS) => {
      const list = records(name);
      expect(list.length).toBe(1);
      return list[0]!;
    };

    test("curl without a proxy reaches an allowed name over HTTP and HTTPS: its connect() went through the proxy", () => {
      expect(get("curlHttp")).toMatchObject({ code: 0, stdout: "hello" });
      expect(only("curlHttp")).toMatchObject({ protocol: "transparent", host: "allowed.test", stubAddress: "198.18.0.1", port: 80, outcome: "allowed", address: "127.0.0.1:80", end: "closed" });
      expect(get("curlHttps")).toMatchObject({ code: 0, stdout: "hello" });
      expect(only("curlHttps")).toMatchObject({ protocol: "transparent", host: "allowed.test", port: 443, sni: "allowed.test", outcome: "allowed" });
      expect(get("curlHttp").result).toMatchObject({ network: { mode: "proxy-transparent", dns: { answered: expect.any(Number) } } });
    });

    test("node's http, python's blocking, non-blocking and IPv6 sockets", () => {
      expect(get("node").stdout).toBe("hello\n");
      // The cost: the peer a socket names is the proxy's end, not the server.
      expect(get("pythonBlocking").stdout).toBe("127.0.0.1 hello\n");
      expect(get("pythonNonBlocking").stdout).toMatch(/^(0|EINPROGRESS) 0 hello\n$/);
      expect(get("pythonIpv6").stdout).toBe("hello\n");
      expect(only("pythonIpv6")).toMatchObject({ protocol: "transparent", host: "allowed.test", outcome: "allowed" });
    });

    test("an IP literal and the metadata address: ECONNREFUSED, and denied in the Result", () => {
      expect(get("ipLiteral").stdout).toBe("ECONNREFUSED\n");
      expect(only("ipLiteral")).toMatchObject({ protocol: "transparent", host: "93.184.216.34", outcome: "denied", reason: "93.184.216.34 is an IP address: refused unless an IP/CIDR entry allows it" });
      expect(get("metadata").stdout).toBe("ECONNREFUSED\n");
      expect(only("metadata")).toMatchObject({ outcome: "denied", reason: expect.stringMatching(/^169\.254\.169\.254 is the cloud metadata address/) });
    });

    test("a name the policy does not allow does not resolve", () => {
      expect(get("deniedName").code).toBe(6);
      expect(get("deniedName").stderr).toContain("Could not resolve host: denied.test");
      expect(records("deniedName")).toEqual([]);
      expect(get("deniedName").result!.network.dns.names).toContainEqual(expect.objectContaining({ name: "denied.test", outcome: "refused" }));
    });

    test("a TLS server name other than the name connected to is refused (domain fronting)", () => {
      expect(get("sniMismatch").code).not.toBe(0);
      expect(only("sniMismatch")).toMatchObject({ protocol: "transparent", host: "other.test", sni: "allowed.test", outcome: "denied", reason: "the TLS server name allowed.test is not the host asked for, other.test (domain fronting)" });
    });

    test("the upstream's own refusal is the connect()'s errno", () => {
      expect(get("upstreamRefused").stdout).toBe("ECONNREFUSED\n");
      expect(only("upstreamRefused")).toMatchObject({ protocol: "transparent", host: "closed.test", port: 81, outcome: "failed", reason: "connect to 127.0.0.1:81: ECONNREFUSED (Connection refused)" });
    });

    test("UDP and loopback are not the proxy's: the kernel answers, nothing is recorded", () => {
      expect(get("untouched").stdout).toBe("ENETUNREACH ECONNREFUSED\n");
      expect(records("untouched")).toEqual([]);
    });
  });
}
