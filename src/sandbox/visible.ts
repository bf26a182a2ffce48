/**
 * Strings from the sandbox, made safe to show. A sandboxee chooses the names
 * of its files (they appear in /proc/PID/maps and in setup failures), and a
 * hostile caller of a wrapper may choose bunbox's own command line: printed
 * raw, `x\e[2K\e[1Gbunbox: OK` erases bunbox's line and writes a fake one, an
 * OSC sets the terminal's title, U+202E reverses what follows, a newline
 * starts a line of the sandboxee's choosing. Every such string is shown
 * through `visible()`; the JSON output keeps the exact string (`jsonText`).
 */

/**
 * What a terminal or a line splitter acts on: C0, DEL and C1 controls (C1
 * includes U+009B, a one-character CSI), format characters (bidi overrides
 * and isolates, zero-width characters, the BOM), the line and paragraph
 * separators U+2028/U+2029, lone surrogates (they stand for bytes that are
 * not UTF-8, see `fromBytes`), and the backslash that starts our escapes.
 */
const UNSAFE = /[\\\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

const NAMED: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeChar(c: string): string {
  const named = NAMED[c];
  if (named !== undefined) return named;
  const cp = c.codePointAt(0)!;
  // C0 and DEL as the byte they are; a byte that was not UTF-8 (U+DC80+byte) too.
  if (cp < 0x20 || cp === 0x7f) return `\\x${cp.toString(16).padStart(2, "0")}`;
  if (cp >= 0xdc80 && cp <= 0xdcff) return `\\x${(cp - 0xdc00).toString(16)}`;
  return cp > 0xffff ? `\\u{${cp.toString(16)}}` : `\\u${cp.toString(16).padStart(4, "0")}`;
}

/**
 * One line, inert on any terminal, unambiguous: every control, format and
 * separator character, every byte that was not UTF-8, and the backslash
 * itself written as an escape (`\x1b`, `\n`, `\u202e`, `\xff`, `\\`).
 * A string with none of them comes back unchanged.
 */
export function visible(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/**
 * For bunbox's own text, which may span lines and hold strings that went
 * through `visible()` already: the same escapes, except that a newline stays
 * a newline and a backslash stays itself. The last guard before stderr.
 */
export function inert(text: string): string {
  return text.replace(UNSAFE, (c) => (c === "\n" || c === "\\" ? c : escapeChar(c)));
}

/**
 * JSON with the exact strings, readable by any JSON parser, but with every
 * character that JSON.stringify leaves raw and a terminal or a line splitter
 * would act on (DEL, C1, format characters, U+2028/U+2029) written as a
 * \uXXXX escape. JSON.stringify itself escapes C0 and lone surrogates.
 */
export function jsonText(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(
    // Not C0: JSON.stringify escapes it in strings, and outside them it is the indentation's newline.
    /[\u007f-\u009f\p{Cf}\p{Zl}\p{Zp}]/gu,
    (c) => {
      const cp = c.codePointAt(0)!;
      if (cp <= 0xffff) return `\\u${cp.toString(16).padStart(4, "0")}`;
      const hi = 0xd800 + ((cp - 0x10000) >> 10);
      const lo = 0xdc00 + ((cp - 0x10000) & 0x3ff);
      return `\\u${hi.toString(16)}\\u${lo.toString(16)}`;
    },
  );
}

/**
 * Bytes from the kernel (a path in /proc/PID/maps) as a string that loses
 * nothing: UTF-8 where the bytes are UTF-8, and each byte that is not as the
 * lone surrogate U+DC80+byte (Python's "surrogateescape"). `visible()` shows
 * such a byte as `\xff`; JSON carries it as "\udcff".
 */
export function fromBytes(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const n = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    let cp = n === 1 ? b : n === 2 ? b & 0x1f : n === 3 ? b & 0x0f : b & 0x07;
    let ok = n > 0 && i + n <= bytes.length;
    for (let k = 1; ok && k < n; k++) {
      const c = bytes[i + k]!;
      ok = (c & 0xc0) === 0x80;
      cp = (cp << 6) | (c & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
    if (ok && ((n === 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n === 4 && (cp < 0x10000 || cp > 0x10ffff)))) ok = false;
    if (ok) {
      out += String.fromCodePoint(cp);
      i += n;
    } else {
      out += String.fromCharCode(0xdc00 + b);
      i += 1;
    }
  }
  return out;
}
