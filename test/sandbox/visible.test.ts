/**
 * src/sandbox/visible.ts: what a terminal or a line splitter would act on is
 * written as an escape for people, and as a JSON escape for programs, which
 * get the exact string back. Kernel bytes that are not UTF-8 survive as
 * U+DC80+byte.
 */
import { describe, expect, test } from "bun:test";
import { fromBytes, inert, jsonText, visible } from "../../src/sandbox/visible.ts";

const NASTY = "a\x1b[2K\x07\r\n\t\x00\x7f\u0085\u009b\u202e\u2066\u200b\ufeff\u2028\u2029\u{e0001}\\\ud800-\udcff b";

describe("visible", () => {
  test("every control, format and separator character, lone surrogate and backslash is escaped", () => {
    expect(visible(NASTY)).toBe(
      "a\\x1b[2K\\x07\\r\\n\\t\\x00\\x7f\\u0085\\u009b\\u202e\\u2066\\u200b\\ufeff\\u2028\\u2029\\u{e0001}\\\\\\ud800-\\xff b",
    );
    expect(visible(NASTY)).toMatch(/^[\x20-\x7e]*$/);
  });

  test("safe text, Unicode letters and emoji included, comes back unchanged", () => {
    const safe = "/usr/lib/libc.so.6 — ünïcødé ☃ 日本 🙂 [anon] (deleted)";
    expect(visible(safe)).toBe(safe);
    expect(inert(safe)).toBe(safe);
  });

  test("inert: the same escapes, but bunbox's own newlines and backslashes stay", () => {
    expect(inert("line\\x1b one\n  two\x1b[2K\u009b\u202e")).toBe("line\\x1b one\n  two\\x1b[2K\\u009b\\u202e");
  });
});

describe("jsonText", () => {
  test("parses back to the exact strings, with nothing a terminal acts on left raw", () => {
    const value = { s: NASTY, list: [NASTY] };
    for (const indent of [undefined, 2]) {
      const text = jsonText(value, indent);
      expect(JSON.parse(text)).toEqual(value);
      expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202e\u2066\ufeff\ud800-\udfff]/);
    }
    expect(jsonText(value, 2)).toContain('\n  "s": ');
  });
});

describe("fromBytes", () => {
  const bytes = (...b: number[]) => new Uint8Array(b);

  test("UTF-8 decodes as UTF-8", () => {
    const s = "libc.so.6 ünï 日本 🙂";
    expect(fromBytes(new TextEncoder().encode(s))).toBe(s);
  });

  test("each byte that is not UTF-8 becomes U+DC80+byte, shown as \\xHH", () => {
    expect(fromBytes(bytes(0x61, 0xff, 0x62))).toBe("a\udcffb");
    expect(fromBytes(bytes(0xc3))).toBe("\udcc3"); // truncated sequence
    expect(fromBytes(bytes(0xc0, 0xaf))).toBe("\udcc0\udcaf"); // overlong "/"
    expect(fromBytes(bytes(0xe0, 0x80, 0xaf))).toBe("\udce0\udc80\udcaf"); // overlong 3-byte
    expect(fromBytes(bytes(0xed, 0xa0, 0x80))).toBe("\udced\udca0\udc80"); // a UTF-16 surrogate
    expect(fromBytes(bytes(0xf4, 0x90, 0x80, 0x80))).toBe("\udcf4\udc90\udc80\udc80"); // past U+10FFFF
    expect(fromBytes(bytes(0xe6, 0x97, 0x41))).toBe("\udce6\udc97A"); // a bad continuation
    expect(visible(fromBytes(bytes(0x78, 0xff, 0xc3)))).toBe("x\\xff\\xc3");
  });
});
