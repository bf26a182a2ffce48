/**
 * Comms between two host ends of an AF_UNIX SOCK_STREAM socketpair: every
 * message type both ways, fds as SCM_RIGHTS (installed O_CLOEXEC through
 * MSG_CMSG_CLOEXEC), SO_PEERCRED, the size limit, time limits over the
 * reactor's one-shot epoll watches, and how the channel breaks.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { fstatSync, readFileSync, readSync, readdirSync, writeSync } from "node:fs";
import { Comms, CommsError, type Message } from "../../src/comms/index.ts";
import { encodeHeader, TAG } from "../../src/comms/wire.ts";
import { sendFrame, socketpair } from "../../src/native/comms.ts";
import { openWatches } from "../../src/native/reactor.ts";
import { closeFd } from "../../src/native/sys.ts";

const SLOW = 30_000;
const open: Comms[] = [];
function pair(options?: ConstructorParameters<typeof Comms>[1]): [Comms, Comms] {
  const p = Comms.pair(options);
  open.push(...p);
  return p;
}

afterEach(() => {
  for (const c of open.splice(0)) c.close();
  expect(openWatches()).toBe(0);
});

async function rejection(p: Promise<unknown>): Promise<CommsError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(CommsError);
    return e as CommsError;
  }
  throw new Error("expected the call to fail");
}

function rawPair(): [number, number] {
  const r = socketpair();
  if (typeof r === "number") throw new Error(`socketpair: ${r}`);
  return r;
}

function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

/** One value per type, at the edges of each range. */
const VALUES: [string, (c: Comms) => Promise<void>, (c: Comms) => Promise<unknown>, unknown][] = [
  ["bool true", (c) => c.sendBool(true), (c) => c.recvBool(), true],
  ["bool false", (c) => c.sendBool(false), (c) => c.recvBool(), false],
  ["int8 min", (c) => c.sendInt8(-128), (c) => c.recvInt8(), -128],
  ["int8 max", (c) => c.sendInt8(127), (c) => c.recvInt8(), 127],
  ["int16 min", (c) => c.sendInt16(-32768), (c) => c.recvInt16(), -32768],
  ["int32 min", (c) => c.sendInt32(-(2 ** 31)), (c) => c.recvInt32(), -(2 ** 31)],
  ["int32 max", (c) => c.sendInt32(2 ** 31 - 1), (c) => c.recvInt32(), 2 ** 31 - 1],
  ["int64 min", (c) => c.sendInt64(-(1n << 63n)), (c) => c.recvInt64(), -(1n << 63n)],
  ["int64 max", (c) => c.sendInt64((1n << 63n) - 1n), (c) => c.recvInt64(), (1n << 63n) - 1n],
  ["int64 from a number", (c) => c.sendInt64(-5), (c) => c.recvInt64(), -5n],
  ["uint8 max", (c) => c.sendUint8(255), (c) => c.recvUint8(), 255],
  ["uint16 max", (c) => c.sendUint16(65535), (c) => c.recvUint16(), 65535],
  ["uint32 max", (c) => c.sendUint32(2 ** 32 - 1), (c) => c.recvUint32(), 2 ** 32 - 1],
  ["uint64 max", (c) => c.sendUint64((1n << 64n) - 1n), (c) => c.recvUint64(), (1n << 64n) - 1n],
  ["string", (c) => c.sendString("héllo, 世界 🧪"), (c) => c.recvString(), "héllo, 世界 🧪"],
  ["empty string", (c) => c.sendString(""), (c) => c.recvString(), ""],
  ["bytes", (c) => c.sendBytes(Uint8Array.of(0, 255, 1, 0)), (c) => c.recvBytes(), Uint8Array.of(0, 255, 1, 0)],
  ["empty bytes", (c) => c.sendBytes(new Uint8Array(0)), (c) => c.recvBytes(), new Uint8Array(0)],
  ["json", (c) => c.sendJson({ a: [1, "two", null], b: { c: true } }), (c) => c.recvJson(), { a: [1, "two", null], b: { c: true } }],
  ["tagged", (c) => c.sendTagged(0x8000_0001, Uint8Array.of(9, 8)), (c) => c.recvTagged(0x8000_0001), { tag: 0x8000_0001, value: Uint8Array.of(9, 8) }],
  ["tagged max", (c) => c.sendTagged(0xffff_ffff, Uint8Array.of()), (c) => c.recvTagged(), { tag: 0xffff_ffff, value: Uint8Array.of() }],
];

