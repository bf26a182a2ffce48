/**
 * SharedBuffer: a memfd mapped MAP_SHARED by the host and by a sandboxee (C
 * client and TypeScript client), the fd passed over comms with SCM_RIGHTS.
 * Writes on either side are seen on the other through the mapping. Seals
 * (F_SEAL_SHRINK) keep a peer from truncating a file the host has mapped,
 * which would turn the host's next access into SIGBUS.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fstatSync, ftruncateSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { CommsError, SharedBuffer } from "../../src/comms/index.ts";
import { MFD_ALLOW_SEALING, MFD_CLOEXEC, libc } from "../../src/comms/libc.ts";
import { socketpair } from "../../src/native/comms.ts";
import { closeFd } from "../../src/native/sys.ts";
import { buildCPeer, cPeer, tsPeer } from "./peers.ts";

const SLOW = 30_000;
let bin = "";
beforeAll(() => {
  bin = buildCPeer();
});
afterAll(() => rmSync(dirname(bin), { recursive: true, force: true }));

function pattern(size: number): Uint8Array {
  return new Uint8Array(size).map((_, i) => (i * 31 + 7) & 255);
}

function sum(bytes: Uint8Array): number {
  let s = 0;
  for (const b of bytes) s += b;
  return s;
}

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

describe("SharedBuffer", () => {
  test("create: zero-filled, the size asked, and sealed against resizing", () => {
    const buf = SharedBuffer.create(10_000);
    expect(buf.size).toBe(10_000);
    expect(buf.bytes.length).toBe(10_000);
    expect(buf.bytes.every((b) => b === 0)).toBe(true);
    expect(() => ftruncateSync(buf.fd, 10)).toThrow(/EPERM/);
    expect(() => ftruncateSync(buf.fd, 20_000)).toThrow(/EPERM/);
    buf.close();
  });

  test("close() detaches every view, so a late access cannot fault", () => {
    const buf = SharedBuffer.create(4096);
    const view = buf.bytes.subarray(100, 200);
    view[0] = 1;
    const fd = buf.fd;
    buf.close();
    expect(buf.isClosed).toBe(true);
    expect(buf.bytes.length).toBe(0);
    expect(view.length).toBe(0);
    expect(buf.bytes[0]).toBeUndefined();
    expect(isOpen(fd)).toBe(false);
    buf.close();
  });

  test("fromFd seals a memfd that still allows it, so the sender cannot shrink it any more", () => {
    const fd = libc().memfd_create(new TextEncoder().encode("t\0"), MFD_CLOEXEC | MFD_ALLOW_SEALING);
    expect(fd).toBeGreaterThanOrEqual(0);
    ftruncateSync(fd, 8192);
    const buf = SharedBuffer.fromFd(fd);
    expect(buf.size).toBe(8192);
    expect(() => ftruncateSync(buf.fd, 0)).toThrow(/EPERM/);
    buf.close();
  });

  test("fromFd refuses files that could shrink under the mapping, and closes them", () => {
    const dir = mkdtempSync(join(tmpdir(), "bunbox-buf-"));
    const file = openSync(join(dir, "f"), "w+");
    ftruncateSync(file, 4096);
    expect(() => SharedBuffer.fromFd(file)).toThrow(/cannot be shared safely: .*\(a mapping whose file shrinks faults with SIGBUS\)/);
    expect(isOpen(file)).toBe(false);
    rmSync(dir, { recursive: true });

    const noSeals = libc().memfd_create(new TextEncoder().encode("t\0"), MFD_CLOEXEC);
    ftruncateSync(noSeals, 4096);
    expect(() => SharedBuffer.fromFd(noSeals)).toThrow("it can shrink and its seals are closed");

    const pair = socketpair() as [number, number];
    let e: unknown;
    try {
      SharedBuffer.fromFd(pair[0]);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(CommsError);
    expect((e as CommsError).message).toContain("it is not a regular file");
    closeFd(pair[1]);
  });

  test("fromFd honours maxSize", () => {
    const a = SharedBuffer.create(1 << 20);
    const dup = openSync(`/proc/self/fd/${a.fd}`, "r+");
    expect(() => SharedBuffer.fromFd(dup, { maxSize: 4096 })).toThrow("is 1048576 bytes, over maxSize 4096");
    a.close();
  });
});

describe("shared with the C client", () => {
  test("the host's writes are in the C client's mapping, and the C client's in the host's", async () => {
    const peer = cPeer(bin, "buffer-from-host");
    const buf = SharedBuffer.create(1 << 20);
    buf.bytes.set(pattern(buf.size));
    await peer.comms.sendFd(buf.fd);
    expect(await peer.comms.recvUint64()).toBe(BigInt(buf.size));
    expect(await peer.comms.recvUint64()).toBe(BigInt(sum(pattern(buf.size))));
    expect(await peer.comms.recvBool()).toBe(true);
    expect(new TextDecoder().decode(buf.bytes.subarray(0, 10))).toBe("C was here");
    buf.close();
    peer.comms.close();
    expect((await peer.done()).code).toBe(0);
  }, SLOW);

  test("a buffer the C client made is mapped by the host (it came sealed)", async () => {
    const peer = cPeer(bin, "buffer-to-host");
    const buf = SharedBuffer.fromFd(await peer.comms.recvFd());
    expect(buf.size).toBe(8192);
    expect(new TextDecoder().decode(buf.bytes.subarray(0, 9))).toBe("made in C");
    buf.bytes.set(new TextEncoder().encode("host wrote this\0"), 4096);
    await peer.comms.sendBool(true);
    expect(await peer.comms.recvString()).toBe("host wrote this");
    buf.close();
    peer.comms.close();
    expect((await peer.done()).code).toBe(0);
  }, SLOW);
});

describe("shared with the TypeScript client", () => {
  test("the host's writes are in the client's mapping, and the client's in the host's", async () => {
    const peer = tsPeer("buffer-from-host");
    const buf = SharedBuffer.create(64 * 1024);
    buf.bytes.set(pattern(buf.size));
    await peer.comms.sendFd(buf.fd);
    expect(await peer.comms.recvUint64()).toBe(BigInt(buf.size));
    expect(await peer.comms.recvUint64()).toBe(BigInt(sum(pattern(buf.size))));
    expect(await peer.comms.recvBool()).toBe(true);
    expect(new TextDecoder().decode(buf.bytes.subarray(0, 11))).toBe("TS was here");
    buf.close();
    peer.comms.close();
    expect((await peer.done()).code).toBe(0);
  }, SLOW);

  test("a buffer the client made is mapped by the host", async () => {
    const peer = tsPeer("buffer-to-host");
    const buf = SharedBuffer.fromFd(await peer.comms.recvFd());
    expect(new TextDecoder().decode(buf.bytes.subarray(0, 10))).toBe("made in TS");
    expect(() => ftruncateSync(buf.fd, 0)).toThrow(/EPERM/);
    buf.bytes.set(new TextEncoder().encode("hello client\0"), 4096);
    await peer.comms.sendBool(true);
    expect(await peer.comms.recvString()).toBe("hello client");
    buf.close();
    peer.comms.close();
    expect((await peer.done()).code).toBe(0);
  }, SLOW);
});
