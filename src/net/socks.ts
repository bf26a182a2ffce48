/**
 * SOCKS5 (RFC 1928), the parts the proxy speaks: no authentication, the
 * CONNECT command, addresses as a domain name, IPv4 or IPv6. BIND and UDP
 * ASSOCIATE are refused with "command not supported"; a client that offers
 * no "no authentication" method gets "no acceptable methods".
 *
 * Each reader takes the bytes that have arrived and says: need N bytes in
 * all, invalid (why), or the message and its length (what to consume).
 */
import { formatIp } from "./address.ts";

export const SOCKS_VERSION = 5;

/** The REP codes of a reply. */
export const REP = {
  succeeded: 0,
  generalFailure: 1,
  notAllowed: 2,
  networkUnreachable: 3,
  hostUnreachable: 4,
  connectionRefused: 5,
  ttlExpired: 6,
  commandNotSupported: 7,
  addressTypeNotSupported: 8,
} as const;

export const CMD_CONNECT = 1;
const ATYP_IPV4 = 1;
const ATYP_DOMAIN = 3;
const ATYP_IPV6 = 4;

export type Read<T> =
  | { readonly status: "incomplete"; readonly need: number }
  | { readonly status: "invalid"; readonly error: string; /** The reply to send first, if any. */ readonly reply?: Uint8Array }
  | ({ readonly status: "ok"; readonly length: number } & T);

/** The method selection message: VER NMETHODS METHODS… */
export function readGreeting(b: Uint8Array): Read<{ noAuth: boolean }> {
  if (b.length < 2) return { status: "incomplete", need: 2 };
  if (b[0] !== SOCKS_VERSION) return { status: "invalid", error: `SOCKS version ${b[0]} (only 5 is spoken)` };
  const n = b[1]!;
  if (n === 0) return { status: "invalid", error: "a SOCKS5 greeting with no methods" };
  if (b.length < 2 + n) return { status: "incomplete", need: 2 + n };
  return { status: "ok", length: 2 + n, noAuth: b.subarray(2, 2 + n).includes(0) };
}

export const METHOD_NO_AUTH = Uint8Array.of(SOCKS_VERSION, 0);
export const NO_ACCEPTABLE_METHODS = Uint8Array.of(SOCKS_VERSION, 0xff);

export interface SocksRequest {
  readonly command: number;
  /** A name as sent, "a.b.c.d", or "[v6]". */
  readonly host: string;
  readonly port: number;
}

/** The request: VER CMD RSV ATYP DST.ADDR DST.PORT. */
export function readRequest(b: Uint8Array): Read<SocksRequest> {
  if (b.length < 5) return { status: "incomplete", need: 5 };
  if (b[0] !== SOCKS_VERSION) return { status: "invalid", error: `SOCKS version ${b[0]} in the request` };
  const command = b[1]!;
  const atyp = b[3]!;
  let addrLen: number;
  let start = 4;
  if (atyp === ATYP_IPV4) addrLen = 4;
  else if (atyp === ATYP_IPV6) addrLen = 16;
  else if (atyp === ATYP_DOMAIN) {
    addrLen = b[4]!;
    start = 5;
    if (addrLen === 0) return { status: "invalid", error: "an empty domain name", reply: socksReply(REP.generalFailure) };
  } else {
    return { status: "invalid", error: `address type ${atyp}`, reply: socksReply(REP.addressTypeNotSupported) };
  }
  const length = start + addrLen + 2;
  if (b.length < length) return { status: "incomplete", need: length };
  const addr = b.subarray(start, start + addrLen);
  const port = (b[start + addrLen]! << 8) | b[start + addrLen + 1]!;
  let host: string;
  if (atyp === ATYP_DOMAIN) {
    try {
      host = new TextDecoder("utf-8", { fatal: true }).decode(addr);
    } catch {
      return { status: "invalid", error: "a domain name that is not UTF-8", reply: socksReply(REP.generalFailure) };
    }
  } else {
    const ip = formatIp({ family: atyp === ATYP_IPV4 ? 4 : 6, bytes: addr.slice() });
    host = atyp === ATYP_IPV6 ? `[${ip}]` : ip;
  }
  return { status: "ok", length, command, host, port };
}

/**
 * A reply with code `rep`. The bound address is always 0.0.0.0:0: the
 * host-side address of the outgoing connection is none of the sandboxee's
 * business.
 */
export function socksReply(rep: number): Uint8Array {
  return Uint8Array.of(SOCKS_VERSION, rep, 0, ATYP_IPV4, 0, 0, 0, 0, 0, 0);
}

/** The REP code for a failed connect's errno name. */
export function repForError(code: string): number {
  switch (code) {
    case "ECONNREFUSED":
      return REP.connectionRefused;
    case "ENETUNREACH":
      return REP.networkUnreachable;
    case "EHOSTUNREACH":
    case "ETIMEDOUT":
    case "ENOTFOUND":
      return REP.hostUnreachable;
    default:
      return REP.generalFailure;
  }
}
