// The proxy's request parsers (src/net/http.ts, src/net/socks.ts): what is
// accepted, what is refused and why, and the head forwarded upstream.
import { describe, expect, test } from "bun:test";
import { forwardHead, headEnd, parseAbsoluteUrl, parseHead, proxyResponse } from "../../src/net/http.ts";
import { readGreeting, readRequest, REP, socksReply } from "../../src/net/socks.ts";

const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const text = (b: Uint8Array) => String.fromCharCode(...b);
const head = (s: string) => {
  const h = parseHead(bytes(s));
  if (!h.ok) throw new Error(`test: ${h.error}`);
  return h.value;
};

describe("HTTP request heads", () => {
  test("the head ends at the first empty line; what follows is not part of it", () => {
    const raw = bytes("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n\x16\x03\x01");
    expect(headEnd(raw)).toBe(raw.length - 3);
    expect(headEnd(bytes("GET http://a/ HTTP/1.1\r\nHost: a\r\n"))).toBe(-1);
    expect(head("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n")).toMatchObject({ method: "CONNECT", target: "a.test:443", version: "HTTP/1.1", headers: [["Host", "a.test:443"]] });
  });

  const bad: [string, RegExp][] = [
    ["GET http://a/ HTTP/1.1\nHost: a\r\n\r\n", /bare CR or LF/],
    ["GET http://a/ HTTP/1.1\r\nHost: a\r\n  folded\r\n\r\n", /folded/],
    ["GET http://a/ HTTP/2.0\r\n\r\n", /not an HTTP\/1\.x request line/],
    ["GET  http://a/ HTTP/1.1\r\n\r\n", /not an HTTP\/1\.x request line/],
    ["G(T http://a/ HTTP/1.1\r\n\r\n", /not an HTTP\/1\.x request line/],
    ["GET http://a/ HTTP/1.1\r\nBad Header: x\r\n\r\n", /malformed header line/],
    ["GET http://a/ HTTP/1.1\r\n: x\r\n\r\n", /malformed header line/],
    [`GET http://a/ HTTP/1.1\r\n${"X: y\r\n".repeat(101)}\r\n`, /more than 100 header lines/],
  ];
  for (const [raw, why] of bad) {
    test(`refused: ${why.source}`, () => {
      const h = parseHead(bytes(raw));
      expect(h.ok).toBe(false);
      if (!h.ok) expect(h.error).toMatch(why);
    });
  }

  test("absolute URLs: http only, no user info, the port defaults to 80", () => {
    expect(parseAbsoluteUrl("http://a.test/x?y=1#frag")).toEqual({ ok: true, value: { authority: "a.test", host: "a.test", port: 80, path: "/x?y=1" } });
    expect(parseAbsoluteUrl("HTTP://[::1]:8080")).toEqual({ ok: true, value: { authority: "[::1]:8080", host: "[::1]", port: 8080, path: "/" } });
    expect(parseAbsoluteUrl("http://a.test?q")).toMatchObject({ ok: true, value: { path: "/?q" } });
    expect(parseAbsoluteUrl("/x")).toEqual({ ok: false, error: "this is a proxy: send an absolute URL (http://host/path) or CONNECT" });
    expect(parseAbsoluteUrl("https://a.test/")).toMatchObject({ ok: false, error: expect.stringMatching(/through CONNECT/) });
    expect(parseAbsoluteUrl("ftp://a.test/")).toMatchObject({ ok: false, error: expect.stringMatching(/ftp:\/\/ scheme is not proxied/) });
    expect(parseAbsoluteUrl("http://allowed.test@evil.test/")).toMatchObject({ ok: false, error: expect.stringMatching(/user info/) });
    expect(parseAbsoluteUrl("http://a.test:0/")).toMatchObject({ ok: false });
    expect(parseAbsoluteUrl("http://:80/")).toMatchObject({ ok: false });
  });

  test("the forwarded head: origin-form, Host from the URL, hop-by-hop headers dropped, Connection: close", () => {
    const h = head(
      "POST http://a.test:8080/up?x HTTP/1.1\r\nHost: evil.test\r\nProxy-Authorization: secret\r\nProxy-Connection: keep-alive\r\n" +
        "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nUpgrade: websocket\r\nContent-Length: 3\r\nX-Kept: yes\r\n\r\n",
    );
    const url = parseAbsoluteUrl(h.target);
    if (!url.ok) throw new Error(url.error);
    const f = forwardHead(h, url.value);
    expect(f.ok && text(f.value)).toBe("POST /up?x HTTP/1.1\r\nHost: a.test:8080\r\nContent-Length: 3\r\nX-Kept: yes\r\nConnection: close\r\n\r\n");
  });

  test("framing a server could read differently (request smuggling) is refused", () => {
    const url = { authority: "a", host: "a", port: 80, path: "/" };
    expect(forwardHead(head("POST http://a/ HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"), url)).toEqual({ ok: false, error: "two different Content-Length headers" });
    expect(forwardHead(head("POST http://a/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"), url)).toEqual({ ok: false, error: "both Content-Length and Transfer-Encoding" });
    expect(forwardHead(head("POST http://a/ HTTP/1.1\r\nContent-Length: 3x\r\n\r\n"), url)).toEqual({ ok: false, error: "a Content-Length that is not a number" });
    expect(forwardHead(head("POST http://a/ HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"), url).ok).toBe(true);
  });

  test("header bytes outside ASCII pass through unchanged", () => {
    const h = head("GET http://a/ HTTP/1.1\r\nX-Name: caf\xe9\x80\r\n\r\n");
    const f = forwardHead(h, { authority: "a", host: "a", port: 80, path: "/" });
    expect(f.ok && Array.from(f.value).includes(0x80)).toBe(true);
  });

  test("the proxy's own answers name bunbox and close", () => {
    const r = text(proxyResponse(403, "the sandbox's network policy refused x:1: why"));
    expect(r).toStartWith("HTTP/1.1 403 Forbidden\r\n");
    expect(r).toContain("Connection: close\r\n");
    expect(r).toEndWith("\r\n\r\nbunbox: the sandbox's network policy refused x:1: why\n");
  });
});

