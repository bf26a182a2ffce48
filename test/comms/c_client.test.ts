/**
 * The host (Comms) against the C client library (csrc/client/, built into
 * test/fixtures/comms_peer.c) over a socketpair whose other end the child
 * holds as fd 3: every type both ways, large frames, SCM_RIGHTS fds both
 * ways, SO_PEERCRED, and malformed frames in each direction reported as
 * errors, never a crash or a hang.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fstatSync, readSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { Comms, CommsError, type CommsErrorCode } from "../../src/comms/index.ts";
import { TAG, encodeHeader } from "../../src/comms/wire.ts";
import { sendFrame, socketpair } from "../../src/native/comms.ts";
import { openWatches } from "../../src/native/reactor.ts";
import { closeFd } from "../../src/native/sys.ts";
import { buildCPeer, cPeer } from "./peers.ts";

const SLOW = 30_000;
let bin = "";
beforeAll(() => {
  bin = buildCPeer();
});
afterAll(() => rmSync(dirname(bin), { recursive: true, force: true }));

function rawPair(): [number, number] {
  const r = socketpair();
  if (typeof r === "number") throw new Error(`socketpair: ${r}`);
  return r;
}

async function rejection(p: Promise<unknown>): Promise<CommsError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(CommsError);
    return e as CommsError;
  }
  throw new Error("expected the call to fail");
}

/** Type name for the peer, then a send and a receive of that type. */
const TYPED: [string, (c: Comms) => Promise<void>, (c: Comms) => Promise<unknown>, unknown][] = [
  ["bool", (c) => c.sendBool(true), (c) => c.recvBool(), true],
  ["int8", (c) => c.sendInt8(-128), (c) => c.recvInt8(), -128],
  ["int16", (c) => c.sendInt16(-12345), (c) => c.recvInt16(), -12345],
  ["int32", (c) => c.sendInt32(-(2 ** 31)), (c) => c.recvInt32(), -(2 ** 31)],
  ["int64", (c) => c.sendInt64(-(1n << 63n)), (c) => c.recvInt64(), -(1n << 63n)],
  ["uint8", (c) => c.sendUint8(255), (c) => c.recvUint8(), 255],
  ["uint16", (c) => c.sendUint16(65535), (c) => c.recvUint16(), 65535],
  ["uint32", (c) => c.sendUint32(2 ** 32 - 1), (c) => c.recvUint32(), 2 ** 32 - 1],
  ["uint64", (c) => c.sendUint64((1n << 64n) - 1n), (c) => c.recvUint64(), (1n << 64n) - 1n],
  ["string", (c) => c.sendString("héllo from the host ✓"), (c) => c.recvString(), "héllo from the host ✓"],
  ["bytes", (c) => c.sendBytes(Uint8Array.of(0, 1, 0, 255)), (c) => c.recvBytes(), Uint8Array.of(0, 1, 0, 255)],
  ["json", (c) => c.sendJson({ n: 1, s: ["x"] }), (c) => c.recvJson(), { n: 1, s: ["x"] }],
  ["tagged", (c) => c.sendTagged(0x8000_00aa, Uint8Array.of(5)), (c) => c.recvTagged(0x8000_00aa), { tag: 0x8000_00aa, value: Uint8Array.of(5) }],
];

