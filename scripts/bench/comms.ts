/**
 * Benchmark 6: what bunbox's Comms costs over a plain socket, for 1 KiB and
 * 1 MiB messages: round-trip latency (send, echo back) and one-way
 * throughput (many messages queued at once, until the far end has them all).
 *
 * Five channels, all AF_UNIX stream sockets:
 *
 *   Comms ↔ Comms        Comms.pair(), both ends in this process: every
 *                        wait goes through the reactor thread and a promise
 *   Comms ↔ C client     the host's Comms against scripts/bench/comms-echo.c
 *                        (csrc/client/, blocking calls with poll) in a child
 *                        process, as a sandboxee talks to bunbox
 *   C ↔ C                comms-echo.c against a fork of itself, both on
 *                        the C client: the cross-process floor with the
 *                        same library, no JavaScript at all (it times itself)
 *   raw, synchronous     a socketpair driven by the very calls Comms makes
 *                        (the shim's non-blocking sendmsg/recvmsg with the
 *                        same 8-byte frame header), in a loop on this thread
 *                        that alternates sender and receiver: no reactor, no
 *                        promises, no allocation per message. The floor of
 *                        the system calls and copies, not a usable design
 *   Bun unix socket      Bun.listen + Bun.connect on a unix socket path in
 *                        this process: Bun's own event-loop I/O, what a Bun
 *                        program would use without bunbox. The echo side
 *                        waits for the whole message before sending it back,
 *                        as a message protocol must
 *
 * Rounds run every channel once in a rotated order, after one warm-up
 * round. A round-trip figure is the median over every single round trip; a
 * throughput figure is one sample per round.
 *
 * Every message a JavaScript end receives is a fresh Uint8Array (Comms
 * allocates one per frame, Bun one per read). At 1 MiB that is what the
 * figures mostly measure: here a third to a half of all `new Uint8Array(1 MiB)`
 * take ~3 ms (every 8 MiB of such large objects sets off a collection of
 * JavaScriptCore's, ~2.8 ms; BUN_JSC_logGC=1 shows them), against ~0.15 ms
 * for a whole round trip of the synchronous floor.
 */
import { join, resolve } from "node:path";
import type { Socket } from "bun";
import { Comms } from "../../src/comms/comms.ts";
import { TAG, encodeHeader } from "../../src/comms/wire.ts";
import { EAGAIN, RecvScratch, recvFrame, sendFrame, socketpair } from "../../src/native/comms.ts";
import { closeFd } from "../../src/native/sys.ts";
import type { Benchmark, Measurement } from "./report.ts";
import { BenchError, type Workdir } from "./setup.ts";
import { summarize } from "./stats.ts";

export interface CommsOptions {
  work: Workdir;
  rounds: number;
  /** Round trips per round and size. */
  roundTrips: { small: number; large: number };
  /** Messages per throughput sample and size. */
  streamed: { small: number; large: number };
  log: (s: string) => void;
}

const KiB = 1024;
const MiB = 1024 * 1024;
const CLIENT = resolve(import.meta.dir, "../../csrc/client");

interface Channel {
  key: string;
  label: string;
  /** `n` round trips of `msg` (there and back), each in µs. */
  roundTrips(msg: Uint8Array, n: number): Promise<number[]>;
  /** `count` copies of `msg` one way until the far end has them all: payload MB/s. */
  throughput(msg: Uint8Array, count: number): Promise<number>;
  close(): Promise<void>;
}

/** A channel from its two operations, timed here. */
function timed(
  key: string,
  label: string,
  ops: {
    roundTrip(msg: Uint8Array): Promise<void>;
    stream(msg: Uint8Array, count: number): Promise<void>;
    close(): Promise<void>;
  },
): Channel {
  return {
    key,
    label,
    async roundTrips(msg, n) {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await ops.roundTrip(msg);
        out.push((performance.now() - t) * 1000);
      }
      return out;
    },
    async throughput(msg, count) {
      const t = performance.now();
      await ops.stream(msg, count);
      return (msg.length * count) / ((performance.now() - t) * 1000);
    },
    close: ops.close,
  };
}

function commsPair(): Channel {
  const [a, b] = Comms.pair({ timeoutMs: Infinity });
  return timed("pair", "Comms ↔ Comms, one process", {
    async roundTrip(msg) {
      const [, got] = await Promise.all([a.sendBytes(msg), b.recvBytes()]);
      await Promise.all([b.sendBytes(got), a.recvBytes()]);
    },
    async stream(msg, count) {
      const sends = Array.from({ length: count }, () => a.sendBytes(msg));
      const recvs = Array.from({ length: count }, () => b.recvBytes());
      await Promise.all([...sends, ...recvs]);
    },
    async close() {
      a.close();
      b.close();
    },
  });
}

function buildPeer(work: Workdir): string {
  const cc = process.env.CC ?? "gcc";
  const out = join(work.dir, "comms-echo");
  const argv = [cc, "-O2", "-Wall", `-I${CLIENT}`, "-o", out, join(import.meta.dir, "comms-echo.c"), join(CLIENT, "bunbox_client.c")];
  const p = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new BenchError(`${cc} comms-echo.c failed:\n${p.stderr.toString()}`);
  return out;
}

