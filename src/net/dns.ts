/**
 * DNS messages, the little of RFC 1035 the stub needs (dns-stub.ts): a
 * query with one question, read with every length checked, and an answer
 * built around it. Nothing here resolves anything.
 *
 * Queries are refused rather than guessed at: a response bit set, an opcode
 * other than QUERY, anything but one question, a compression pointer or an
 * over-long name in it, a class other than IN. EDNS (an OPT record among the
 * additional ones) is ignored: answers are small and carry no OPT.
 */

export const TYPE = { A: 1, PTR: 12, AAAA: 28 } as const;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const CLASS_IN = 1;
const HEADER = 12;
/** A UDP answer this long at most (the classic 512: no EDNS). */
export const MAX_UDP = 512;

export interface Question {
  readonly id: number;
  /** The RD bit, echoed. */
  readonly recursion: boolean;
  /** The name as asked, labels joined with "." (no trailing dot), case kept. */
  readonly name: string;
  readonly type: number;
  /** Where the question ends in the message (the answer repeats it). */
  readonly end: number;
}

export type Parsed =
  | { readonly ok: true; readonly question: Question }
  /** Worth an error answer (the header was readable). */
  | { readonly ok: false; readonly id: number; readonly rcode: number; readonly error: string }
  /** Not even a header, or a response: dropped without an answer. */
  | { readonly ok: false; readonly id: undefined; readonly error: string };

export function parseQuery(m: Uint8Array): Parsed {
  if (m.length < HEADER) return { ok: false, id: undefined, error: "shorter than a DNS header" };
  const id = (m[0]! << 8) | m[1]!;
  const flags = (m[2]! << 8) | m[3]!;
  if (flags & 0x8000) return { ok: false, id: undefined, error: "a response, not a query" };
  const count = (at: number) => (m[at]! << 8) | m[at + 1]!;
  const fail = (rcode: number, error: string): Parsed => ({ ok: false, id, rcode, error });
  if (((flags >> 11) & 0xf) !== 0) return fail(RCODE.NOTIMP, "not a standard query");
  if (count(4) !== 1 || count(6) !== 0 || count(8) !== 0) return fail(RCODE.FORMERR, "not exactly one question");
  const labels: string[] = [];
  let at = HEADER;
  let length = 0;
  for (;;) {
    if (at >= m.length) return fail(RCODE.FORMERR, "the name runs past the message");
    const n = m[at]!;
    if (n === 0) break;
    if (n > 63) return fail(RCODE.FORMERR, "a compressed or over-long label in the question");
    if (at + 1 + n > m.length) return fail(RCODE.FORMERR, "a label runs past the message");
    length += n + 1;
    if (length > 254) return fail(RCODE.FORMERR, "a name longer than 253 characters");
    const label = m.subarray(at + 1, at + 1 + n);
    // A "." inside a label would read as two labels once joined: another name than the one asked.
    if (label.includes(0x2e)) return fail(RCODE.FORMERR, "a label holds a \".\"");
    labels.push(String.fromCharCode(...label));
    at += 1 + n;
  }
  at++;
  if (at + 4 > m.length) return fail(RCODE.FORMERR, "the question has no type and class");
  const type = count(at);
  if (count(at + 2) !== CLASS_IN) return fail(RCODE.NOTIMP, "not class IN");
  return { ok: true, question: { id, recursion: (flags & 0x0100) !== 0, name: labels.join("."), type, end: at + 4 } };
}

export interface Answer {
  readonly type: number;
  readonly ttl: number;
  /** The record's data (4 bytes for A, an encoded name for PTR). */
  readonly data: Uint8Array;
}

/** The answer to `query` (the question it parsed), with `rcode` and `answers` for the question's name. */
export function buildAnswer(query: Uint8Array, q: Question, rcode: number, answers: readonly Answer[] = []): Uint8Array {
  const size = q.end + answers.reduce((n, a) => n + 12 + a.data.length, 0);
  const out = new Uint8Array(size);
  out.set(query.subarray(0, q.end));
  // QR, AA, RD as asked, RA: the stub answers every name it will ever answer.
  out[2] = 0x84 | (q.recursion ? 0x01 : 0);
  out[3] = 0x80 | rcode;
  out[6] = answers.length >> 8;
  out[7] = answers.length & 0xff;
  out[8] = out[9] = out[10] = out[11] = 0;
  let at = q.end;
  for (const a of answers) {
    out.set([0xc0, HEADER, a.type >> 8, a.type & 0xff, 0, CLASS_IN, a.ttl >>> 24, (a.ttl >> 16) & 0xff, (a.ttl >> 8) & 0xff, a.ttl & 0xff, a.data.length >> 8, a.data.length & 0xff], at);
    out.set(a.data, at + 12);
    at += 12 + a.data.length;
  }
  return out;
}

/** An error answer from the header alone (the question could not be read): no question section. */
export function buildError(query: Uint8Array, id: number, rcode: number): Uint8Array {
  const out = new Uint8Array(HEADER);
  out[0] = id >> 8;
  out[1] = id & 0xff;
  out[2] = 0x80 | (query[2]! & 0x01);
  out[3] = 0x80 | rcode;
  return out;
}

/** A name in DNS wire form (labels, no compression), for a PTR answer. */
export function encodeName(name: string): Uint8Array {
  const parts = name.split(".").filter(Boolean);
  const out = new Uint8Array(parts.reduce((n, l) => n + l.length + 1, 1));
  let at = 0;
  for (const l of parts) {
    out[at++] = l.length;
    for (let i = 0; i < l.length; i++) out[at++] = l.charCodeAt(i);
  }
  return out;
}

/** "4.3.2.1.in-addr.arpa" as the address 1.2.3.4, or undefined. */
export function reverseName(name: string): Uint8Array | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa$/i.exec(name);
  if (!m) return undefined;
  const bytes = [m[4], m[3], m[2], m[1]].map(Number);
  return bytes.every((b) => b <= 255) ? Uint8Array.from(bytes) : undefined;
}