describe("every message type round-trips", () => {
  for (const [name, send, recv, value] of VALUES) {
    test(`${name}, both ways`, async () => {
      const [a, b] = pair();
      const [, got] = await Promise.all([send(a), recv(b)]);
      expect(got).toEqual(value);
      const [, back] = await Promise.all([send(b), recv(a)]);
      expect(back).toEqual(value);
    });
  }

  test("recv() returns any message with its kind and tag", async () => {
    const [a, b] = pair();
    await a.sendUint16(7);
    await a.sendJson([1]);
    await a.sendTagged(0x9000_0000, Uint8Array.of(1));
    const kinds: Message[] = [await b.recv(), await b.recv(), await b.recv()];
    expect(kinds.map((m) => [m.kind, m.tag])).toEqual([["uint16", TAG.UINT16], ["json", TAG.JSON], ["user", 0x9000_0000]]);
    expect(kinds.map((m) => m.value)).toEqual([7, [1], Uint8Array.of(1)]);
  });

  test("out-of-range values and bad user tags are refused before sending, and the channel stays usable", async () => {
    const [a, b] = pair();
    expect((await rejection(a.sendUint8(256))).message).toBe("sendUint8: 256 is not an integer in 0..255");
    expect((await rejection(a.sendInt32(Number.NaN))).code).toBe("argument");
    expect((await rejection(a.sendTagged(TAG.STRING, Uint8Array.of()))).message).toContain("is not a user tag");
    expect((await rejection(a.sendJson(undefined))).message).toBe("sendJson: undefined has no JSON form");
    expect((await rejection(a.sendFds([]))).message).toContain("1 to 16 fds");
    await a.sendInt8(1);
    expect(await b.recvInt8()).toBe(1);
  });
});

describe("ordering", () => {
  test("concurrent sends never interleave and receives get frames in order", async () => {
    const [a, b] = pair();
    const big = new Uint8Array(3 << 20).fill(7);
    const sends = [a.sendBytes(big), a.sendString("after"), a.sendBytes(big), a.sendInt32(3)];
    const recvs = [b.recvBytes(), b.recvString(), b.recvBytes(), b.recvInt32()];
    await Promise.all(sends);
    const [x, s, y, n] = await Promise.all(recvs);
    expect((x as Uint8Array).length).toBe(3 << 20);
    expect(s).toBe("after");
    expect((y as Uint8Array).every((v) => v === 7)).toBe(true);
    expect(n).toBe(3);
  }, SLOW);

  test("a burst of small messages", async () => {
    const [a, b] = pair();
    const n = 5000;
    const got = (async () => {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += await b.recvInt32();
      return sum;
    })();
    for (let i = 0; i < n; i++) void a.sendInt32(i);
    expect(await got).toBe((n * (n - 1)) / 2);
  });
});

