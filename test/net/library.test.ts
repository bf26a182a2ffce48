// --net proxy through the library: PolicyBuilder.allowHosts/addHost, a
// Sandbox whose Result lists its connections; 64 connections at once from
// one sandbox, 16 sandboxes sharing this process, thousands of connections
// against the per-sandbox limit with bunbox's fds bounded; the proxy's
// sockets in no process of the sandbox, and closed with the run. The
// servers listen on this host's loopback, named through addHost.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { testPolicy } from "../helpers.ts";
import { Executor } from "../../src/sandbox/executor.ts";
import type { LimitsInit } from "../../src/sandbox/limits.ts";
import { Sandbox } from "../../src/sandbox/sandbox.ts";
import type { PolicyBuilder } from "../../src/policy/builder.ts";
import type { NetEvent } from "../../src/net/report.ts";
import type { DnsEvent } from "../../src/net/dns-stub.ts";
import { openFds, startServers, until } from "./harness.ts";

const servers = startServers();
afterAll(() => servers.stop());

const PY = "/usr/bin/python3";
const hosts = (b: PolicyBuilder) => b.allowHosts("allowed.test").addHost("allowed.test", "127.0.0.1");
const policy = testPolicy("default", hosts);

function run(argv: string[], opts: { limits?: Partial<LimitsInit>; events?: (NetEvent | DnsEvent)[] } = {}) {
  const ex = new Executor(argv[0]!, argv, { ...(opts.limits ? { limits: opts.limits } : {}) });
  const events = opts.events;
  return new Sandbox(ex, policy, events ? { onNetwork: (e) => events.push(e) } : {});
}

/** python: n requests through the proxy, all sent before any answer is read; prints the bytes of each body. */
const concurrent = (n: number) => [
  PY,
  "-c",
  `import socket
conns = []
for i in range(${n}):
    s = socket.create_connection(("127.0.0.1", 3128))
    s.sendall(("GET http://allowed.test:${servers.http}/bytes?n=%d HTTP/1.1\\r\\nHost: allowed.test\\r\\n\\r\\n" % (10000 + i)).encode())
    conns.append(s)
sizes = []
for s in conns:
    data = b""
    while True:
        b = s.recv(65536)
        if not b: break
        data += b
    sizes.append(len(data.split(b"\\r\\n\\r\\n", 1)[1]))
print(sum(sizes), len(sizes))`,
];

