/**
 * The HTTP side of the proxy: the request head a client sends (CONNECT
 * host:port, or an absolute http:// URL to forward), the head forwarded
 * upstream, and the proxy's own answers.
 *
 * Parsing is strict where leniency lets two parties disagree about where a
 * request ends (request smuggling): CRLF line ends only, no folded headers,
 * no Content-Length beside Transfer-Encoding, no two different
 * Content-Lengths. A forwarded request goes out with `Connection: close`
 * and its Host taken from the URL (RFC 9112 §3.2.2: a proxy replaces it),
 * so the Host a server sees is the host the policy allowed; the body and the
 * response pass through the relay untouched.
 */
import type { Checked } from "./host.ts";

export interface HttpHead {
  readonly method: string;
  readonly target: string;
  /** "HTTP/1.0" or "HTTP/1.1". */
  readonly version: string;
  readonly headers: readonly (readonly [string, string])[];
  /** Bytes of the head, final CRLFCRLF included. */
  readonly length: number;
}

const MAX_HEADERS = 100;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** The offset just past the head's final CRLFCRLF in `buf`, or -1. */
export function headEnd(buf: Uint8Array): number {
  for (let i = 3; i < buf.length; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i + 1;
  }
  return -1;
}

function fail(error: string): Checked<never> {
  return { ok: false, error };
}

/** Parses a complete head (up to and including its CRLFCRLF). */
export function parseHead(bytes: Uint8Array): Checked<HttpHead> {
  const text = fromLatin1(bytes);
  if (!text.endsWith("\r\n\r\n")) return fail("the request head does not end with an empty line");
  const lines = text.slice(0, -4).split("\r\n");
  if (lines.some((l) => l.includes("\n") || l.includes("\r"))) return fail("a bare CR or LF in the request head");
  const request = /^([^ ]+) ([^ ]+) (HTTP\/1\.[01])$/.exec(lines[0]!);
  if (!request || !TOKEN.test(request[1]!)) return fail("not an HTTP/1.x request line");
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    if (line.startsWith(" ") || line.startsWith("\t")) return fail("folded header lines are not accepted");
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    if (colon <= 0 || !TOKEN.test(name)) return fail(`malformed header line "${line.slice(0, 40)}"`);
    if (headers.length === MAX_HEADERS) return fail(`more than ${MAX_HEADERS} header lines`);
    headers.push([name, line.slice(colon + 1).trim()]);
  }
  return { ok: true, value: { method: request[1]!, target: request[2]!, version: request[3]!, headers, length: bytes.length } };
}

export interface AbsoluteUrl {
  /** host[:port] as written, userinfo excluded. */
  readonly authority: string;
  readonly host: string;
  readonly port: number;
  /** The origin-form path and query, "/" at least. */
  readonly path: string;
}

/** An absolute http:// URL of a request to forward. */
export function parseAbsoluteUrl(target: string): Checked<AbsoluteUrl> {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^#]*)/.exec(target);
  if (!m) {
    return fail(target.startsWith("/") ? "this is a proxy: send an absolute URL (http://host/path) or CONNECT" : "not an absolute URL");
  }
  const scheme = m[1]!.toLowerCase();
  if (scheme === "https") return fail("send https:// URLs through CONNECT (the proxy does not speak TLS)");
  if (scheme !== "http") return fail(`the ${scheme}:// scheme is not proxied (http:// or CONNECT)`);
  const authority = m[2]!;
  if (authority.includes("@")) return fail("URLs with user info (user@host) are not accepted");
  const hp = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(authority);
  if (!hp || hp[1] === "") return fail(`"${authority}" is not host[:port]`);
  const port = hp[2] === undefined ? 80 : Number(hp[2]);
  if (port < 1 || port > 65535) return fail(`port ${hp[2]} is out of range`);
  const path = m[3] === "" ? "/" : m[3]!;
  if (!path.startsWith("/") && !path.startsWith("?")) return fail("not an absolute URL");
  return { ok: true, value: { authority, host: hp[1]!, port, path: path.startsWith("?") ? `/${path}` : path } };
}