describe("fd passing (SCM_RIGHTS)", () => {
  test("a socket end sent over works on the other side, and arrives O_CLOEXEC", async () => {
    const [a, b] = pair();
    const [x, y] = rawPair();
    const inode = fstatSync(y).ino;
    await a.sendFd(y);
    closeFd(y);
    const got = await b.recvFd();
    expect(fstatSync(got).ino).toBe(inode);
    const flags = /flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${got}`, "utf8"))![1]!;
    expect(parseInt(flags, 8) & 0o2000000).toBe(0o2000000);
    writeSync(got, "through the passed fd");
    const buf = new Uint8Array(64);
    const n = readSync(x, buf);
    expect(new TextDecoder().decode(buf.subarray(0, n))).toBe("through the passed fd");
    closeFd(got);
    closeFd(x);
  });

  test("several FD frames queued between other frames each keep their own fds", async () => {
    const [a, b] = pair();
    const [x, y] = rawPair();
    // All queued before the first read: one recvmsg could take them all.
    void a.sendInt32(1);
    void a.sendFd(x);
    void a.sendString("mid");
    void a.sendFds([y, x]);
    await a.sendInt32(2);
    expect(await b.recvInt32()).toBe(1);
    const f1 = await b.recvFd();
    expect(await b.recvString()).toBe("mid");
    const f2 = await b.recvFds();
    expect(f2.length).toBe(2);
    expect(await b.recvInt32()).toBe(2);
    // f1 and f2[1] are x, f2[0] is y: write at one end, read at the other.
    writeSync(f2[0]!, "y->x");
    const buf = new Uint8Array(8);
    expect(new TextDecoder().decode(buf.subarray(0, readSync(f1, buf)))).toBe("y->x");
    for (const fd of [x, y, f1, ...f2]) closeFd(fd);
  });

  test("recvFd refuses an FD frame of two fds, and closes them", async () => {
    const [a, b] = pair();
    const [x, y] = rawPair();
    const before = openFds();
    await a.sendFds([x, y]);
    const e = await rejection(b.recvFd());
    expect(e.message).toBe("recvFd: expected 1 fd, got an FD frame with 2");
    expect(openFds()).toBe(before);
    closeFd(x);
    closeFd(y);
  });

  test("fds on a non-FD frame, or fewer than announced: protocol error, the fds closed", async () => {
    for (const [head, body, fdsOf] of [
      [encodeHeader(TAG.STRING, 2), Uint8Array.of(104, 105), 1],
      [encodeHeader(TAG.FD, 4), Uint8Array.of(2, 0, 0, 0), 1],
    ] as const) {
      const [x, y] = rawPair();
      const b = new Comms(y);
      open.push(b);
      const [p, q] = rawPair();
      const before = openFds();
      expect(sendFrame(x, head, body, 0, Int32Array.from(fdsOf === 1 ? [p] : [p, q]))).toBe(head.length + body.length);
      const e = await rejection(b.recv({ timeoutMs: 5000 }));
      expect(e.code).toBe("protocol");
      expect(e.message).toMatch(/1 fd\(s\) arrived with a STRING frame|FD frame announces 2 fd\(s\) but 1 arrived/);
      expect(openFds()).toBe(before);
      for (const fd of [x, p, q]) closeFd(fd);
    }
  });
});

describe("sizes", () => {
  test("1 MiB both ways", async () => {
    const [a, b] = pair();
    const m = new Uint8Array(1 << 20).map((_, i) => (i * 7) & 255);
    const [, got] = await Promise.all([a.sendBytes(m), b.recvBytes()]);
    expect(got).toEqual(m);
    const [, back] = await Promise.all([b.sendBytes(got), a.recvBytes()]);
    expect(back).toEqual(m);
  }, SLOW);

  test("exactly the 64 MiB limit passes; one byte more is refused by the sender", async () => {
    const [a, b] = pair();
    const m = new Uint8Array(64 << 20);
    m[0] = 1;
    m[m.length - 1] = 2;
    const [, got] = await Promise.all([a.sendBytes(m), b.recvBytes()]);
    expect(got.length).toBe(64 << 20);
    expect([got[0], got[got.length - 1]]).toEqual([1, 2]);
    const e = await rejection(a.sendBytes(new Uint8Array((64 << 20) + 1)));
    expect(e.code).toBe("argument");
    expect(e.message).toBe("sendBytes: 67108865 bytes is over the message size limit of 67108864 bytes");
    expect(a.isBroken).toBe(false);
  }, SLOW);

  test("the receiver's own limit: a larger frame is a protocol error and breaks the channel", async () => {
    const [x, y] = rawPair();
    const big = new Comms(x);
    const small = new Comms(y, { maxMessageSize: 1024 });
    open.push(big, small);
    await big.sendString("x".repeat(2000));
    const e = await rejection(small.recvString());
    expect(e.code).toBe("protocol");
    expect(e.message).toBe("STRING frame of 2000 bytes is over the message size limit of 1024 bytes");
    const later = await rejection(small.recvString());
    expect(later.code).toBe("broken");
    expect(later.message).toContain("the channel is broken: STRING frame of 2000 bytes");
    expect(later.cause).toBe(e);
  });
});

describe("time limits", () => {
  test("a receive times out, and the channel stays usable", async () => {
    const [a, b] = pair();
    const t = performance.now();
    const e = await rejection(b.recvInt32({ timeoutMs: 100 }));
    expect(performance.now() - t).toBeGreaterThanOrEqual(90);
    expect(e.code).toBe("timeout");
    expect(e.message).toBe("recvInt32: no message within 100 ms");
    expect(b.isBroken).toBe(false);
    await a.sendInt32(5);
    expect(await b.recvInt32()).toBe(5);
  });

  test("a timeout half-way through a frame keeps the half for the next receive", async () => {
    const [x, y] = rawPair();
    const b = new Comms(y);
    open.push(b);
    const body = new TextEncoder().encode("0123456789");
    sendFrame(x, encodeHeader(TAG.STRING, 10), body.subarray(0, 4), 0, null);
    const e = await rejection(b.recvString({ timeoutMs: 100 }));
    expect(e.message).toBe("recvString: no message within 100 ms (4 of 10 payload bytes of a STRING frame arrived)");
    sendFrame(x, new Uint8Array(0), body.subarray(4), 0, null);
    expect(await b.recvString()).toBe("0123456789");
    closeFd(x);
  });

  test("the Comms's default limit applies, Infinity waits until the message comes", async () => {
    const [a, b] = pair({ timeoutMs: 50 });
    expect((await rejection(b.recvBool())).message).toBe("recvBool: no message within 50 ms");
    const late = b.recvBool({ timeoutMs: Infinity });
    await Bun.sleep(120);
    await a.sendBool(true);
    expect(await late).toBe(true);
  });

  test("a send the peer never takes times out and breaks the channel (half a frame is out)", async () => {
    const [a] = pair();
    const e = await rejection(a.sendBytes(new Uint8Array(16 << 20), { timeoutMs: 200 }));
    expect(e.code).toBe("timeout");
    expect(e.message).toMatch(/sendBytes: the peer did not take the message within 200 ms \(\d+ of 16777224 bytes sent\)/);
    expect(a.isBroken).toBe(true);
  });
});

describe("how the channel ends", () => {
  test("a frame of another type: a type error, and the channel is broken", async () => {
    const [a, b] = pair();
    await a.sendString("hello");
    const e = await rejection(b.recvInt32());
    expect(e.code).toBe("type");
    expect(e.message).toBe("recvInt32: expected INT32, got STRING (5 bytes)");
    expect((await rejection(b.recvString())).code).toBe("broken");
  });

  test("the peer closing: pending and later receives fail with eof, sends too", async () => {
    const [a, b] = pair();
    const pending = b.recvInt32();
    a.close();
    const e = await rejection(pending);
    expect(e.code).toBe("eof");
    expect(e.message).toBe("the peer closed the channel");
    const [c, d] = pair();
    d.close();
    const s = await rejection(c.sendInt32(1));
    expect(s.code).toBe("eof");
    expect(s.message).toContain("sendInt32: the peer closed the channel (EPIPE");
  });

  test("close() fails pending calls with closed, and later calls too", async () => {
    const [, b] = pair();
    const pending = b.recvJson();
    b.close();
    expect((await rejection(pending)).code).toBe("closed");
    expect((await rejection(b.sendBool(true))).message).toBe("sendBool: the channel was closed");
    expect(() => b.peerCredentials()).toThrow("the channel was closed");
  });

  test("an idle Comms holds no reactor watch", async () => {
    const [a, b] = pair();
    const p = b.recvInt8();
    expect(openWatches()).toBe(1);
    await a.sendInt8(1);
    await p;
    expect(openWatches()).toBe(0);
  });
});

describe("peer credentials (SO_PEERCRED)", () => {
  test("a socketpair names the process that made it", () => {
    const [a, b] = pair();
    for (const c of [a, b]) {
      expect(c.peerCredentials()).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
    }
  });
});