describe("--net proxy from the library", () => {
  // bunbox's own long-lived fds (the reactor, the spawner threads, the relay thread) are made on first use: not a leak.
  beforeAll(async () => {
    await run(["curl", "-sS", "-o", "/dev/null", `http://allowed.test:${servers.http}/hello`]).run();
  });

  test("the builder's host list makes the policy a proxy one; the Result lists the connection; -v events", async () => {
    expect(policy.net).toBe("proxy");
    expect(policy.network!.describe()).toEqual(["allow allowed.test", "add-host allowed.test → 127.0.0.1"]);
    const events: (NetEvent | DnsEvent)[] = [];
    const r = await run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", `http://allowed.test:${servers.http}/hello`], { events }).run();
    expect(r.status).toBe("OK");
    expect(r.network).toMatchObject({ mode: "proxy", allowed: 1, denied: 0, failed: 0 });
    expect(r.network!.connections[0]).toMatchObject({ protocol: "http", host: "allowed.test", outcome: "allowed", address: `127.0.0.1:${servers.http}` });
    expect(events.map((e) => e.type)).toEqual(["open", "end"]);
    expect(r.toJSON().network).toEqual(r.network);
  });

  test("64 connections at once from one sandbox all complete, each in its Result", async () => {
    const r = await run(concurrent(64)).run();
    expect(r.status).toBe("OK");
    expect(r.network!.allowed).toBe(64);
    expect(r.network!.connections.every((c) => c.outcome === "allowed" && c.end === "closed")).toBe(true);
  }, 60_000);

  test("16 sandboxes sharing this process, at once: each has its own proxy and report", async () => {
    const boxes = Array.from({ length: 16 }, (_, i) =>
      run(["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}", `http://allowed.test:${servers.http}/bytes?n=${1000 + i}`]),
    );
    const results = await Promise.all(boxes.map((b) => b.run()));
    results.forEach((r, i) => {
      expect(r.status).toBe("OK");
      expect(r.network!.connections.length).toBe(1);
      expect(r.network!.connections[0]!.bytesDown).toBeGreaterThan(1000 + i);
      expect(r.network!.connections[0]!.bytesDown).toBeLessThan(1000 + i + 400); // its own, not another's
    });
    const down = results.map((r) => r.network!.connections[0]!.bytesDown);
    expect(new Set(down).size).toBe(16);
  }, 60_000);

  test("thousands of connections: past the per-sandbox limit each is refused and reported; bunbox's fds stay bounded", async () => {
    const fdsBefore = openFds();
    let peak = fdsBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, openFds())), 10);
    const flood = [
      PY,
      "-c",
      `import socket, time
conns = [socket.create_connection(("127.0.0.1", 3128)) for _ in range(3000)]
time.sleep(1)
print(len(conns))`,
    ];
    const r = await run(flood, { limits: { openFiles: 4096, net: { maxConcurrent: 100, headerTimeoutMs: 60_000 } } }).run();
    clearInterval(sampler);
    expect(r.status).toBe("OK");
    expect(r.network!.denied).toBe(2900);
    const limited = r.network!.connections.find((c) => c.outcome === "denied")!;
    expect(limited.reason).toBe("connection limit reached: 100 connections at once (the sandbox's limit)");
    // The 100 held ones end with the run, never having sent a request.
    expect(r.network!.failed).toBe(100);
    expect(r.network!.connections.length + r.network!.unlisted).toBe(3000);
    expect(peak - fdsBefore).toBeLessThan(100 * 2 + 50);
    await until(() => openFds() <= fdsBefore, 5000, "bunbox's fds back where they were");
  }, 60_000);

  test("the proxy's sockets are held by bunbox alone: in no process of the sandbox; closed with the run", async () => {
    const fdsBefore = openFds();
    const s = run(["sh", "-c", "sleep 30 & sleep 30"]);
    s.runAsync();
    await s.ready();
    const pid = s.pid!;
    // The listener as the sandbox's kernel sees it: its inode, from /proc/PID/net/tcp (port 3128 is 0C38).
    await until(() => readFileSync(`/proc/${pid}/net/tcp`, "utf8").includes(":0C38 00000000:0000 0A"), 5000, "the listener");
    const line = readFileSync(`/proc/${pid}/net/tcp`, "utf8").split("\n").find((l) => l.includes(":0C38 00000000:0000 0A"))!;
    const inode = line.trim().split(/\s+/)[9]!;
    const socket = `socket:[${inode}]`;
    const fdsOf = (p: number | string) => readdirSync(`/proc/${p}/fd`).map((fd) => {
      try {
        return readlinkSync(`/proc/${p}/fd/${fd}`);
      } catch {
        return "";
      }
    });
    expect(fdsOf("self")).toContain(socket); // bunbox holds it
    // Every process of the sandbox: those in its pid namespace (init included).
    const ns = readlinkSync(`/proc/${pid}/ns/pid`);
    const insiders = () =>
      readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
        try {
          return readlinkSync(`/proc/${p}/ns/pid`) === ns;
        } catch {
          return false;
        }
      });
    await until(() => insiders().length >= 3, 5000, "init, sh and its sleep"); // sh forks its sleeps after it starts
    const inside = insiders();
    for (const p of inside) expect(fdsOf(p)).not.toContain(socket);
    s.kill();
    const r = await s.awaitResult();
    expect(r.status).toBe("EXTERNAL_KILL");
    expect(r.network).toBeDefined();
    expect(fdsOf("self")).not.toContain(socket);
    await until(() => openFds() <= fdsBefore, 5000, "bunbox's fds back where they were");
  });

  test("proxy-transparent from the builder: a connect() by name goes through the proxy", async () => {
    const t = testPolicy("default", (b) => hosts(b.setNetwork("proxy-transparent")));
    expect(t.net).toBe("proxy-transparent");
    const ex = new Executor("curl", ["curl", "-sS", "--noproxy", "*", `http://allowed.test:${servers.http}/hello`]);
    const r = await new Sandbox(ex, t).run();
    expect(r.status).toBe("OK");
    expect(r.network!.connections).toHaveLength(1);
    expect(r.network!.connections[0]).toMatchObject({ protocol: "transparent", host: "allowed.test", stubAddress: "198.18.0.1", outcome: "allowed" });
  });

  test("a sandbox that ends with a tunnel open: the tunnel ends with it, and is in its Result", async () => {
    const hold = [
      PY,
      "-c",
      `import socket
s = socket.create_connection(("127.0.0.1", 3128))
s.sendall(b"CONNECT allowed.test:${servers.http} HTTP/1.1\\r\\n\\r\\n")
print(s.recv(100))`,
    ];
    const r = await run(hold).run();
    expect(r.network!.connections).toHaveLength(1);
    expect(r.network!.connections[0]).toMatchObject({ protocol: "connect", outcome: "allowed" });
    // Ended with the run (the sandbox's socket closed, or aborted at close), not at the idle (10 min) or half-open (60 s) limit.
    expect(["idle timeout", "half-open timeout"]).not.toContain(r.network!.connections[0]!.end);
  });
});
