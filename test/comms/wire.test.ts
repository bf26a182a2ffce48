/**
 * The wire format and the frame reader without a kernel: a scripted
 * Transport plays what each recvmsg returns (bytes, and the SCM_RIGHTS fds
 * that came with them), to pin how frames are cut, checked before
 * allocation, and which frame owns the fds of a recvmsg.
 */
import { describe, expect, test } from "bun:test";
import { CommsError } from "../../src/comms/error.ts";
import { FrameReader, type Transport } from "../../src/comms/reader.ts";
import { TAG, decode, encodeHeader, encodeInt, headerError } from "../../src/comms/wire.ts";

const EAGAIN = 11;

/** Each step is one recvmsg result; then EAGAIN, or EOF when `eof`. */
class Script implements Transport {
  received: number[] = [];
  truncated = false;
  closed: number[] = [];
  constructor(
    private steps: { bytes: Uint8Array; fds?: number[] }[],
    private eof = false,
  ) {}
  recv(into: Uint8Array): number {
    const step = this.steps[0];
    this.received = [];
    if (!step) return this.eof ? 0 : -EAGAIN;
    const n = Math.min(into.length, step.bytes.length);
    into.set(step.bytes.subarray(0, n));
    this.received = step.fds ?? [];
    if (n === step.bytes.length) this.steps.shift();
    else this.steps[0] = { bytes: step.bytes.subarray(n) };
    return n;
  }
  closeFd(fd: number): void {
    this.closed.push(fd);
  }
}

function frame(tag: number, body: Uint8Array | number[] = []): Uint8Array {
  const b = body instanceof Uint8Array ? body : Uint8Array.from(body);
  const out = new Uint8Array(8 + b.length);
  out.set(encodeHeader(tag, b.length));
  out.set(b, 8);
  return out;
}

function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const int32 = (v: number) => frame(TAG.INT32, encodeInt("int32", v, "t"));
const fdFrame = (count: number) => frame(TAG.FD, encodeInt("uint32", count, "t"));
const str = (s: string) => frame(TAG.STRING, new TextEncoder().encode(s));

function reader(t: Transport, max = 1 << 20): FrameReader {
  return new FrameReader(t, max);
}

function protocolError(f: () => unknown): CommsError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CommsError);
    return e as CommsError;
  }
  throw new Error("expected a CommsError");
}

describe("frame headers are checked before anything is allocated", () => {
  test("unknown tags, sizes over the limit, and wrong sizes for fixed-size tags", () => {
    expect(headerError(0, 0, 100)).toContain("unknown tag 0");
    expect(headerError(14, 0, 100)).toContain("unknown tag 14");
    expect(headerError(0x7fffffff, 0, 100)).toContain("unknown tag");
    expect(headerError(0x80000000, 10, 100)).toBeUndefined();
    expect(headerError(TAG.BYTES, 101, 100)).toContain("over the message size limit of 100 bytes");
    expect(headerError(TAG.BYTES, 100, 100)).toBeUndefined();
    expect(headerError(TAG.INT32, 2, 100)).toContain("INT32 is exactly 4 bytes");
    expect(headerError(TAG.FD, 8, 100)).toContain("FD is exactly 4 bytes");
  });

  test("a 4 GiB length is refused from the header alone", () => {
    const t = new Script([{ bytes: encodeHeader(TAG.BYTES, 0xffff_fff0) }]);
    const e = protocolError(() => reader(t, 64 << 20).next());
    expect(e.code).toBe("protocol");
    expect(e.message).toContain("4294967280 bytes is over the message size limit of 67108864 bytes");
  });
});

