// The proxy (src/net/proxy.ts, session.ts) serving clients that run in a
// network namespace of their own, reaching it only through the sockets
// handed over as a sandbox's will be: curl, Bun's fetch and python, over
// HTTP, CONNECT and SOCKS5, each connection in the report. Every target here
// is a server on this host's loopback, named through addHosts; the refusals
// of other addresses are tested in refusals.test.ts, inside a namespace.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { socketpair } from "../../src/native/comms.ts";
import { openTunnels } from "../../src/native/net.ts";
import { openWatches } from "../../src/native/reactor.ts";
import { NetPolicy } from "../../src/net/policy.ts";
import { NetProxy, type ProxyOptions } from "../../src/net/proxy.ts";
import type { ConnectionRecord, NetEvent } from "../../src/net/report.ts";
import { openFds, PROXY_PORT, PYTHON, runInNamespace, startServers, until } from "./harness.ts";

const servers = startServers();
afterAll(() => servers.stop());

const PROXY = `http://127.0.0.1:${PROXY_PORT}`;
const RULES = {
  allow: ["allowed.test", "*.wild.test"],
  addHosts: { "allowed.test": "127.0.0.1", "a.wild.test": "127.0.0.1", "b.wild.test": "127.0.0.1" },
};

const proxies: NetProxy[] = [];
// A failed test still closes its proxy, so the next one starts clean.
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

function makeProxy(opts: Partial<ProxyOptions> = {}): { proxy: NetProxy; events: NetEvent[] } {
  const events: NetEvent[] = [];
  const proxy = new NetProxy({ policy: new NetPolicy(RULES), onEvent: (e) => events.push(e), ...opts });
  proxies.push(proxy);
  return { proxy, events };
}

/** The records once every connection has ended. */
async function settled(proxy: NetProxy): Promise<readonly ConnectionRecord[]> {
  await until(() => proxy.active === 0, 10_000, "every connection to end");
  return proxy.report().connections;
}

const curl = (...args: string[]) => ["curl", "-sS", "--max-time", "10", ...args];