describe("host <-> C client", () => {
  test("every type goes to the C client and comes back through its typed calls", async () => {
    const peer = cPeer(bin, "typed");
    for (const [type, send, recv, value] of TYPED) {
      await peer.comms.sendString(type);
      await send(peer.comms);
      expect(await recv(peer.comms)).toEqual(value);
    }
    const [x, y] = rawPair();
    await peer.comms.sendString("fd");
    await peer.comms.sendFd(y);
    const back = await peer.comms.recvFd();
    expect(fstatSync(back).ino).toBe(fstatSync(y).ino);
    for (const fd of [x, y, back]) closeFd(fd);
    peer.comms.close();
    const r = await peer.done();
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  }, SLOW);

  test("1 MiB and 64 MiB (the limit) frames, user tags and two fds echo back", async () => {
    const peer = cPeer(bin, "echo");
    const c = peer.comms;
    const mib = new Uint8Array(1 << 20).map((_, i) => i % 253);
    await c.sendBytes(mib);
    expect(await c.recvBytes()).toEqual(mib);
    const max = new Uint8Array(64 << 20);
    max[12345] = 42;
    const [, got] = await Promise.all([c.sendBytes(max), c.recvBytes()]);
    expect(got.length).toBe(64 << 20);
    expect(got[12345]).toBe(42);
    await c.sendTagged(0xfeed_0000, new TextEncoder().encode("tagged"));
    expect(await c.recvTagged()).toEqual({ tag: 0xfeed_0000, value: new TextEncoder().encode("tagged") });
    const [x, y] = rawPair();
    await c.sendFds([x, y]);
    const fds = await c.recvFds();
    expect(fds.map((fd) => fstatSync(fd).ino)).toEqual([fstatSync(x).ino, fstatSync(y).ino]);
    for (const fd of [x, y, ...fds]) closeFd(fd);
    c.close();
    expect((await peer.done()).code).toBe(0);
  }, SLOW);

  test("a pipe's write end from the host: the C client writes through it", async () => {
    const peer = cPeer(bin, "fd-write");
    const [r, w] = rawPair();
    await peer.comms.sendFd(w);
    closeFd(w);
    expect(await peer.comms.recvBool()).toBe(true);
    const buf = new Uint8Array(100);
    expect(new TextDecoder().decode(buf.subarray(0, readSync(r, buf)))).toBe("written by the C client\n");
    closeFd(r);
    peer.comms.close();
    expect((await peer.done()).code).toBe(0);
  });

  test("a pipe's write end from the C client: the host writes through it", async () => {
    const peer = cPeer(bin, "pipe-to-host");
    const w = await peer.comms.recvFd();
    writeSync(w, "written by the host");
    closeFd(w);
    await peer.comms.sendBool(true);
    expect(await peer.comms.recvString()).toBe("written by the host");
    peer.comms.close();
    expect((await peer.done()).code).toBe(0);
  });

  test("peer credentials: the host's socketpair names the host; the child's own socketpair names the child", async () => {
    const peer = cPeer(bin, "peercred");
    const c = peer.comms;
    const creds = [await c.recvInt32(), await c.recvUint32(), await c.recvUint32()];
    expect(creds).toEqual([process.pid, process.getuid!(), process.getgid!()]);
    expect(await c.recvInt32()).toBe(peer.proc.pid);
    c.close();
    expect((await peer.done()).code).toBe(0);

    const p2 = cPeer(bin, "peercred-pair");
    const theirs = new Comms(await p2.comms.recvFd());
    expect(theirs.peerCredentials()).toEqual({ pid: p2.proc.pid, uid: process.getuid!(), gid: process.getgid!() });
    expect(await theirs.recvInt32()).toBe(p2.proc.pid);
    theirs.close();
    p2.comms.close();
    expect((await p2.done()).code).toBe(0);
  });

  test("time limits: the host's receive from a silent client, and the client's own", async () => {
    const silent = cPeer(bin, "silent");
    const e = await rejection(silent.comms.recvInt64({ timeoutMs: 150 }));
    expect(e.code).toBe("timeout");
    silent.comms.close();
    expect((await silent.done()).code).toBe(0);

    const peer = cPeer(bin, "recv-timeout");
    expect(await peer.comms.recvString()).toBe("still here");
    peer.comms.close();
    const r = await peer.done();
    expect(r.stdout).toBe("status -3 broken 0: recv_int32: no message within 200 ms\n");
    expect(openWatches()).toBe(0);
  });
});