describe("the reader cuts the stream into frames", () => {
  test("many frames in one recvmsg, and a frame split over many", () => {
    const all = cat(int32(1), str("two"), int32(3));
    const t = new Script([{ bytes: all.subarray(0, 20) }, { bytes: all.subarray(20, 21) }, { bytes: all.subarray(21) }]);
    const r = reader(t);
    const got: unknown[] = [];
    for (let f = r.next(); f; f = r.next()) got.push(decode(f).value);
    expect(got).toEqual([1, "two", 3]);
  });

  test("a frame larger than the read buffer is read into its own array", () => {
    const big = new Uint8Array(300_000).map((_, i) => i % 251);
    const all = frame(TAG.BYTES, big);
    const steps = [];
    for (let off = 0; off < all.length; off += 70_001) steps.push({ bytes: all.subarray(off, off + 70_001) });
    const r = reader(new Script(steps));
    const f = r.next();
    expect(f?.body).toEqual(big);
  });

  test("returns null when the socket has nothing more yet, and resumes", () => {
    const all = str("hello");
    const t = new Script([{ bytes: all.subarray(0, 5) }]);
    const r = reader(t);
    expect(r.next()).toBeNull();
    expect(r.progress()).toBe("5 of 8 header bytes arrived");
    (t as unknown as { steps: unknown[] }).steps.push({ bytes: all.subarray(5) });
    expect(decode(r.next()!).value).toBe("hello");
  });

  test("EOF between frames is an orderly close, EOF inside one a protocol error", () => {
    expect(protocolError(() => reader(new Script([], true)).next()).code).toBe("eof");
    const cut = str("hello").subarray(0, 10);
    const e = protocolError(() => reader(new Script([{ bytes: cut }], true)).next());
    expect(e.code).toBe("protocol");
    expect(e.message).toContain("closed the channel in the middle of a frame (2 of 5 payload bytes of a STRING frame arrived)");
  });
});

describe("which frame owns the fds of a recvmsg", () => {
  test("the last frame that begins in its bytes: an FD frame after other frames", () => {
    const t = new Script([{ bytes: cat(int32(7), str("x"), fdFrame(2)), fds: [40, 41] }]);
    const r = reader(t);
    expect(r.next()?.fds).toEqual([]);
    expect(r.next()?.fds).toEqual([]);
    expect(r.next()?.fds).toEqual([40, 41]);
  });

  test("the tail of an earlier frame may come first in the same recvmsg", () => {
    const a = str("abcdef");
    const t = new Script([{ bytes: a.subarray(0, 9) }, { bytes: cat(a.subarray(9), fdFrame(1)), fds: [50] }]);
    const r = reader(t);
    expect(decode(r.next()!).value).toBe("abcdef");
    expect(r.next()?.fds).toEqual([50]);
  });

  test("an FD frame, then a frame larger than the read buffer", () => {
    const t = new Script([{ bytes: cat(fdFrame(1)), fds: [60] }, { bytes: frame(TAG.BYTES, new Uint8Array(100_000)) }]);
    const r = reader(t);
    expect(r.next()?.fds).toEqual([60]);
    expect(r.next()?.body.length).toBe(100_000);
  });

  test("an FD frame whose count differs from the fds that came: error, fds closed", () => {
    const t = new Script([{ bytes: fdFrame(2), fds: [70] }]);
    const e = protocolError(() => reader(t).next());
    expect(e.message).toBe("FD frame announces 2 fd(s) but 1 arrived with it");
    expect(t.closed).toEqual([70]);
  });

  test("an FD frame with no fds at all", () => {
    const e = protocolError(() => reader(new Script([{ bytes: fdFrame(1) }])).next());
    expect(e.message).toBe("FD frame announces 1 fd(s) but 0 arrived with it");
  });

  test("an FD frame announcing 0 or 17 fds", () => {
    expect(protocolError(() => reader(new Script([{ bytes: fdFrame(0) }])).next()).message).toContain("announces 0 fds");
    expect(protocolError(() => reader(new Script([{ bytes: fdFrame(17), fds: [1] }])).next()).message).toContain("announces 17 fds");
  });

  test("fds with another frame: error, fds closed", () => {
    const t = new Script([{ bytes: str("hi"), fds: [80, 81] }]);
    const e = protocolError(() => reader(t).next());
    expect(e.message).toBe("2 fd(s) arrived with a STRING frame (only FD frames carry fds)");
    expect(t.closed).toEqual([80, 81]);
  });

  test("fds in the middle of a frame (no frame begins in their bytes)", () => {
    const a = str("abcdefgh");
    const t = new Script([{ bytes: a.subarray(0, 10) }, { bytes: a.subarray(10), fds: [90] }]);
    const r = reader(t);
    const e = protocolError(() => r.next());
    expect(e.message).toBe("1 fd(s) arrived in the middle of a frame");
    r.discard();
    expect(t.closed).toEqual([90]);
  });

  test("a recvmsg that lost fds (MSG_CTRUNC) is an error", () => {
    const t = new Script([{ bytes: fdFrame(1), fds: [5] }]);
    t.truncated = true;
    const orig = t.recv.bind(t);
    t.recv = (into) => {
      const n = orig(into);
      t.truncated = true;
      return n;
    };
    expect(protocolError(() => reader(t).next()).message).toContain("more fds in one message");
  });
});

