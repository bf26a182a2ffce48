/**
 * The host (Comms) against the TypeScript client (ClientComms, libc's
 * sendmsg/recvmsg/poll through bun:ffi with hand-built msghdr/cmsghdr, no
 * bunbox shim) in a Bun child that inherits its end of the socketpair as
 * fd 3: every type both ways, SCM_RIGHTS fds, SO_PEERCRED, time limits, and
 * malformed frames from the host.
 */
import { describe, expect, test } from "bun:test";
import { fstatSync, readSync } from "node:fs";
import { type Comms, type Message } from "../../src/comms/index.ts";
import { TAG, encodeHeader } from "../../src/comms/wire.ts";
import { sendFrame, socketpair } from "../../src/native/comms.ts";
import { closeFd } from "../../src/native/sys.ts";
import { tsPeer } from "./peers.ts";

const SLOW = 30_000;

function rawPair(): [number, number] {
  const r = socketpair();
  if (typeof r === "number") throw new Error(`socketpair: ${r}`);
  return r;
}

const TYPED: [string, (c: Comms) => Promise<void>, (c: Comms) => Promise<unknown>, unknown][] = [
  ["bool", (c) => c.sendBool(false), (c) => c.recvBool(), false],
  ["int8", (c) => c.sendInt8(127), (c) => c.recvInt8(), 127],
  ["int16", (c) => c.sendInt16(-32768), (c) => c.recvInt16(), -32768],
  ["int32", (c) => c.sendInt32(2 ** 31 - 1), (c) => c.recvInt32(), 2 ** 31 - 1],
  ["int64", (c) => c.sendInt64((1n << 63n) - 1n), (c) => c.recvInt64(), (1n << 63n) - 1n],
  ["uint8", (c) => c.sendUint8(0), (c) => c.recvUint8(), 0],
  ["uint16", (c) => c.sendUint16(65535), (c) => c.recvUint16(), 65535],
  ["uint32", (c) => c.sendUint32(4_000_000_000), (c) => c.recvUint32(), 4_000_000_000],
  ["uint64", (c) => c.sendUint64((1n << 64n) - 1n), (c) => c.recvUint64(), (1n << 64n) - 1n],
  ["string", (c) => c.sendString("from the host: ünïcödé"), (c) => c.recvString(), "from the host: ünïcödé"],
  ["bytes", (c) => c.sendBytes(Uint8Array.of(255, 0, 7)), (c) => c.recvBytes(), Uint8Array.of(255, 0, 7)],
  ["json", (c) => c.sendJson({ deep: { list: [1, 2, { x: null }] } }), (c) => c.recvJson(), { deep: { list: [1, 2, { x: null }] } }],
  ["tagged", (c) => c.sendTagged(0x8abc_0000, Uint8Array.of(1, 2)), (c) => c.recvTagged(), { tag: 0x8abc_0000, value: Uint8Array.of(1, 2) }],
];

