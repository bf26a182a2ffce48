// The DNS stub's answers (src/net/dns-stub.ts) and messages (src/net/dns.ts),
// without sockets: what it says for allowed, refused and odd names, that a
// malformed query is refused or dropped and never throws, and that the name
// pool is stable and bounded.
import { describe, expect, test } from "bun:test";
import { DnsStub } from "../../src/net/dns-stub.ts";
import { parseQuery, RCODE, TYPE } from "../../src/net/dns.ts";
import { NamePool } from "../../src/net/names.ts";
import { NetPolicy } from "../../src/net/policy.ts";
import { parseIp } from "../../src/net/address.ts";

function query(name: string, type: number = TYPE.A, opts: { id?: number; flags?: number; qdcount?: number; cls?: number } = {}): Uint8Array {
  const labels = name.split(".").flatMap((l) => [l.length, ...[...l].map((c) => c.charCodeAt(0))]);
  const id = opts.id ?? 0xbeef;
  const flags = opts.flags ?? 0x0100;
  const qd = opts.qdcount ?? 1;
  const cls = opts.cls ?? 1;
  return Uint8Array.from([id >> 8, id & 0xff, flags >> 8, flags & 0xff, 0, qd, 0, 0, 0, 0, 0, 0, ...labels, 0, type >> 8, type & 0xff, cls >> 8, cls & 0xff]);
}

/** rcode, answer count, and the first answer's data (an address or a name). */
function read(a: Uint8Array | undefined) {
  if (!a) return undefined;
  const rcode = a[3]! & 0xf;
  const count = (a[6]! << 8) | a[7]!;
  // The question, read back as a query (flags and answer count cleared) to find where the answers start.
  const q = parseQuery(Uint8Array.from([...a.subarray(0, 2), 0, 0, a[4]!, a[5]!, 0, 0, ...a.subarray(8)]));
  if (!count || !q.ok) return { rcode, count };
  const data = a.subarray(q.question.end + 12);
  const type = (a[q.question.end + 2]! << 8) | a[q.question.end + 3]!;
  return { rcode, count, data: type === TYPE.A ? [...data].join(".") : new TextDecoder().decode(data.subarray(1, -1)).replace(/[\x00-\x1f]/g, ".") };
}

function stub(max = 16) {
  const policy = new NetPolicy({ allow: ["allowed.test", "*.wild.test", "port.test:443"], deny: ["bad.wild.test", "other.wild.test:443"] });
  return new DnsStub({ policy, pool: new NamePool(max), maxRecords: 100 });
}