describe("values", () => {
  test("integers are checked against their type's range", () => {
    expect(() => encodeInt("int8", 128, "sendInt8")).toThrow("sendInt8: 128 is not an integer in -128..127");
    expect(() => encodeInt("int8", -129, "sendInt8")).toThrow("-128..127");
    expect(() => encodeInt("uint16", -1, "sendUint16")).toThrow("0..65535");
    expect(() => encodeInt("int32", 1.5, "sendInt32")).toThrow("not an integer");
    expect(() => encodeInt("uint64", 1n << 64n, "sendUint64")).toThrow("0..18446744073709551615");
    expect(() => encodeInt("int64", 2 ** 60, "sendInt64")).toThrow("not an integer");
    expect(encodeInt("int64", -(1n << 63n), "t")).toEqual(Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0x80));
    expect(encodeInt("int16", -2, "t")).toEqual(Uint8Array.of(0xfe, 0xff));
    expect(encodeInt("uint32", 0xdeadbeef, "t")).toEqual(Uint8Array.of(0xef, 0xbe, 0xad, 0xde));
    expect(encodeInt("uint8", 200n, "t")).toEqual(Uint8Array.of(200));
  });

  test("a BOOL other than 0 or 1, bad UTF-8 and bad JSON are protocol errors", () => {
    expect(() => decode({ tag: TAG.BOOL, body: Uint8Array.of(2), fds: [] })).toThrow("BOOL frame holds 2, not 0 or 1");
    expect(() => decode({ tag: TAG.STRING, body: Uint8Array.of(0xff, 0xfe), fds: [] })).toThrow("not valid UTF-8");
    expect(() => decode({ tag: TAG.JSON, body: new TextEncoder().encode("{nope"), fds: [] })).toThrow("not valid JSON");
  });
});

describe("hostile streams (seeded random, like test/fuzz/comms_fuzz.c for the C client)", () => {
  /** xorshift32: the same streams on every run. */
  function rng(seed: number) {
    let x = seed >>> 0 || 1;
    return () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), (x >>>= 0));
  }

  test("any bytes, cut anywhere: frames and values, or a CommsError, and nothing else", () => {
    const next = rng(0xb0b0b0);
    const tags = [...Object.values(TAG), 0, 14, 0x7fffffff, 0x80000000, 0xffffffff];
    let frames = 0;
    const ends = new Map<string, number>();
    for (let round = 0; round < 3000; round++) {
      // Mostly well-formed headers with random bodies and lengths, some pure noise.
      const parts: Uint8Array[] = [];
      for (let i = next() % 5; i >= 0; i--) {
        const len = next() % 4 === 0 ? next() : next() % 64;
        const body = Uint8Array.from({ length: Math.min(len, 96) }, () => next() & 0xff);
        parts.push(next() % 8 === 0 ? body : cat(encodeHeader(tags[next() % tags.length]!, len), body));
      }
      const all = cat(...parts);
      const steps = [];
      for (let off = 0; off < all.length; ) {
        const n = 1 + (next() % 40);
        steps.push({ bytes: all.subarray(off, off + n), fds: next() % 16 === 0 ? [1000 + round] : [] });
        off += n;
      }
      const t = new Script(steps, true);
      const r = reader(t, 4096);
      try {
        for (let f = r.next(); f; f = r.next()) {
          frames++;
          decode(f);
        }
      } catch (e) {
        if (!(e instanceof CommsError)) throw e;
        ends.set(e.code, (ends.get(e.code) ?? 0) + 1);
      }
    }
    // The streams exercised the reader: many frames decoded, and streams
    // ending both cleanly (EOF at a frame boundary) and as protocol errors.
    expect(frames).toBeGreaterThan(300);
    expect(ends.get("eof")).toBeGreaterThan(30);
    expect(ends.get("protocol")).toBeGreaterThan(1000);
  });
});
