// The ClientHello reader behind the SNI check (src/net/tls.ts): real
// ClientHellos from curl, openssl and Bun, the same split across records and
// bytes, and malformed, oversized and random input, which must be refused
// and never crash.
import { beforeAll, describe, expect, test } from "bun:test";
import { MAX_HELLO, readClientHello } from "../../src/net/tls.ts";

/** The first bytes a TLS client sends to a server that never answers. */
async function captureHello(connect: (port: number) => Promise<unknown> | void): Promise<Uint8Array> {
  let resolve!: (b: Uint8Array) => void;
  const got = new Promise<Uint8Array>((r) => (resolve = r));
  const chunks: Uint8Array[] = [];
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(s, d) {
        chunks.push(new Uint8Array(d));
        const all = Buffer.concat(chunks);
        const r = readClientHello(all);
        if (r.status !== "incomplete" || all.length > MAX_HELLO) {
          resolve(all);
          s.end();
        }
      },
    },
  });
  const client = connect(server.port);
  const bytes = await got;
  server.stop(true);
  await Promise.resolve(client).catch(() => {});
  return bytes;
}

function spawnClient(argv: string[]): () => void {
  const p = Bun.spawn(argv, { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  return () => p.kill();
}

let hellos: Record<string, Uint8Array> = {};

beforeAll(async () => {
  let stop: (() => void) | undefined;
  hellos.curl = await captureHello((port) => {
    stop = spawnClient(["curl", "-sk", "--max-time", "5", "--connect-to", `fronted.test:443:127.0.0.1:${port}`, "https://fronted.test/"]);
  });
  stop?.();
  hellos.openssl = await captureHello((port) => {
    stop = spawnClient(["openssl", "s_client", "-connect", `127.0.0.1:${port}`, "-servername", "Openssl.Test"]);
  });
  stop?.();
  hellos.opensslNoSni = await captureHello((port) => {
    stop = spawnClient(["openssl", "s_client", "-connect", `127.0.0.1:${port}`, "-noservername"]);
  });
  stop?.();
  hellos.bun = await captureHello((port) =>
    Bun.connect({ hostname: "127.0.0.1", port, tls: { serverName: "bun.test", rejectUnauthorized: false }, socket: { data() {} } }),
  );
});

/** The same handshake bytes re-framed into records ending at `cuts`. */
function reframe(hello: Uint8Array, cuts: number[]): Uint8Array {
  const body = hello.subarray(5, 5 + ((hello[3]! << 8) | hello[4]!));
  const out: number[] = [];
  const ends = [...cuts.filter((c) => c > 0 && c < body.length), body.length];
  let at = 0;
  for (const end of ends) {
    const part = body.subarray(at, end);
    out.push(0x16, 3, 1, part.length >> 8, part.length & 0xff, ...part);
    at = end;
  }
  return Uint8Array.from(out);
}
const recordLength = (h: Uint8Array) => (h[3]! << 8) | h[4]!;

describe("real clients", () => {
  test("curl, openssl and Bun: the SNI each sent, normalised to lower case", () => {
    expect(readClientHello(hellos.curl!)).toEqual({ status: "ok", sni: "fronted.test" });
    expect(readClientHello(hellos.openssl!)).toEqual({ status: "ok", sni: "openssl.test" });
    expect(readClientHello(hellos.bun!)).toEqual({ status: "ok", sni: "bun.test" });
  });

  test("a ClientHello without server_name reads as no SNI", () => {
    expect(readClientHello(hellos.opensslNoSni!)).toEqual({ status: "ok", sni: undefined });
  });

  test("every prefix says how many bytes it needs, never more than the whole", () => {
    const h = hellos.curl!;
    for (let n = 0; n < h.length; n++) {
      const r = readClientHello(h.subarray(0, n));
      expect(r.status).toBe("incomplete");
      if (r.status === "incomplete") {
        expect(r.need).toBeGreaterThan(n);
        expect(r.need).toBeLessThanOrEqual(h.length);
      }
    }
  });

  test("fragmented across up to 8 records it reads the same; across more it is refused", () => {
    const h = hellos.openssl!;
    const len = recordLength(h);
    for (let cut = 1; cut < len; cut++) expect(readClientHello(reframe(h, [cut]))).toEqual({ status: "ok", sni: "openssl.test" });
    const even = (n: number) => Array.from({ length: n - 1 }, (_, i) => Math.round(((i + 1) * len) / n));
    expect(readClientHello(reframe(h, even(8)))).toEqual({ status: "ok", sni: "openssl.test" });
    expect(readClientHello(reframe(h, even(9)))).toEqual({ status: "invalid", error: "ClientHello spread over more than 8 records" });
  });

  test("bytes after the ClientHello (a client that does not wait) are ignored", () => {
    const h = hellos.bun!;
    expect(readClientHello(Uint8Array.from([...h, 0x17, 3, 3, 0, 1, 0]))).toEqual({ status: "ok", sni: "bun.test" });
  });
});

/** A ClientHello built by hand: extensions as [type, bytes]. */
function hello(exts: [number, number[]][], opts: { record?: number[]; suites?: number[] } = {}): Uint8Array {
  const extBytes = exts.flatMap(([t, d]) => [t >> 8, t & 0xff, d.length >> 8, d.length & 0xff, ...d]);
  const suites = opts.suites ?? [0x13, 0x01];
  const body = [3, 3, ...new Array(32).fill(7), 0, suites.length >> 8, suites.length & 0xff, ...suites, 1, 0, extBytes.length >> 8, extBytes.length & 0xff, ...extBytes];
  const hs = [1, 0, body.length >> 8, body.length & 0xff, ...body];
  return Uint8Array.from([...(opts.record ?? [0x16, 3, 1]), hs.length >> 8, hs.length & 0xff, ...hs]);
}
const sni = (...names: string[]): [number, number[]] => {
  const list = names.flatMap((n) => [0, n.length >> 8, n.length & 0xff, ...Buffer.from(n)]);
  return [0, [list.length >> 8, list.length & 0xff, ...list]];
};

describe("malformed ClientHellos are refused with a reason", () => {
  test("hand-built: one name reads; the checks each refuse their case", () => {
    expect(readClientHello(hello([sni("a.test")]))).toEqual({ status: "ok", sni: "a.test" });
    expect(readClientHello(hello([sni("a.test", "b.test")]))).toEqual({ status: "invalid", error: "two host names in server_name" });
    expect(readClientHello(hello([sni("a.test"), sni("b.test")]))).toEqual({ status: "invalid", error: "extension 0 appears twice" });
    expect(readClientHello(hello([sni("")]))).toMatchObject({ status: "invalid", error: expect.stringMatching(/host name of 0 bytes/) });
    expect(readClientHello(hello([sni("a b")]))).toMatchObject({ status: "invalid", error: expect.stringMatching(/printable ASCII/) });
    expect(readClientHello(hello([sni("a..b")]))).toMatchObject({ status: "invalid", error: expect.stringMatching(/empty label/) });
    expect(readClientHello(hello([[0, [0, 0]]]))).toEqual({ status: "invalid", error: "a server_name extension without a host name" });
    expect(readClientHello(hello([[0, [0, 9, 0, 0, 1]]]))).toEqual({ status: "invalid", error: "a length runs past its container" });
    expect(readClientHello(hello([sni("a.test")], { suites: [0x13] }))).toEqual({ status: "invalid", error: "bad cipher_suites length" });
    expect(readClientHello(hello([sni("a.test")], { record: [0x16, 2, 0] }))).toEqual({ status: "invalid", error: "not a TLS record version" });
  });

  test("what is not a handshake record is not TLS; other handshake messages are invalid", () => {
    expect(readClientHello(Buffer.from("GET / HTTP/1.1\r\n"))).toEqual({ status: "not-tls" });
    expect(readClientHello(Uint8Array.of(0x17, 3, 3, 0, 1, 0))).toEqual({ status: "not-tls" });
    const h = hello([sni("a.test")]);
    h[5] = 2; // ServerHello
    expect(readClientHello(h)).toEqual({ status: "invalid", error: "the first handshake message is not a ClientHello" });
  });

  test("oversize: a record over 2^14, a ClientHello over MAX_HELLO", () => {
    expect(readClientHello(Uint8Array.of(0x16, 3, 1, 0x40, 0x01))).toEqual({ status: "invalid", error: "record length 16385 (1-16384 allowed)" });
    expect(readClientHello(Uint8Array.of(0x16, 3, 1, 0, 0))).toEqual({ status: "invalid", error: "record length 0 (1-16384 allowed)" });
    expect(readClientHello(Uint8Array.of(0x16, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff))).toEqual({ status: "invalid", error: `ClientHello of ${4 + 0xffffff} bytes (at most ${MAX_HELLO})` });
  });
});

describe("fuzz", () => {
  // A tiny deterministic PRNG, so a failure can be replayed from its seed.
  function rng(seed: number) {
    return () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 16;
    };
  }

  test("random bytes, random prefixes and mutated real ClientHellos never throw", () => {
    const next = rng(0xb0b);
    const bases = Object.values(hellos);
    for (let i = 0; i < 20_000; i++) {
      let input: Uint8Array;
      const kind = i % 3;
      if (kind === 0) {
        input = new Uint8Array(next() % 600).map(() => next() & 0xff);
        if (input.length > 0 && next() % 2) input[0] = 0x16;
      } else {
        const base = bases[next() % bases.length]!;
        input = base.slice(0, kind === 1 ? next() % (base.length + 1) : base.length);
        for (let m = next() % 8; m > 0 && input.length; m--) input[next() % input.length] = next() & 0xff;
      }
      const r = readClientHello(input);
      expect(["not-tls", "incomplete", "invalid", "ok"]).toContain(r.status);
      if (r.status === "incomplete") expect(r.need).toBeGreaterThan(input.length);
      if (r.status === "ok" && r.sni !== undefined) expect(r.sni).toMatch(/^[a-z0-9_.-]+$/);
    }
  });
});