describe("malformed frames from the C client are CommsErrors, promptly", () => {
  const CASES: [mode: string, code: CommsErrorCode, message: string][] = [
    ["bad-tag", "protocol", "unknown tag 99 (0x63) in a frame header"],
    ["truncated", "protocol", "the peer closed the channel in the middle of a frame (10 of 100 payload bytes of a STRING frame arrived)"],
    ["truncated-header", "protocol", "the peer closed the channel in the middle of a frame (3 of 8 header bytes arrived)"],
    ["oversize", "protocol", "BYTES frame of 4294967280 bytes is over the message size limit of 67108864 bytes"],
    ["short-fixed", "protocol", "INT32 frame with a 2-byte payload (INT32 is exactly 4 bytes)"],
    ["bad-bool", "protocol", "BOOL frame holds 7, not 0 or 1"],
    ["fd-mismatch", "protocol", "FD frame announces 2 fd(s) but 1 arrived with it"],
    ["fd-stray", "protocol", "1 fd(s) arrived with a STRING frame (only FD frames carry fds)"],
  ];
  for (const [mode, code, message] of CASES) {
    test(mode, async () => {
      const peer = cPeer(bin, mode);
      // Promptly: a protocol error, not the receive's time limit.
      const e = await rejection(peer.comms.recv({ timeoutMs: 8000 }));
      expect(e.code).toBe(code);
      expect(e.message).toBe(message);
      expect(peer.comms.isBroken).toBe(true);
      peer.comms.close();
      expect((await peer.done()).code).toBe(0);
    });
  }
});

describe("malformed frames from the host are errors in the C client, not crashes", () => {
  /** Raw bytes (and fds) on the host's end, then the host's end closed. */
  async function sendRaw(head: Uint8Array, body: Uint8Array, fds: number[] = []) {
    const peer = cPeer(bin, "recv-one");
    const fd = peer.comms.fd;
    expect(sendFrame(fd, head, body, 0, fds.length ? Int32Array.from(fds) : null)).toBe(head.length + body.length);
    peer.comms.close();
    return peer.done();
  }

  test("unknown tag", async () => {
    const r = await sendRaw(encodeHeader(42, 0), new Uint8Array(0));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("error -4: recv_frame: unknown tag 42 (0x2a) in a frame header\n");
  });

  test("a length over the limit (not allocated)", async () => {
    const r = await sendRaw(encodeHeader(TAG.BYTES, 0xffff_ffff), new Uint8Array(0));
    expect(r.stdout).toBe("error -4: recv_frame: BYTES frame of 4294967295 bytes is over the message size limit of 67108864 bytes\n");
  });

  test("a fixed-size type with the wrong size", async () => {
    const r = await sendRaw(encodeHeader(TAG.UINT64, 3), Uint8Array.of(1, 2, 3));
    expect(r.stdout).toBe("error -4: recv_frame: UINT64 frame with a 3-byte payload (UINT64 is exactly 8 bytes)\n");
  });

  test("a truncated frame, then EOF", async () => {
    const r = await sendRaw(encodeHeader(TAG.STRING, 50), new TextEncoder().encode("short"));
    expect(r.stdout).toBe("error -4: recv_frame: the host closed the channel in the middle of a frame (13 bytes of it arrived)\n");
  });

  test("an FD frame announcing more fds than came", async () => {
    const [x, y] = rawPair();
    const r = await sendRaw(encodeHeader(TAG.FD, 4), Uint8Array.of(3, 0, 0, 0), [x, y]);
    expect(r.stdout).toBe("error -4: recv_frame: FD frame announces 3 fd(s) but 2 arrived with it\n");
    closeFd(x);
    closeFd(y);
  });

  test("fds with a frame that is not FD", async () => {
    const [x, y] = rawPair();
    const r = await sendRaw(encodeHeader(TAG.INT8, 1), Uint8Array.of(1), [x]);
    expect(r.stdout).toBe("error -4: recv_frame: 1 fd(s) arrived with a INT8 frame (only FD frames carry fds)\n");
    closeFd(x);
    closeFd(y);
  });

  test("a well-formed frame is received (the harness itself works)", async () => {
    const r = await sendRaw(encodeHeader(TAG.STRING, 2), Uint8Array.of(104, 105));
    expect(r.stdout).toBe("ok tag 10, 2 bytes, 0 fds\n");
    expect(r.code).toBe(0);
  });
});
