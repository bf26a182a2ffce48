// The relay thread (csrc/net_relay.c through src/native/net.ts): splice in
// both directions, half-close passed on, the idle and half-open timeouts,
// the gate that holds a client's bytes back while the server's flow, abort,
// and every fd closed when a tunnel ends.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { readdirSync, readFileSync } from "node:fs";
import { acceptOne, adoptSocket, GATE_DOWN, GATE_UP, openTunnels, RELAY_ABORTED, RELAY_CLOSED, RELAY_HALFOPEN, RELAY_IDLE, type RelayEnd, relay, startConnect } from "../../src/native/net.ts";
import { noDelay, openFds, tcpListener, until } from "./harness.ts";

/** One end of a TCP connection, driven by the test through a Bun socket. */
class App {
  received = 0;
  hasher = new Bun.CryptoHasher("sha256");
  text = "";
  /** The last bytes received, as text. */
  tail = "";
  eof = false;
  error = false;
  closed = false;
  socket!: Socket<App>;
  private pending: Uint8Array[] = [];

  static handlers = {
    data(s: Socket<App>, d: Buffer) {
      s.data.received += d.length;
      s.data.hasher.update(d);
      if (s.data.text.length < 4096) s.data.text += d.toString("latin1");
      s.data.tail = (s.data.tail + d.subarray(-16).toString("latin1")).slice(-16);
    },
    drain(s: Socket<App>) {
      s.data.flush();
    },
    end(s: Socket<App>) {
      s.data.eof = true;
    },
    error(s: Socket<App>) {
      s.data.error = true;
    },
    close(s: Socket<App>) {
      s.data.eof = true;
      s.data.closed = true;
    },
  };

  write(bytes: Uint8Array): void {
    this.pending.push(bytes);
    this.flush();
  }

  get flushed(): boolean {
    return this.pending.length === 0;
  }

  private flush(): void {
    while (this.pending.length) {
      const b = this.pending[0]!;
      const n = this.socket.write(b);
      if (n < b.length) {
        this.pending[0] = b.subarray(Math.max(n, 0));
        return;
      }
      this.pending.shift();
    }
  }
}

const listener = tcpListener();
adoptSocket(listener.fd, true);

/** A TCP connection: a Bun socket at one end, the other end's fd (accepted here). */
async function connection(): Promise<{ app: App; fd: number }> {
  const app = new App();
  app.socket = await Bun.connect<App>({ hostname: "127.0.0.1", port: listener.port, allowHalfOpen: true, data: app, socket: App.handlers } as never);
  let fd = -1;
  await until(() => (fd = acceptOne(listener.fd)) >= 0, 5000, "the accept");
  return { app, fd };
}

// The server apps: Bun's listening sockets keep reading after a FIN
// (allowHalfOpen), which its connecting sockets do not.
const serverApps: App[] = [];
const server = Bun.listen<App>({
  hostname: "127.0.0.1",
  port: 0,
  allowHalfOpen: true,
  socket: {
    ...App.handlers,
    open(s) {
      s.data = new App();
      s.data.socket = s;
      serverApps.push(s.data);
    },
  },
});
afterAll(() => server.stop(true));

/** A client app at the proxy's client fd, a server app at its upstream fd (connected as the proxy connects). */
async function tunnelEnds(): Promise<{ client: App; server: App; clientFd: number; upstreamFd: number }> {
  const c = await connection();
  const known = serverApps.length;
  const upstreamFd = startConnect(Uint8Array.of(127, 0, 0, 1), server.port);
  if (upstreamFd < 0) throw new Error(`connect: ${upstreamFd}`);
  await until(() => serverApps.length > known, 5000, "the server app");
  return { client: c.app, server: serverApps[known]!, clientFd: c.fd, upstreamFd };
}

function run(clientFd: number, upstreamFd: number, opts: Partial<{ gates: number; idleMs: number; halfOpenMs: number }> = {}) {
  let end: RelayEnd | undefined;
  const t = relay(clientFd, upstreamFd, { gates: 0, idleMs: 0, halfOpenMs: 0, ...opts }, (e) => (end = e));
  if (typeof t === "number") throw new Error(`relay: ${t}`);
  return { tunnel: t, ended: () => end };
}