describe("clients reach allowed names", () => {
  for (const mode of ["listen", "accept"] as const) {
    test(`curl over HTTP, HTTPS through CONNECT, and SOCKS5 (${mode === "listen" ? "a listener made inside" : "connections passed out"})`, async () => {
      const { proxy, events } = makeProxy();
      const http = await runInNamespace(proxy, curl("-x", PROXY, `http://allowed.test:${servers.http}/hello`), { mode });
      expect(http).toEqual({ code: 0, stdout: "hello", stderr: "" });
      const https = await runInNamespace(proxy, curl("-x", PROXY, "--cacert", servers.ca, `https://allowed.test:${servers.https}/hello`), { mode });
      expect(https).toEqual({ code: 0, stdout: "hello", stderr: "" });
      const socks = await runInNamespace(proxy, curl("--socks5-hostname", `127.0.0.1:${PROXY_PORT}`, "--cacert", servers.ca, `https://a.wild.test:${servers.https}/host`), { mode });
      expect(socks).toEqual({ code: 0, stdout: `a.wild.test:${servers.https}`, stderr: "" });
      const records = await settled(proxy);
      expect(records.map((r) => [r.protocol, r.host, r.outcome, r.rule, r.sni, r.address])).toEqual([
        ["http", "allowed.test", "allowed", "allowed.test", undefined, `127.0.0.1:${servers.http}`],
        ["connect", "allowed.test", "allowed", "allowed.test", "allowed.test", `127.0.0.1:${servers.https}`],
        ["socks5", "a.wild.test", "allowed", "*.wild.test", "a.wild.test", `127.0.0.1:${servers.https}`],
      ]);
      for (const r of records) {
        expect(r.bytesUp).toBeGreaterThan(0);
        expect(r.bytesDown).toBeGreaterThan(0);
        expect(r.end).toBeDefined();
      }
      expect(events.map((e) => `${e.type} ${e.record.id}`)).toEqual(["open 1", "end 1", "open 2", "end 2", "open 3", "end 3"]);
      await proxy.close();
    });
  }

  test("Bun's fetch, through HTTP_PROXY-style options, over HTTP and HTTPS", async () => {
    const { proxy } = makeProxy();
    const script = `
      const tls = { ca: await Bun.file(${JSON.stringify(servers.ca)}).text() };
      const a = await (await fetch("http://allowed.test:${servers.http}/host", { proxy: "${PROXY}" })).text();
      const b = await (await fetch("https://b.wild.test:${servers.https}/host", { proxy: "${PROXY}", tls })).text();
      console.log(a, b);`;
    const r = await runInNamespace(proxy, [process.execPath, "-e", script]);
    expect(r).toMatchObject({ code: 0, stdout: `allowed.test:${servers.http} b.wild.test:${servers.https}\n` });
    expect((await settled(proxy)).map((c) => [c.protocol, c.outcome])).toEqual([
      ["http", "allowed"],
      ["connect", "allowed"],
    ]);
    await proxy.close();
  });

  test("python's urllib, from the proxy variables, over HTTP and HTTPS", async () => {
    const { proxy } = makeProxy();
    const script = `
import ssl, urllib.request
ctx = ssl.create_default_context(cafile=${JSON.stringify(servers.ca)})
print(urllib.request.urlopen("http://allowed.test:${servers.http}/hello").read().decode(),
      urllib.request.urlopen("https://allowed.test:${servers.https}/hello", context=ctx).read().decode())`;
    const r = await runInNamespace(proxy, [PYTHON, "-c", script], { env: { http_proxy: PROXY, https_proxy: PROXY } });
    expect(r).toMatchObject({ code: 0, stdout: "hello hello\n" });
    expect((await settled(proxy)).map((c) => [c.protocol, c.sni])).toEqual([
      ["http", undefined],
      ["connect", "allowed.test"],
    ]);
    await proxy.close();
  });

  test("a forwarded request carries its body, and the Host the server sees is the URL's", async () => {
    const { proxy } = makeProxy();
    const r = await runInNamespace(proxy, curl("-x", PROXY, "-H", "Host: evil.test", "--data-binary", "@-", `http://allowed.test:${servers.http}/echo`), { stdin: "x".repeat(100_000) });
    expect(r.stdout).toBe("x".repeat(100_000));
    const host = await runInNamespace(proxy, curl("-x", PROXY, "-H", "Host: evil.test", `http://allowed.test:${servers.http}/host`));
    expect(host.stdout).toBe(`allowed.test:${servers.http}`);
    const [echo] = await settled(proxy);
    expect(echo!.bytesUp).toBeGreaterThan(100_000);
    await proxy.close();
  });

  test("a forwarded response comes back with Connection: close (1xx heads as they came); a keep-alive client does not reuse the connection", async () => {
    // A raw server: 100 Continue, then a keep-alive answer the client must not take at its word.
    const server = Bun.listen<string | undefined>({
      hostname: "127.0.0.1",
      port: 0,
      data: undefined,
      socket: {
        // Once the whole request is in (its 2-byte body last): a close before would reset the relay's write of it.
        data(sock, d) {
          const seen = ((sock.data as string | undefined) ?? "") + d.toString("latin1");
          sock.data = seen;
          if (!seen.endsWith("\r\n\r\nhi")) return;
          sock.write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\nX-Kept: 1\r\nContent-Length: 2\r\n\r\nok");
          sock.end();
        },
      },
    });
    try {
      const { proxy } = makeProxy();
      const raw = [
        PYTHON,
        "-c",
        `import socket
s = socket.create_connection(("127.0.0.1", ${PROXY_PORT}))
s.sendall(b"POST http://allowed.test:${server.port}/ HTTP/1.1\\r\\nHost: allowed.test\\r\\nConnection: keep-alive\\r\\nExpect: 100-continue\\r\\nContent-Length: 2\\r\\n\\r\\nhi")
data = b""
while True:
    b = s.recv(65536)
    if not b: break
    data += b
print(repr(data.decode()), len(data))`,
      ];
      const r = await runInNamespace(proxy, raw);
      const head = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-Kept: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
      expect(r.stdout).toBe(`${JSON.stringify(head).replaceAll('"', "'")} ${head.length}\n`);
      const [rec] = await settled(proxy);
      expect(rec).toMatchObject({ protocol: "http", outcome: "allowed", bytesDown: head.length, end: "closed" });
      // node 20's default agent keeps connections alive: its second request must not go down the first's.
      const script = `const http = require("http");
const get = () => new Promise((ok, no) => http.get({ host: "127.0.0.1", port: ${PROXY_PORT}, path: "http://allowed.test:${servers.http}/hello" }, (r) => { let d = ""; r.on("data", (c) => (d += c)); r.on("end", () => ok(d)); }).on("error", no));
get().then(async (a) => console.log(a, await get())).catch((e) => console.log("error", e.code));`;
      const n = await runInNamespace(proxy, ["node", "-e", script]);
      expect(n.stdout).toBe("hello hello\n");
      await proxy.close();
    } finally {
      server.stop(true);
    }
  });

  test("64 connections at once through one proxy all complete, each in the report", async () => {
    const { proxy } = makeProxy();
    const script = `
      const tls = { ca: await Bun.file(${JSON.stringify(servers.ca)}).text() };
      const urls = Array.from({ length: 64 }, (_, i) => i % 2 ? "http://allowed.test:${servers.http}/bytes?n=" + (1000 + i) : "https://allowed.test:${servers.https}/bytes?n=" + (1000 + i));
      const sizes = await Promise.all(urls.map(async (u) => (await (await fetch(u, { proxy: "${PROXY}", tls, keepalive: false })).arrayBuffer()).byteLength));
      console.log(sizes.reduce((a, b) => a + b, 0));`;
    const r = await runInNamespace(proxy, [process.execPath, "-e", script]);
    expect(r).toMatchObject({ code: 0, stdout: `${64 * 1000 + (63 * 64) / 2}\n` });
    const records = await settled(proxy);
    expect(records.filter((c) => c.outcome === "allowed").length).toBeGreaterThanOrEqual(64);
    expect(records.every((c) => c.outcome === "allowed")).toBe(true);
    await proxy.close();
  });
});