describe("SOCKS5", () => {
  test("greeting: no authentication must be offered", () => {
    expect(readGreeting(Uint8Array.of(5))).toEqual({ status: "incomplete", need: 2 });
    expect(readGreeting(Uint8Array.of(5, 2, 2))).toEqual({ status: "incomplete", need: 4 });
    expect(readGreeting(Uint8Array.of(5, 2, 2, 0))).toEqual({ status: "ok", length: 4, noAuth: true });
    expect(readGreeting(Uint8Array.of(5, 1, 2))).toEqual({ status: "ok", length: 3, noAuth: false });
    expect(readGreeting(Uint8Array.of(5, 0))).toMatchObject({ status: "invalid" });
    expect(readGreeting(Uint8Array.of(4, 1, 0))).toMatchObject({ status: "invalid", error: "SOCKS version 4 (only 5 is spoken)" });
  });

  test("requests: domain, IPv4 and IPv6 addresses", () => {
    const domain = Uint8Array.of(5, 1, 0, 3, 6, ...bytes("a.test"), 1, 187);
    expect(readRequest(domain)).toEqual({ status: "ok", length: domain.length, command: 1, host: "a.test", port: 443 });
    for (let n = 0; n < domain.length; n++) expect(readRequest(domain.subarray(0, n)).status).toBe("incomplete");
    expect(readRequest(Uint8Array.of(5, 1, 0, 1, 127, 0, 0, 1, 0, 80))).toMatchObject({ status: "ok", host: "127.0.0.1", port: 80 });
    expect(readRequest(Uint8Array.of(5, 1, 0, 4, ...new Array(15).fill(0), 1, 0, 80))).toMatchObject({ status: "ok", host: "[::1]", port: 80 });
    expect(readRequest(Uint8Array.of(5, 3, 0, 1, 0, 0, 0, 0, 0, 0))).toMatchObject({ status: "ok", command: 3 });
  });

  test("bad requests get the reply RFC 1928 gives them", () => {
    expect(readRequest(Uint8Array.of(5, 1, 0, 9, 0, 0))).toEqual({ status: "invalid", error: "address type 9", reply: socksReply(REP.addressTypeNotSupported) });
    expect(readRequest(Uint8Array.of(5, 1, 0, 3, 0, 0, 0))).toMatchObject({ status: "invalid", error: "an empty domain name" });
    expect(readRequest(Uint8Array.of(5, 1, 0, 3, 2, 0xff, 0xfe, 0, 80))).toMatchObject({ status: "invalid", error: "a domain name that is not UTF-8" });
    expect(socksReply(REP.notAllowed)).toEqual(Uint8Array.of(5, 2, 0, 1, 0, 0, 0, 0, 0, 0));
  });
});