/** Headers that belong to one hop (RFC 9110 §7.6.1) and are not forwarded. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer", "upgrade"]);

/** The head to send upstream for a forwarded request, or why it cannot go. */
export function forwardHead(head: HttpHead, url: AbsoluteUrl): Checked<Uint8Array> {
  const lower = head.headers.map(([n, v]) => [n.toLowerCase(), v] as const);
  const lengths = new Set(lower.filter(([n]) => n === "content-length").map(([, v]) => v));
  const chunked = lower.some(([n]) => n === "transfer-encoding");
  if (lengths.size > 1) return fail("two different Content-Length headers");
  if (lengths.size === 1 && chunked) return fail("both Content-Length and Transfer-Encoding");
  if (lengths.size === 1 && !/^\d{1,15}$/.test([...lengths][0]!)) return fail("a Content-Length that is not a number");
  // Connection may name more headers that belong to this hop.
  const named = new Set(lower.filter(([n]) => n === "connection").flatMap(([, v]) => v.split(",").map((s) => s.trim().toLowerCase())));
  const kept = head.headers.filter(([n]) => {
    const l = n.toLowerCase();
    return !HOP_BY_HOP.has(l) && !named.has(l) && l !== "host";
  });
  const lines = [`${head.method} ${url.path} ${head.version}`, `Host: ${url.authority}`, ...kept.map(([n, v]) => `${n}: ${v}`), "Connection: close"];
  return { ok: true, value: latin1(`${lines.join("\r\n")}\r\n\r\n`) };
}

export interface ResponseHead {
  readonly status: number;
  /** Bytes of the server's head, final CRLFCRLF included. */
  readonly length: number;
  /** The head to send the client: a final response's with Connection: close, a 1xx one as it came. */
  readonly forClient: Uint8Array;
}

/** A server's complete response head (up to and including its CRLFCRLF), as the client gets it. */
export function clientHead(bytes: Uint8Array): Checked<ResponseHead> {
  const text = fromLatin1(bytes);
  const lines = text.slice(0, -4).split("\r\n");
  if (lines.some((l) => l.includes("\n") || l.includes("\r"))) return fail("a bare CR or LF in the response head");
  const status = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0]!);
  if (!status) return fail("not an HTTP/1.x status line");
  const code = Number(status[1]);
  if (code < 200) return { ok: true, value: { status: code, length: bytes.length, forClient: bytes.slice() } };
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0 || line.startsWith(" ") || line.startsWith("\t") || !TOKEN.test(line.slice(0, colon))) return fail(`malformed header line "${line.slice(0, 40)}"`);
    headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  const named = new Set(headers.filter(([n]) => n.toLowerCase() === "connection").flatMap(([, v]) => v.split(",").map((t) => t.trim().toLowerCase())));
  const kept = headers.filter(([n]) => {
    const l = n.toLowerCase();
    return l !== "connection" && l !== "keep-alive" && l !== "proxy-connection" && !named.has(l);
  });
  const out = [lines[0]!, ...kept.map(([n, v]) => `${n}: ${v}`), "Connection: close"];
  return { ok: true, value: { status: code, length: bytes.length, forClient: latin1(`${out.join("\r\n")}\r\n\r\n`) } };
}

/** Bytes as ISO-8859-1 (byte n is U+00nn; TextDecoder's "latin1" is windows-1252). */
function fromLatin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 4096) s += String.fromCharCode(...bytes.subarray(i, i + 4096));
  return s;
}

function latin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

const STATUS: Record<number, string> = {
  200: "Connection established",
  400: "Bad Request",
  403: "Forbidden",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** The proxy's own answer: a status line and a text body naming bunbox. */
export function proxyResponse(status: number, body: string): Uint8Array {
  const text = `bunbox: ${body}\n`;
  const bytes = new TextEncoder().encode(text);
  const head =
    `HTTP/1.1 ${status} ${STATUS[status] ?? "Error"}\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${bytes.length}\r\nConnection: close\r\n\r\n`;
  const out = new Uint8Array(head.length + bytes.length);
  out.set(latin1(head));
  out.set(bytes, head.length);
  return out;
}

export const CONNECT_ESTABLISHED = latin1("HTTP/1.1 200 Connection established\r\n\r\n");