test("16 sandboxes' proxies in one process, served at once, each with its own report", async () => {
  const all = Array.from({ length: 16 }, () => makeProxy().proxy);
  const script = (i: number) => `
    const tls = { ca: await Bun.file(${JSON.stringify(servers.ca)}).text() };
    const got = await Promise.all([0, 1, 2, 3].map(async (j) => (await fetch((j % 2 ? "http://allowed.test:${servers.http}" : "https://allowed.test:${servers.https}") + "/bytes?n=" + (${100 * i} + j + 1), { proxy: "${PROXY}", tls })).arrayBuffer()));
    console.log(got.map((b) => b.byteLength).join(" "));`;
  const runs = await Promise.all(all.map((proxy, i) => runInNamespace(proxy, [process.execPath, "-e", script(i)])));
  runs.forEach((r, i) => expect(r).toMatchObject({ code: 0, stdout: [0, 1, 2, 3].map((j) => 100 * i + j + 1).join(" ") + "\n" }));
  for (const proxy of all) {
    const records = await settled(proxy);
    expect(records.length).toBe(4);
    expect(records.every((c) => c.outcome === "allowed" && c.bytesDown > 0)).toBe(true);
  }
});

describe("protocol refusals", () => {
  /** A python client speaking raw bytes to the proxy: prints what came back (hex). */
  const raw = (send: string, gap = 0.02) => [
    PYTHON,
    "-c",
    `import socket, sys, time
s = socket.create_connection(("127.0.0.1", ${PROXY_PORT}))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for part in [${send}]:
    s.sendall(part); time.sleep(${gap})
s.settimeout(5)
out = b""
while True:
    b = s.recv(65536)
    if not b: break
    out += b
print(out.hex())`,
  ];

  test("SOCKS5: BIND and UDP ASSOCIATE get 'command not supported', no acceptable method gets 0xff", async () => {
    const { proxy } = makeProxy();
    const bind = await runInNamespace(proxy, raw(String.raw`b"\x05\x01\x00", b"\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50"`));
    expect(bind.stdout.trim()).toBe("0500" + "05070001000000000000");
    const udp = await runInNamespace(proxy, raw(String.raw`b"\x05\x01\x00", b"\x05\x03\x00\x03\x0callowed.test\x00\x50"`));
    expect(udp.stdout.trim()).toBe("0500" + "05070001000000000000");
    const auth = await runInNamespace(proxy, raw(String.raw`b"\x05\x01\x02"`));
    expect(auth.stdout.trim()).toBe("05ff");
    const atyp = await runInNamespace(proxy, raw(String.raw`b"\x05\x01\x00", b"\x05\x01\x00\x07\x00\x00"`));
    expect(atyp.stdout.trim()).toBe("0500" + "05080001000000000000");
    const records = await settled(proxy);
    expect(records.map((r) => [r.outcome, r.reason])).toEqual([
      ["denied", "SOCKS5 BIND is not supported (only CONNECT)"],
      ["denied", "SOCKS5 UDP ASSOCIATE is not supported (only CONNECT)"],
      ["failed", 'the SOCKS5 client offered no "no authentication" method'],
      ["failed", "a malformed SOCKS5 request: address type 7"],
    ]);
    await proxy.close();
  });

  test("HTTP: an origin-form request, https:// forwarding, a huge head and smuggling framing get 4xx", async () => {
    const { proxy } = makeProxy({ limits: { maxHeaderBytes: 2048 } });
    const status = async (send: string) => Buffer.from((await runInNamespace(proxy, raw(send))).stdout.trim(), "hex").toString().split("\r\n")[0];
    expect(await status(String.raw`b"GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n"`)).toBe("HTTP/1.1 400 Bad Request");
    expect(await status(String.raw`b"GET https://allowed.test/ HTTP/1.1\r\n\r\n"`)).toBe("HTTP/1.1 400 Bad Request");
    expect(await status(String.raw`b"GET http://allowed.test/ HTTP/1.1\r\nX: " + b"y" * 3000 + b"\r\n\r\n"`)).toBe("HTTP/1.1 431 Request Header Fields Too Large");
    expect(await status(String.raw`b"POST http://allowed.test/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"`)).toBe("HTTP/1.1 400 Bad Request");
    expect(await status(String.raw`b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00"`)).toBe(Buffer.from([0, 0x5b, 0, 0, 0, 0, 0, 0]).toString());
    const records = await settled(proxy);
    expect(records.map((r) => r.reason)).toEqual([
      "this is a proxy: send an absolute URL (http://host/path) or CONNECT",
      "send https:// URLs through CONNECT (the proxy does not speak TLS)",
      "the request head is larger than 2048 bytes",
      "both Content-Length and Transfer-Encoding",
      "SOCKS4 is not spoken (use SOCKS5)",
    ]);
    expect(records.every((r) => r.outcome === "failed")).toBe(true);
    await proxy.close();
  });

  test("a request head trickled in one byte at a time is refused after 64 pieces", async () => {
    const { proxy } = makeProxy();
    // 150 bytes 10 ms apart: even if the proxy, busy, read two at a time, it would see 75 pieces.
    const head = `GET http://allowed.test/hello HTTP/1.1\r\nHost: allowed.test\r\nUser-Agent: ${"s".repeat(80)}\r\n\r\n`;
    const bytes = Array.from(head, (c) => `b"${c === "\r" ? "\\r" : c === "\n" ? "\\n" : c}"`);
    await runInNamespace(proxy, raw(bytes.join(", "), 0.01));
    const [r] = await settled(proxy);
    expect(r).toMatchObject({ outcome: "failed", reason: "sent in more than 64 pieces" });
    await proxy.close();
  });

  test("a request head that comes in a few pieces is waited for, not spun on, and served", async () => {
    const { proxy } = makeProxy();
    const r = await runInNamespace(proxy, raw(String.raw`b"GET http://allowed.test:${servers.http}/hel", b"lo HTTP/1.1\r\nHost: a", b"llowed.test\r\n", b"\r\n"`, 0.1));
    expect(Buffer.from(r.stdout.trim(), "hex").toString()).toEndWith("\r\n\r\nhello");
    const [rec] = await settled(proxy);
    expect(rec).toMatchObject({ outcome: "allowed", host: "allowed.test" });
  });

  test("a client that never finishes its request is cut off at the header timeout (slowloris)", async () => {
    const { proxy } = makeProxy({ limits: { headerTimeoutMs: 300 } });
    const r = await runInNamespace(proxy, raw(String.raw`b"GET http://allowed.test/ HTTP/1.1\r\n"`));
    expect(r.code).toBe(0);
    expect(Buffer.from(r.stdout.trim(), "hex").toString()).toStartWith("HTTP/1.1 408 Request Timeout\r\n");
    const [rec] = await settled(proxy);
    expect(rec).toMatchObject({ outcome: "failed", reason: "the request did not arrive in time (300 ms)" });
    await proxy.close();
  });

  test("a resolver that never answers: 504 at the connect deadline, and close() does not wait for it", async () => {
    const hang = () => new Promise<string[]>(() => {});
    const { proxy } = makeProxy({ lookup: hang, limits: { connectTimeoutMs: 300 } });
    const r = await runInNamespace(proxy, curl("-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", PROXY, "http://c.wild.test/"));
    expect(r.stdout).toBe("504");
    expect((await settled(proxy))[0]).toMatchObject({ outcome: "failed", reason: "connecting to c.wild.test:80 took too long (300 ms)" });
    const { proxy: closing } = makeProxy({ lookup: hang });
    const run = runInNamespace(closing, curl("-x", PROXY, "http://c.wild.test/"));
    await until(() => closing.active === 1, 10_000, "the connection");
    await Bun.sleep(50);
    await closing.close();
    await run;
    expect(closing.report().connections[0]).toMatchObject({ outcome: "failed", reason: "the proxy closed" });
  });

  test("something that is not a TCP socket is refused at adopt, and reported", async () => {
    const { proxy } = makeProxy();
    const pair = socketpair();
    if (typeof pair === "number") throw new Error("socketpair");
    proxy.adopt(pair[0]);
    expect(proxy.report().connections[0]).toMatchObject({ outcome: "failed", reason: expect.stringMatching(/^not a connected TCP socket: EAFNOSUPPORT/) });
    expect(() => proxy.serveListener(pair[1])).toThrow(/not a listening TCP socket: EAFNOSUPPORT/);
    await proxy.close();
  });
});