describe("the DNS stub's answers", () => {
  test("an allowed name gets a pool address, the same each time; case and the id are kept", () => {
    const s = stub();
    expect(read(s.answer(query("allowed.test")))).toEqual({ rcode: 0, count: 1, data: "198.18.0.1" });
    expect(read(s.answer(query("a.wild.test")))).toEqual({ rcode: 0, count: 1, data: "198.18.0.2" });
    const again = s.answer(query("ALLOWED.test", TYPE.A, { id: 7 }))!;
    expect(read(again)).toEqual({ rcode: 0, count: 1, data: "198.18.0.1" });
    expect([again[0], again[1]]).toEqual([0, 7]);
    expect(new TextDecoder().decode(again.subarray(13, 20))).toBe("ALLOWED");
    // A port-qualified allow entry: the name resolves (the port is the proxy's to check).
    expect(read(s.answer(query("port.test")))).toMatchObject({ rcode: 0, count: 1 });
    // A deny entry with a port leaves the name resolvable; one without does not.
    expect(read(s.answer(query("other.wild.test")))).toMatchObject({ rcode: 0, count: 1 });
    expect(read(s.answer(query("bad.wild.test")))).toEqual({ rcode: RCODE.NXDOMAIN, count: 0 });
  });

  test("refused names get NXDOMAIN; AAAA and other types an empty answer; PTR names a pool address", () => {
    const s = stub();
    expect(read(s.answer(query("denied.test")))).toEqual({ rcode: RCODE.NXDOMAIN, count: 0 });
    expect(read(s.answer(query("wild.test")))).toEqual({ rcode: RCODE.NXDOMAIN, count: 0 });
    expect(read(s.answer(query("allowed.test", TYPE.AAAA)))).toEqual({ rcode: 0, count: 0 });
    expect(read(s.answer(query("allowed.test", 65)))).toEqual({ rcode: 0, count: 0 });
    expect(read(s.answer(query("1.0.18.198.in-addr.arpa", TYPE.PTR)))).toEqual({ rcode: 0, count: 1, data: "allowed.test" });
    expect(read(s.answer(query("9.0.18.198.in-addr.arpa", TYPE.PTR)))).toEqual({ rcode: RCODE.NXDOMAIN, count: 0 });
    expect(read(s.answer(query("1.0.0.127.in-addr.arpa", TYPE.PTR)))).toEqual({ rcode: RCODE.NXDOMAIN, count: 0 });
    const r = s.report();
    expect(r).toMatchObject({ queries: 7, answered: 3, refused: 4 });
    expect(r.names).toContainEqual({ name: "wild.test", outcome: "refused", reason: "wild.test is not in the allow list (*.wild.test matches its subdomains only; list wild.test too)", queries: 1 });
  });

  test("a full pool answers SERVFAIL, and says why", () => {
    const s = stub(2);
    expect(read(s.answer(query("a.wild.test")))!.rcode).toBe(0);
    expect(read(s.answer(query("b.wild.test")))!.rcode).toBe(0);
    expect(read(s.answer(query("c.wild.test")))).toEqual({ rcode: RCODE.SERVFAIL, count: 0 });
    expect(read(s.answer(query("a.wild.test")))!.rcode).toBe(0); // names it has keep their address
    expect(s.report().names).toContainEqual({ name: "c.wild.test", outcome: "refused", reason: "bunbox's DNS stub has given out 2 names, its limit for a sandbox", queries: 1 });
  });

  test("malformed queries: an error answer when the header can be read, nothing otherwise", () => {
    const s = stub();
    expect(s.answer(new Uint8Array(5))).toBeUndefined();
    expect(s.answer(query("allowed.test", TYPE.A, { flags: 0x8100 }))).toBeUndefined(); // a response
    expect(read(s.answer(query("allowed.test", TYPE.A, { flags: 0x2900 })))!.rcode).toBe(RCODE.NOTIMP); // an UPDATE
    expect(read(s.answer(query("allowed.test", TYPE.A, { qdcount: 2 })))!.rcode).toBe(RCODE.FORMERR);
    expect(read(s.answer(query("allowed.test", TYPE.A, { cls: 3 })))!.rcode).toBe(RCODE.NOTIMP); // CHAOS
    const pointer = query("allowed.test");
    pointer[12] = 0xc0;
    expect(read(s.answer(pointer))!.rcode).toBe(RCODE.FORMERR);
    // One label "allowed.test" (a dot inside it) is not the two-label name.
    const dotted = Uint8Array.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 12, ..."allowed.test"].map((c) => (typeof c === "string" ? c.charCodeAt(0) : c)).concat([0, 0, 1, 0, 1]));
    expect(read(s.answer(dotted))!.rcode).toBe(RCODE.FORMERR);
    expect(read(s.answer(query(`${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(63)}.test`)))!.rcode).toBe(RCODE.FORMERR);
    expect(read(s.answer(query("bad_\x01name.test")))).toEqual({ rcode: RCODE.NXDOMAIN, count: 0 });
  });

  test("random bytes never throw (10000 messages)", () => {
    const s = stub();
    const base = query("a.wild.test");
    for (let i = 0; i < 10_000; i++) {
      const m = i % 2 ? crypto.getRandomValues(new Uint8Array(i % 64)) : base.map((b) => (Math.random() < 0.1 ? Math.floor(Math.random() * 256) : b));
      expect(() => s.answer(m)).not.toThrow();
    }
  });
});

describe("the name pool", () => {
  test("addresses from 198.18.0.1, stable, mapped back; bounded", () => {
    const p = new NamePool(3);
    expect(p.addressOf("a")!.bytes).toEqual(Uint8Array.of(198, 18, 0, 1));
    expect(p.addressOf("b")!.bytes).toEqual(Uint8Array.of(198, 18, 0, 2));
    expect(p.addressOf("a")!.bytes).toEqual(Uint8Array.of(198, 18, 0, 1));
    expect(p.nameOf(parseIp("198.18.0.2")!)).toBe("b");
    expect(p.nameOf(parseIp("198.18.0.9")!)).toBeUndefined();
    expect(p.nameOf(parseIp("198.17.255.255")!)).toBeUndefined();
    expect(p.nameOf(parseIp("::1")!)).toBeUndefined();
    p.addressOf("c");
    expect(p.addressOf("d")).toBeUndefined();
    expect(p.size).toBe(3);
  });
});