/** comms-echo in `mode`, holding the other end of a fresh pair as its fd 3. */
function startPeer(bin: string, mode: "echo" | "sink") {
  const { comms, peerFd } = Comms.pairWithFd({ timeoutMs: Infinity });
  const proc = Bun.spawn([bin, mode], { stdio: ["ignore", "ignore", "pipe", peerFd] });
  closeFd(peerFd);
  return {
    comms,
    async close() {
      comms.close();
      const code = await proc.exited;
      if (code !== 0) throw new BenchError(`comms-echo ${mode} exited ${code}: ${(await new Response(proc.stderr).text()).trim()}`);
    },
  };
}

function commsToC(bin: string): Channel {
  const echo = startPeer(bin, "echo");
  const sink = startPeer(bin, "sink");
  return timed("c", "Comms ↔ C client, child process", {
    async roundTrip(msg) {
      await Promise.all([echo.comms.sendBytes(msg), echo.comms.recvBytes()]);
    },
    async stream(msg, count) {
      for (let i = 0; i < count; i++) void sink.comms.sendBytes(msg);
      await sink.comms.sendUint64(0);
      const got = await sink.comms.recvUint64();
      if (got !== BigInt(count * msg.length)) throw new BenchError(`comms-echo sink counted ${got} bytes, not ${count * msg.length}`);
    },
    async close() {
      await Promise.all([echo.close(), sink.close()]);
    },
  });
}