describe("limits", () => {
  /** Opens `n` connections to the proxy and holds them for `holdMs`; prints how many the proxy closed at once. */
  const flood = (n: number, holdMs: number) => [
    PYTHON,
    "-c",
    `import socket, time
conns = [socket.create_connection(("127.0.0.1", ${PROXY_PORT})) for _ in range(${n})]
time.sleep(${holdMs / 1000})
closed = 0
for s in conns:
    s.setblocking(False)
    try:
        closed += s.recv(1) == b""
    except BlockingIOError: pass
    except ConnectionResetError: closed += 1
print(closed)`,
  ];

  test("thousands of connections: past the concurrent limit each is closed at once and reported; bunbox's fds stay bounded", async () => {
    const { proxy } = makeProxy({ limits: { maxConcurrent: 100, headerTimeoutMs: 60_000 } });
    const fdsBefore = openFds();
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, openFds())), 20);
    const r = await runInNamespace(proxy, flood(3000, 1000));
    clearInterval(sampler);
    expect(r.code).toBe(0);
    expect(Number(r.stdout)).toBe(2900);
    const report = proxy.report();
    expect(report.denied).toBe(2900);
    const limited = report.connections.filter((c) => c.outcome === "denied");
    expect(limited[0]!.reason).toBe("connection limit reached: 100 connections at once (the sandbox's limit)");
    expect(report.connections.length + report.unlisted).toBe(2900 + proxy.active + report.failed);
    // 100 held connections, each one fd here, plus the listener and slack.
    expect(peak - fdsBefore).toBeLessThan(100 * 2 + 50);
    await proxy.close();
    expect(proxy.report().failed).toBe(100); // the held ones, closed by close()
  });

  test("the total limit counts every connection of the run", async () => {
    const { proxy } = makeProxy({ limits: { maxTotal: 3 } });
    const r = await runInNamespace(proxy, ["sh", "-c", `for i in 1 2 3 4 5; do curl -s -o /dev/null -w "%{http_code} " -x ${PROXY} http://allowed.test:${servers.http}/hello; done`]);
    expect(r.stdout).toBe("200 200 200 000 000 ");
    const records = await settled(proxy);
    expect(records.map((c) => c.outcome)).toEqual(["allowed", "allowed", "allowed", "denied", "denied"]);
    expect(records[4]!.reason).toBe("connection limit reached: 3 connections in all (the sandbox's limit)");
    await proxy.close();
  });

  test("records past maxRecords are counted, not listed", async () => {
    const { proxy } = makeProxy({ limits: { maxRecords: 2 } });
    await runInNamespace(proxy, ["sh", "-c", `for i in 1 2 3 4; do curl -s -o /dev/null -x ${PROXY} http://allowed.test:${servers.http}/hello; done`]);
    await settled(proxy);
    expect(proxy.report()).toMatchObject({ unlisted: 2, allowed: 4 });
    expect(proxy.report().connections.length).toBe(2);
    await proxy.close();
  });

  test("close() ends open tunnels and leaves no watch or tunnel behind", async () => {
    const { proxy } = makeProxy();
    const run = runInNamespace(proxy, [PYTHON, "-c", `import socket; s = socket.create_connection(("127.0.0.1", ${PROXY_PORT})); s.sendall(b"CONNECT allowed.test:${servers.http} HTTP/1.1\\r\\n\\r\\n"); print(s.recv(100)); print(s.recv(100))`]);
    await until(() => proxy.report().connections.length === 0 && proxy.active === 1 && openTunnels() > 0, 10_000, "the tunnel");
    await proxy.close();
    const r = await run;
    expect(r.stdout).toBe("b'HTTP/1.1 200 Connection established\\r\\n\\r\\n'\nb''\n");
    expect(proxy.report().connections[0]).toMatchObject({ outcome: "allowed", end: "aborted" });
    expect(openTunnels()).toBe(0);
    expect(openWatches()).toBe(0);
  });
});