/** CPU time (user + system, ms) of the relay thread, found by its name. */
function relayCpuMs(): number {
  for (const tid of readdirSync("/proc/self/task")) {
    if (readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim() !== "bunbox-relay") continue;
    const fields = readFileSync(`/proc/self/task/${tid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ 100)
  }
  throw new Error("test: no bunbox-relay thread");
}

/** n bytes of a pattern that does not repeat within a pipe's size. */
const pattern = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => ((i + seed) * 2654435761) >>> 24);

describe("relay", () => {
  // The relay thread's own fds (epoll, eventfd) are made on first use: not a leak.
  beforeAll(async () => {
    const { client, server, clientFd, upstreamFd } = await tunnelEnds();
    const r = run(clientFd, upstreamFd);
    r.tunnel.abort();
    await until(() => r.ended() !== undefined && client.eof && server.eof);
    client.socket.terminate();
    server.socket.terminate();
  });

  test("moves bytes both ways at once, intact, counts them, and ends CLOSED when both sides finish", async () => {
    const fds = openFds();
    const { client, server, clientFd, upstreamFd } = await tunnelEnds();
    expect(noDelay(clientFd) && noDelay(upstreamFd)).toBe(true); // set by accept and connect
    const r = run(clientFd, upstreamFd);
    const up = pattern(3 << 20);
    const down = pattern(5 << 20).reverse();
    client.write(up);
    server.write(down);
    await until(() => client.received === down.length && server.received === up.length, 30_000, "the transfer");
    expect(server.hasher.digest("hex")).toBe(new Bun.CryptoHasher("sha256").update(up).digest("hex"));
    expect(client.hasher.digest("hex")).toBe(new Bun.CryptoHasher("sha256").update(down).digest("hex"));
    client.socket.shutdown(); // FIN, still reading
    await until(() => server.eof, 5000, "the server seeing EOF");
    expect(r.ended()).toBeUndefined(); // half-closed: the server may still answer
    server.write(new TextEncoder().encode("bye"));
    await until(() => client.tail.endsWith("bye"), 5000, "the last answer");
    server.socket.shutdown();
    await until(() => r.ended() !== undefined, 5000, "the end report");
    expect(r.ended()).toEqual({ reason: RELAY_CLOSED, side: "client", up: up.length, down: down.length + 3 });
    client.socket.terminate();
    server.socket.terminate();
    expect(openTunnels()).toBe(0);
    await until(() => openFds() <= fds, 5000, "the fds to be closed");
  });

  test("a tunnel with nothing moving ends after the idle timeout; both sides see it close", async () => {
    const { client, server, clientFd, upstreamFd } = await tunnelEnds();
    const r = run(clientFd, upstreamFd, { idleMs: 150 });
    client.write(new TextEncoder().encode("x"));
    await until(() => server.received === 1);
    await until(() => r.ended() !== undefined, 5000, "the idle timeout");
    expect(r.ended()).toMatchObject({ reason: RELAY_IDLE, up: 1, down: 0 });
    await until(() => client.eof && server.eof, 5000, "both sides closed");
    client.socket.terminate();
    server.socket.terminate();
  });

  test("once one side has finished, the other gets the half-open timeout", async () => {
    const { client, server, clientFd, upstreamFd } = await tunnelEnds();
    const r = run(clientFd, upstreamFd, { idleMs: 60_000, halfOpenMs: 150 });
    client.socket.shutdown();
    await until(() => server.eof, 5000, "EOF passed on");
    await until(() => r.ended() !== undefined, 5000, "the half-open timeout");
    expect(r.ended()).toMatchObject({ reason: RELAY_HALFOPEN });
    client.socket.terminate();
    server.socket.terminate();
  });

  test("a gated tunnel lets the server speak first and holds the client's bytes until opened", async () => {
    const { client, server, clientFd, upstreamFd } = await tunnelEnds();
    const r = run(clientFd, upstreamFd, { gates: GATE_UP });
    server.write(new TextEncoder().encode("220 banner\r\n"));
    await until(() => client.text === "220 banner\r\n", 5000, "the banner");
    client.write(new TextEncoder().encode("EHLO"));
    await Bun.sleep(100);
    expect(server.received).toBe(0);
    r.tunnel.open(GATE_DOWN); // the other direction: changes nothing
    await Bun.sleep(50);
    expect(server.received).toBe(0);
    r.tunnel.open(GATE_UP);
    await until(() => server.text === "EHLO", 5000, "the client's bytes after open");
    r.tunnel.abort();
    await until(() => r.ended() !== undefined);
    expect(r.ended()).toMatchObject({ reason: RELAY_ABORTED, up: 4, down: 12 });
    await until(() => client.eof && server.eof, 5000, "both sides closed");
    r.tunnel.open(GATE_UP); // a handle that has ended: nothing happens
    r.tunnel.abort();
    client.socket.terminate();
    server.socket.terminate();
  });

  test("a gated tunnel with the client's bytes waiting costs the relay thread no CPU (no busy epoll)", async () => {
    const { client, server, clientFd, upstreamFd } = await tunnelEnds();
    const r = run(clientFd, upstreamFd, { gates: GATE_UP });
    client.write(new TextEncoder().encode("held back"));
    await Bun.sleep(50);
    const before = relayCpuMs();
    await Bun.sleep(500);
    expect(relayCpuMs() - before).toBeLessThan(100); // spinning would take the whole 500 ms
    r.tunnel.open(GATE_UP);
    await until(() => server.text === "held back", 5000, "the bytes after open");
    r.tunnel.abort();
    await until(() => r.ended() !== undefined);
    client.socket.terminate();
    server.socket.terminate();
  });

  test("a tunnel gated downstream carries the client's bytes and holds the server's until opened", async () => {
    const { client, server, clientFd, upstreamFd } = await tunnelEnds();
    const r = run(clientFd, upstreamFd, { gates: GATE_DOWN });
    client.write(new TextEncoder().encode("POST body"));
    await until(() => server.text === "POST body", 5000, "the client's bytes");
    server.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\n\r\n"));
    await Bun.sleep(100);
    expect(client.received).toBe(0);
    r.tunnel.open(GATE_DOWN);
    await until(() => client.text === "HTTP/1.1 200 OK\r\n\r\n", 5000, "the server's bytes after open");
    r.tunnel.abort();
    await until(() => r.ended() !== undefined);
    expect(r.ended()).toMatchObject({ reason: RELAY_ABORTED, up: 9, down: 19 });
    client.socket.terminate();
    server.socket.terminate();
  });

  test("a reset on one side ends the tunnel with that side's errno", async () => {
    const { client, server, clientFd, upstreamFd } = await tunnelEnds();
    const r = run(clientFd, upstreamFd);
    server.write(pattern(1 << 20));
    client.socket.terminate(); // RST with unread data
    await until(() => r.ended() !== undefined, 5000, "the end");
    expect(r.ended()!.reason).toBeLessThan(0);
    expect(r.ended()!.side).toBe("client");
    await until(() => server.eof, 5000, "the server seeing the end");
    server.socket.terminate();
  });

  test("a hundred tunnels at once all deliver, then every fd is closed", async () => {
    const fds = openFds();
    const ends: Awaited<ReturnType<typeof tunnelEnds>>[] = [];
    for (let i = 0; i < 100; i++) ends.push(await tunnelEnds());
    const runs = ends.map((e) => run(e.clientFd, e.upstreamFd));
    ends.forEach((e, i) => e.client.write(new TextEncoder().encode(`ping ${i}`)));
    await until(() => ends.every((e, i) => e.server.text === `ping ${i}`), 10_000, "all pings");
    ends.forEach((e) => e.server.socket.shutdown());
    ends.forEach((e) => e.client.socket.shutdown());
    await until(() => runs.every((r) => r.ended()?.reason === RELAY_CLOSED), 10_000, "all closed");
    await until(() => ends.every((e) => e.client.eof && e.server.eof), 10_000);
    for (const e of ends) {
      e.client.socket.terminate();
      e.server.socket.terminate();
    }
    await until(() => openFds() <= fds, 5000, "the fds to be closed");
  });
});