/** comms-echo talking to a fork of itself: it times itself and prints one figure per line. */
function cToC(bin: string): Channel {
  const run = async (mode: string, size: number, count: number) => {
    const proc = Bun.spawn([bin, mode, String(size), String(count)], { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) throw new BenchError(`comms-echo ${mode} exited ${code}: ${err.trim()}`);
    return out.trim().split("\n").map(Number);
  };
  return {
    key: "cc",
    label: "C client ↔ C client, two processes (baseline)",
    roundTrips: (msg, n) => run("pingpong", msg.length, n),
    throughput: async (msg, count) => (await run("stream", msg.length, count))[0]!,
    async close() {},
  };
}

function rawSync(): Channel {
  const pair = socketpair();
  if (typeof pair === "number") throw new BenchError(`socketpair: errno ${-pair}`);
  const [x, y] = pair;
  const scratch = new RecvScratch();
  const into = new Uint8Array(MiB + 64 * KiB);
  const check = (r: number, what: string) => {
    if (r < 0 && r !== -EAGAIN) throw new BenchError(`raw ${what}: errno ${-r}`);
    if (r === 0) throw new BenchError(`raw ${what}: the socket closed`);
    return r > 0 ? r : 0;
  };
  /** `count` frames of `body` from `from` to `to`, sending and receiving by turns. */
  const transfer = (from: number, to: number, body: Uint8Array, count: number) => {
    const head = encodeHeader(TAG.BYTES, body.length);
    const frame = head.length + body.length;
    let frames = 0;
    let sent = 0;
    let got = 0;
    while (got < frame * count) {
      if (frames < count) {
        sent += check(sendFrame(from, head, body, sent, null), "sendmsg");
        if (sent === frame) {
          frames++;
          sent = 0;
        }
      }
      got += check(recvFrame(to, into, scratch), "recvmsg");
    }
  };
  return timed("raw", "raw socketpair, synchronous (baseline)", {
    async roundTrip(msg) {
      transfer(x, y, msg, 1);
      transfer(y, x, msg, 1);
    },
    async stream(msg, count) {
      transfer(x, y, msg, count);
    },
    async close() {
      closeFd(x);
      closeFd(y);
    },
  });
}

/** Writes with Bun's backpressure: what a write does not take waits for drain. */
class Writer {
  private readonly queue: Uint8Array[] = [];
  constructor(private readonly socket: Socket<unknown>) {}
  write(data: Uint8Array): void {
    this.queue.push(data);
    if (this.queue.length === 1) this.drain();
  }
  drain(): void {
    while (this.queue.length > 0) {
      const d = this.queue[0]!;
      const n = this.socket.write(d);
      if (n < 0) throw new BenchError("Bun socket: write on a closed socket");
      if (n < d.length) {
        this.queue[0] = d.subarray(n);
        return;
      }
      this.queue.shift();
    }
  }
}

async function bunSocket(work: Workdir): Promise<Channel> {
  const path = join(work.dir, "comms-bench.sock");
  // What the current operation waits for, on each side.
  let serverWants = 0;
  let serverHas: Uint8Array[] = [];
  let serverCount = 0;
  let echoing = false;
  let serverDone: () => void = () => {};
  let clientWants = 0;
  let clientCount = 0;
  let clientDone: () => void = () => {};
  let serverWriter: Writer | undefined;
  const listener = Bun.listen({
    unix: path,
    socket: {
      open(s) {
        serverWriter = new Writer(s);
      },
      data(_s, d) {
        serverCount += d.length;
        if (echoing) serverHas.push(d);
        if (serverCount < serverWants) return;
        if (echoing) serverWriter!.write(Buffer.concat(serverHas));
        serverHas = [];
        serverDone();
      },
      drain() {
        serverWriter?.drain();
      },
    },
  });
  const client = await Bun.connect({
    unix: path,
    socket: {
      data(_s, d) {
        clientCount += d.length;
        if (clientCount >= clientWants) clientDone();
      },
      drain() {
        clientWriter.drain();
      },
    },
  });
  const clientWriter = new Writer(client);
  return timed("bun", "Bun unix socket, one process (baseline)", {
    roundTrip(msg) {
      return new Promise<void>((resolve) => {
        echoing = true;
        serverWants = msg.length;
        serverCount = 0;
        serverDone = () => {};
        clientWants = msg.length;
        clientCount = 0;
        clientDone = resolve;
        clientWriter.write(msg);
      });
    },
    stream(msg, count) {
      return new Promise<void>((resolve) => {
        echoing = false;
        serverWants = msg.length * count;
        serverCount = 0;
        serverDone = resolve;
        for (let i = 0; i < count; i++) clientWriter.write(msg);
      });
    },
    async close() {
      client.end();
      listener.stop(true);
    },
  });
}

export async function benchComms(o: CommsOptions): Promise<Benchmark[]> {
  const peer = buildPeer(o.work);
  const channels = [commsPair(), commsToC(peer), cToC(peer), rawSync(), await bunSocket(o.work)];
  const sizes = [
    { name: "1 KiB", id: "1k", msg: new Uint8Array(KiB).fill(0x5a), trips: o.roundTrips.small, streamed: o.streamed.small },
    { name: "1 MiB", id: "1m", msg: new Uint8Array(MiB).fill(0x5a), trips: o.roundTrips.large, streamed: o.streamed.large },
  ];
  const rtt = new Map<string, number[]>();
  const mbps = new Map<string, number[]>();
  const add = (m: Map<string, number[]>, key: string, v: number[]) => m.set(key, [...(m.get(key) ?? []), ...v]);
  try {
    // Warm-up: JIT-compiled paths and a steady heap before anything counts.
    for (const c of channels) {
      for (const s of sizes) {
        await c.roundTrips(s.msg, s.trips);
        await c.throughput(s.msg, s.streamed);
      }
    }
    o.log(`comms: ${o.rounds} rounds × ${channels.length} channels × ${sizes.length} sizes`);
    for (let round = 0; round < o.rounds; round++) {
      const shift = round % channels.length;
      for (const c of [...channels.slice(shift), ...channels.slice(0, shift)]) {
        for (const s of sizes) {
          add(rtt, `${c.key}:${s.id}`, await c.roundTrips(s.msg, s.trips));
          add(mbps, `${c.key}:${s.id}`, [await c.throughput(s.msg, s.streamed)]);
        }
      }
    }
  } finally {
    for (const c of channels) await c.close();
  }

  const stat = (m: Map<string, number[]>, key: string, id: string) => summarize(m.get(`${key}:${id}`)!);
  const note =
    "C ↔ C: the C client on both ends, forked (it times itself); raw: the same sendmsg/recvmsg calls as Comms " +
    "in a synchronous loop on this thread (the floor); Bun: Bun.listen/Bun.connect on a unix socket";
  return sizes.flatMap((s): Benchmark[] => {
    const r = (k: string) => stat(rtt, k, s.id);
    const t = (k: string) => stat(mbps, k, s.id);
    return [
      {
        id: `comms.rtt.${s.id}`,
        title: `Comms round trip of ${s.name} (send, echo back), ${s.trips} per round`,
        measurements: channels.map((c): Measurement => ({ label: c.label, unit: "µs", stat: r(c.key) })),
        derived: [
          { label: "ratio Comms ↔ Comms / raw, medians", value: r("pair").median / r("raw").median },
          { label: "ratio Comms ↔ Comms / Bun socket, medians", value: r("pair").median / r("bun").median },
          { label: "ratio Comms ↔ C / C ↔ C, medians", value: r("c").median / r("cc").median },
        ],
        notes: [note],
      },
      {
        id: `comms.mbps.${s.id}`,
        title: `Comms throughput, ${s.streamed} messages of ${s.name} one way`,
        measurements: channels.map((c): Measurement => ({ label: c.label, unit: "MB/s", stat: t(c.key) })),
        derived: [
          { label: "ratio Comms ↔ Comms / raw, medians", value: t("pair").median / t("raw").median },
          { label: "ratio Comms ↔ Comms / Bun socket, medians", value: t("pair").median / t("bun").median },
          { label: "ratio Comms → C / C → C, medians", value: t("c").median / t("cc").median },
        ],
        notes: ["MB = 10^6 bytes of payload; one sample per round"],
      },
    ];
  });
}
