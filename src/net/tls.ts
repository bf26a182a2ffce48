/**
 * The server name (SNI) of a TLS ClientHello, read from the first bytes a
 * client sends through a tunnel, so the proxy can refuse domain fronting: a
 * CONNECT to an allowed name whose TLS handshake asks the server (a CDN, say)
 * for another one.
 *
 * The parser takes whatever bytes have arrived and says: not TLS, need at
 * least N bytes, invalid (why), or the SNI (absent: undefined). It follows
 * the handshake message across records (a ClientHello may be fragmented),
 * checks every length against its container, and refuses what a real client
 * never sends: records over 2^14 bytes, a ClientHello over MAX_HELLO, more
 * than MAX_RECORDS records, duplicate extensions, two host names.
 */
import { normalizeName } from "./host.ts";

export const MAX_HELLO = 64 * 1024;
const MAX_RECORDS = 8;
const RECORD_HEADER = 5;
const HANDSHAKE = 0x16;
const CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const HOST_NAME = 0;

export type HelloResult =
  | { readonly status: "not-tls" }
  | { readonly status: "incomplete"; /** Bytes needed in all, counting from the first. */ readonly need: number }
  | { readonly status: "invalid"; readonly error: string }
  | { readonly status: "ok"; /** Normalised; undefined when the client sent none. */ readonly sni: string | undefined };

/** Does this look like the start of a TLS handshake record? (one byte is enough to decide "no") */
export function looksLikeTls(first: number): boolean {
  return first === HANDSHAKE;
}

/** Reassembles the handshake bytes carried by the records at the start of `data`. */
function handshakeBytes(data: Uint8Array): { bytes: Uint8Array; need?: number; error?: string } {
  const parts: Uint8Array[] = [];
  let total = 0;
  let off = 0;
  let wanted = -1; // the ClientHello's full length, once its header is in
  for (let records = 0; ; records++) {
    if (wanted >= 0 && total >= wanted) break;
    if (records === MAX_RECORDS) return { bytes: new Uint8Array(0), error: `ClientHello spread over more than ${MAX_RECORDS} records` };
    if (data.length < off + RECORD_HEADER) return { bytes: new Uint8Array(0), need: off + RECORD_HEADER };
    if (data[off] !== HANDSHAKE) return { bytes: new Uint8Array(0), error: "a non-handshake record inside the ClientHello" };
    if (data[off + 1] !== 3 || data[off + 2]! > 4) return { bytes: new Uint8Array(0), error: "not a TLS record version" };
    const len = (data[off + 3]! << 8) | data[off + 4]!;
    if (len === 0 || len > 16384) return { bytes: new Uint8Array(0), error: `record length ${len} (1-16384 allowed)` };
    if (data.length < off + RECORD_HEADER + len) return { bytes: new Uint8Array(0), need: off + RECORD_HEADER + len };
    parts.push(data.subarray(off + RECORD_HEADER, off + RECORD_HEADER + len));
    total += len;
    off += RECORD_HEADER + len;
    if (wanted < 0 && total >= 4) {
      const head = concat(parts, 4);
      if (head[0] !== CLIENT_HELLO) return { bytes: new Uint8Array(0), error: "the first handshake message is not a ClientHello" };
      wanted = 4 + ((head[1]! << 16) | (head[2]! << 8) | head[3]!);
      if (wanted > MAX_HELLO) return { bytes: new Uint8Array(0), error: `ClientHello of ${wanted} bytes (at most ${MAX_HELLO})` };
    }
  }
  return { bytes: concat(parts, wanted) };
}

function concat(parts: Uint8Array[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    if (at >= n) break;
    const take = p.subarray(0, n - at);
    out.set(take, at);
    at += take.length;
  }
  return out;
}

/** A cursor that refuses to read past its end. */
class Reader {
  constructor(
    private readonly b: Uint8Array,
    private off = 0,
    private readonly end = b.length,
  ) {}
  get left(): number {
    return this.end - this.off;
  }
  u8(): number {
    this.need(1);
    return this.b[this.off++]!;
  }
  u16(): number {
    this.need(2);
    const v = (this.b[this.off]! << 8) | this.b[this.off + 1]!;
    this.off += 2;
    return v;
  }
  skip(n: number): void {
    this.need(n);
    this.off += n;
  }
  /** A sub-reader over the next `n` bytes, which this one skips. */
  sub(n: number): Reader {
    this.need(n);
    const r = new Reader(this.b, this.off, this.off + n);
    this.off += n;
    return r;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const v = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
  private need(n: number): void {
    if (this.off + n > this.end) throw new HelloError("a length runs past its container");
  }
}

class HelloError extends Error {}

function parseHello(body: Reader): string | undefined {
  body.skip(2 + 32); // legacy_version, random
  body.skip(body.u8()); // legacy_session_id
  const suites = body.u16();
  if (suites < 2 || suites % 2) throw new HelloError("bad cipher_suites length");
  body.skip(suites);
  const compression = body.u8();
  if (compression < 1) throw new HelloError("no compression methods");
  body.skip(compression);
  if (body.left === 0) return undefined; // no extensions at all (TLS 1.0-style)
  const exts = body.sub(body.u16());
  if (body.left !== 0) throw new HelloError("bytes after the extensions");
  const seen = new Set<number>();
  let sni: string | undefined;
  while (exts.left > 0) {
    const type = exts.u16();
    const data = exts.sub(exts.u16());
    if (seen.has(type)) throw new HelloError(`extension ${type} appears twice`);
    seen.add(type);
    if (type !== EXT_SERVER_NAME) continue;
    const list = data.sub(data.u16());
    if (data.left !== 0) throw new HelloError("bytes after the server_name list");
    while (list.left > 0) {
      const kind = list.u8();
      const name = list.bytes(list.u16());
      if (kind !== HOST_NAME) continue;
      if (sni !== undefined) throw new HelloError("two host names in server_name");
      if (name.length === 0 || name.length > 255) throw new HelloError(`a host name of ${name.length} bytes in server_name`);
      if (name.some((c) => c < 0x21 || c > 0x7e)) throw new HelloError("a server_name that is not printable ASCII");
      const text = String.fromCharCode(...name);
      const normal = normalizeName(text);
      if (!normal.ok) throw new HelloError(`server_name "${text}": ${normal.error}`);
      sni = normal.value;
    }
    if (sni === undefined) throw new HelloError("a server_name extension without a host name");
  }
  return sni;
}

/** Reads the ClientHello at the start of `data` (what has arrived so far). */
export function readClientHello(data: Uint8Array): HelloResult {
  if (data.length === 0) return { status: "incomplete", need: 1 };
  if (!looksLikeTls(data[0]!)) return { status: "not-tls" };
  const hs = handshakeBytes(data);
  if (hs.error) return { status: "invalid", error: hs.error };
  if (hs.need !== undefined) return { status: "incomplete", need: hs.need };
  try {
    const r = new Reader(hs.bytes);
    r.skip(4); // msg_type, length: checked while reassembling
    return { status: "ok", sni: parseHello(r) };
  } catch (e) {
    if (e instanceof HelloError) return { status: "invalid", error: e.message };
    throw e;
  }
}