describe("host <-> TypeScript client", () => {
  test("every type through the client's typed calls", async () => {
    const peer = tsPeer("typed");
    for (const [type, send, recv, value] of TYPED) {
      await peer.comms.sendString(type);
      await send(peer.comms);
      expect(await recv(peer.comms)).toEqual(value);
    }
    const [x, y] = rawPair();
    await peer.comms.sendString("fd");
    await peer.comms.sendFd(x);
    const back = await peer.comms.recvFd();
    expect(fstatSync(back).ino).toBe(fstatSync(x).ino);
    for (const fd of [x, y, back]) closeFd(fd);
    peer.comms.close();
    const r = await peer.done();
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  }, SLOW);

  test("generic recv() on the client, large frames and several fds", async () => {
    const peer = tsPeer("echo");
    const c = peer.comms;
    const sent: Promise<void>[] = [c.sendInt64(-3n), c.sendUint8(9), c.sendString("s"), c.sendJson([true])];
    const back: Message[] = [];
    for (let i = 0; i < sent.length; i++) back.push(await c.recv());
    expect(back.map((m) => [m.kind, m.value])).toEqual([["int64", -3n], ["uint8", 9], ["string", "s"], ["json", [true]]]);
    const big = new Uint8Array(8 << 20).map((_, i) => i & 0x7f);
    const [, got] = await Promise.all([c.sendBytes(big), c.recvBytes()]);
    expect(got).toEqual(big);
    const [x, y] = rawPair();
    await c.sendFds([y, x, y]);
    const fds = await c.recvFds();
    expect(fds.map((fd) => fstatSync(fd).ino)).toEqual([y, x, y].map((fd) => fstatSync(fd).ino));
    for (const fd of [x, y, ...fds]) closeFd(fd);
    c.close();
    expect((await peer.done()).code).toBe(0);
  }, SLOW);

  test("a write end from the host: the client writes through it", async () => {
    const peer = tsPeer("fd-write");
    const [r, w] = rawPair();
    await peer.comms.sendFd(w);
    closeFd(w);
    expect(await peer.comms.recvBool()).toBe(true);
    const buf = new Uint8Array(100);
    expect(new TextDecoder().decode(buf.subarray(0, readSync(r, buf)))).toBe("written by the TS client\n");
    closeFd(r);
    peer.comms.close();
    expect((await peer.done()).code).toBe(0);
  }, SLOW);

  test("peer credentials seen from the client: the host made the pair", async () => {
    const peer = tsPeer("peercred");
    const got = await peer.comms.recvJson<{ pid: number; uid: number; gid: number; self: number }>();
    expect(got).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!(), self: peer.proc.pid });
    peer.comms.close();
    expect((await peer.done()).code).toBe(0);
  }, SLOW);

  test("the client's receive times out and the channel stays usable", async () => {
    const peer = tsPeer("recv-timeout");
    expect(await peer.comms.recvString()).toBe("still here");
    peer.comms.close();
    expect((await peer.done()).stdout).toBe("error timeout broken=false\n");
  }, SLOW);
});

describe("malformed frames from the host are CommsErrors in the client", () => {
  async function sendRaw(head: Uint8Array, body: Uint8Array, fds: number[] = []) {
    const peer = tsPeer("recv-one");
    expect(sendFrame(peer.comms.fd, head, body, 0, fds.length ? Int32Array.from(fds) : null)).toBe(head.length + body.length);
    peer.comms.close();
    return peer.done();
  }

  const CASES: [string, Uint8Array, Uint8Array, number, string][] = [
    ["unknown tag", encodeHeader(7777, 0), new Uint8Array(0), 0, "error protocol: unknown tag 7777 (0x1e61) in a frame header"],
    ["over the limit", encodeHeader(TAG.JSON, 0x7000_0000), new Uint8Array(0), 0, "error protocol: JSON frame of 1879048192 bytes is over the message size limit of 67108864 bytes"],
    ["truncated", encodeHeader(TAG.BYTES, 9), Uint8Array.of(1), 0, "error protocol: the peer closed the channel in the middle of a frame (1 of 9 payload bytes of a BYTES frame arrived)"],
    ["fd count mismatch", encodeHeader(TAG.FD, 4), Uint8Array.of(2, 0, 0, 0), 1, "error protocol: FD frame announces 2 fd(s) but 1 arrived with it"],
    ["fds on a STRING", encodeHeader(TAG.STRING, 1), Uint8Array.of(65), 2, "error protocol: 2 fd(s) arrived with a STRING frame (only FD frames carry fds)"],
  ];
  for (const [name, head, body, nfds, line] of CASES) {
    test(name, async () => {
      const [x, y] = rawPair();
      const r = await sendRaw(head, body, [x, y].slice(0, nfds));
      expect(r.stdout).toBe(`${line}\n`);
      expect(r.code).toBe(1);
      closeFd(x);
      closeFd(y);
    }, SLOW);
  }
});
