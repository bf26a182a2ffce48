/**
 * The comms wire format, shared by the host (comms.ts), the TypeScript
 * sandboxee client (client.ts) and the C client (csrc/client/bunbox_client.h,
 * which carries the same description).
 *
 * A stream of frames over a SOCK_STREAM unix socket (a socketpair; the
 * sandboxee's end is fd 1023 by default):
 *
 *   offset 0  u32 tag      little-endian
 *   offset 4  u32 length   little-endian, payload bytes that follow
 *   offset 8  payload
 *
 *   tag         name    payload
 *   1           BOOL    1 byte, 0 or 1
 *   2..5        INT8, INT16, INT32, INT64     1, 2, 4, 8 bytes, two's complement LE
 *   6..9        UINT8, UINT16, UINT32, UINT64 1, 2, 4, 8 bytes LE
 *   10          STRING  UTF-8 (no NUL terminator)
 *   11          BYTES   raw bytes
 *   12          JSON    UTF-8 JSON text
 *   13          FD      u32 count (1..16); the fds themselves travel as
 *                       SCM_RIGHTS on the sendmsg whose data begins with
 *                       this frame's header
 *   >= 0x80000000       user tags, raw bytes (Sandbox2's custom tags)
 *
 * Every other tag is an error. A receiver checks the header before it
 * allocates anything: an unknown tag, a length over its maximum message size
 * (default 64 MiB), or a length wrong for a fixed-size tag is a protocol
 * error. So are an FD frame whose count differs from the fds that came with
 * it, fds that come with any other frame, and EOF in the middle of a frame.
 * After a protocol error the channel is broken on that side.
 *
 * A sender writes each frame with one sendmsg call (more only when the
 * socket buffer fills), so that fds are attached to the frame's first byte.
 */
import { CommsError } from "./error.ts";

export const HEADER_SIZE = 8;
export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;
/** The largest length a header can say (u32). */
export const LENGTH_LIMIT = 0xffff_ffff;
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Where the sandboxee finds its end of the channel (BUNBOX_COMMS_FD in C). */
export const DEFAULT_COMMS_FD = 1023;
/** Most fds one FD frame carries. */
export const MAX_FDS = 16;
export const USER_TAG_MIN = 0x8000_0000;

/** A time limit in ms: a number >= 0, or Infinity. */
export function checkTimeout(ms: number, what: string): number {
  if (typeof ms !== "number" || Number.isNaN(ms) || ms < 0) {
    throw new CommsError("argument", `${what}: timeoutMs must be a number >= 0 or Infinity, not ${ms}`);
  }
  return ms;
}

/**
 * The limits of one end of a channel (host or client), checked: the largest
 * payload and the time limit of each call.
 */
export function channelLimits(
  options: { maxMessageSize?: number; timeoutMs?: number },
  who: string,
): { maxMessageSize: number; timeoutMs: number } {
  const max = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  if (!Number.isInteger(max) || max < 0 || max > LENGTH_LIMIT) {
    throw new CommsError("argument", `${who}: maxMessageSize must be an integer in 0..${LENGTH_LIMIT}, not ${max}`);
  }
  return { maxMessageSize: max, timeoutMs: checkTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, who) };
}

export const TAG = {
  BOOL: 1,
  INT8: 2,
  INT16: 3,
  INT32: 4,
  INT64: 5,
  UINT8: 6,
  UINT16: 7,
  UINT32: 8,
  UINT64: 9,
  STRING: 10,
  BYTES: 11,
  JSON: 12,
  FD: 13,
} as const;

export type Kind =
  | "bool" | "int8" | "int16" | "int32" | "int64" | "uint8" | "uint16" | "uint32" | "uint64"
  | "string" | "bytes" | "json" | "fd" | "user";

const KINDS: readonly Kind[] = [
  "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "string", "bytes", "json", "fd",
];

/** Payload size of the fixed-size tags. */
const FIXED_SIZE: Readonly<Record<number, number>> = {
  [TAG.BOOL]: 1,
  [TAG.INT8]: 1,
  [TAG.INT16]: 2,
  [TAG.INT32]: 4,
  [TAG.INT64]: 8,
  [TAG.UINT8]: 1,
  [TAG.UINT16]: 2,
  [TAG.UINT32]: 4,
  [TAG.UINT64]: 8,
  [TAG.FD]: 4,
};

export function isUserTag(tag: number): boolean {
  return Number.isInteger(tag) && tag >= USER_TAG_MIN && tag <= LENGTH_LIMIT;
}

export function kindOf(tag: number): Kind | undefined {
  if (isUserTag(tag)) return "user";
  return KINDS[tag - 1];
}

/** "INT32", "USER 0x80000001", "tag 42". */
export function tagName(tag: number): string {
  const kind = kindOf(tag);
  if (kind === "user") return `USER 0x${tag.toString(16)}`;
  return kind ? kind.toUpperCase() : `tag ${tag}`;
}

/** What is wrong with a frame header, or undefined. Checked before any allocation. */
export function headerError(tag: number, length: number, maxMessageSize: number): string | undefined {
  if (kindOf(tag) === undefined) return `unknown tag ${tag} (0x${tag.toString(16)}) in a frame header`;
  const fixed = FIXED_SIZE[tag];
  if (fixed !== undefined && length !== fixed) {
    return `${tagName(tag)} frame with a ${length}-byte payload (${tagName(tag)} is exactly ${fixed} bytes)`;
  }
  if (length > maxMessageSize) {
    return `${tagName(tag)} frame of ${length} bytes is over the message size limit of ${maxMessageSize} bytes`;
  }
  return undefined;
}

/** A frame as it left the wire: tag, payload, and the fds that came with it. */
export interface RawFrame {
  tag: number;
  body: Uint8Array;
  fds: number[];
}

export type Message =
  | { kind: "bool"; tag: number; value: boolean }
  | { kind: "int8" | "int16" | "int32" | "uint8" | "uint16" | "uint32"; tag: number; value: number }
  | { kind: "int64" | "uint64"; tag: number; value: bigint }
  | { kind: "string"; tag: number; value: string }
  | { kind: "bytes"; tag: number; value: Uint8Array }
  | { kind: "json"; tag: number; value: unknown }
  | { kind: "fd"; tag: number; value: number[] }
  | { kind: "user"; tag: number; value: Uint8Array };

export type IntKind = "int8" | "int16" | "int32" | "int64" | "uint8" | "uint16" | "uint32" | "uint64";

const INT_RANGE: Readonly<Record<IntKind, readonly [bigint, bigint]>> = {
  int8: [-(1n << 7n), (1n << 7n) - 1n],
  int16: [-(1n << 15n), (1n << 15n) - 1n],
  int32: [-(1n << 31n), (1n << 31n) - 1n],
  int64: [-(1n << 63n), (1n << 63n) - 1n],
  uint8: [0n, (1n << 8n) - 1n],
  uint16: [0n, (1n << 16n) - 1n],
  uint32: [0n, (1n << 32n) - 1n],
  uint64: [0n, (1n << 64n) - 1n],
};

export function tagOf(kind: Exclude<Kind, "user">): number {
  return KINDS.indexOf(kind) + 1;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** An integer's payload; `what` names the call in the error. */
export function encodeInt(kind: IntKind, v: number | bigint, what: string): Uint8Array {
  const [min, max] = INT_RANGE[kind];
  const size = FIXED_SIZE[tagOf(kind)]!;
  const out = new Uint8Array(size);
  if (size < 8) {
    // Without BigInt (the common case): the low bytes of two's complement.
    const n = typeof v === "bigint" ? (v >= min && v <= max ? Number(v) : NaN) : v;
    if (!Number.isInteger(n) || n < Number(min) || n > Number(max)) throw outOfRange(v, min, max, what);
    for (let i = 0; i < size; i++) out[i] = (n >>> (8 * i)) & 0xff;
    return out;
  }
  const b = typeof v === "bigint" ? v : Number.isSafeInteger(v) ? BigInt(v) : undefined;
  if (b === undefined || b < min || b > max) throw outOfRange(v, min, max, what);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, b), true);
  return out;
}

function outOfRange(v: unknown, min: bigint, max: bigint, what: string): CommsError {
  return new CommsError("argument", `${what}: ${String(v)} is not an integer in ${min}..${max}`);
}

export function encodeString(s: string, what: string): Uint8Array {
  if (typeof s !== "string") throw new CommsError("argument", `${what}: ${typeof s} is not a string`);
  return encoder.encode(s);
}

export function encodeJson(value: unknown, what: string): Uint8Array {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new CommsError("argument", `${what}: the value cannot be serialised as JSON: ${(e as Error).message}`);
  }
  if (text === undefined) throw new CommsError("argument", `${what}: ${typeof value} has no JSON form`);
  return encoder.encode(text);
}

/** An FD frame's payload; checks the fds. */
export function encodeFdCount(fds: readonly number[], what: string): Uint8Array {
  if (!Array.isArray(fds) || fds.length < 1 || fds.length > MAX_FDS) {
    throw new CommsError("argument", `${what}: an FD frame carries 1 to ${MAX_FDS} fds, not ${fds?.length}`);
  }
  for (const fd of fds) {
    if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fff_ffff) throw new CommsError("argument", `${what}: bad fd ${fd}`);
  }
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, fds.length, true);
  return out;
}

/** The 8-byte header of a frame. */
export function encodeHeader(tag: number, length: number): Uint8Array {
  const head = new Uint8Array(HEADER_SIZE);
  const dv = new DataView(head.buffer);
  dv.setUint32(0, tag, true);
  dv.setUint32(4, length, true);
  return head;
}

/** Checks a payload this side is about to send against its own limit. */
export function checkOutgoing(body: Uint8Array, maxMessageSize: number, what: string): void {
  if (!(body instanceof Uint8Array)) throw new CommsError("argument", `${what}: the payload is not a Uint8Array`);
  if (body.length > maxMessageSize) {
    throw new CommsError(
      "argument",
      `${what}: ${body.length} bytes is over the message size limit of ${maxMessageSize} bytes`,
    );
  }
}

/** Checks a user tag for sendTagged. */
export function checkUserTag(tag: number, what: string): void {
  if (!isUserTag(tag)) {
    throw new CommsError("argument", `${what}: ${tag} is not a user tag (0x80000000..0xffffffff)`);
  }
}

function protocol(message: string): CommsError {
  return new CommsError("protocol", message);
}

/** The value of a frame; CommsError "protocol" for a payload its type forbids. */
export function decode(frame: RawFrame): Message {
  const { tag, body, fds } = frame;
  const kind = kindOf(tag);
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  switch (kind) {
    case "bool":
      if (body[0]! > 1) throw protocol(`BOOL frame holds ${body[0]}, not 0 or 1`);
      return { kind, tag, value: body[0] === 1 };
    case "int8": return { kind, tag, value: dv.getInt8(0) };
    case "int16": return { kind, tag, value: dv.getInt16(0, true) };
    case "int32": return { kind, tag, value: dv.getInt32(0, true) };
    case "int64": return { kind, tag, value: dv.getBigInt64(0, true) };
    case "uint8": return { kind, tag, value: dv.getUint8(0) };
    case "uint16": return { kind, tag, value: dv.getUint16(0, true) };
    case "uint32": return { kind, tag, value: dv.getUint32(0, true) };
    case "uint64": return { kind, tag, value: dv.getBigUint64(0, true) };
    case "string": return { kind, tag, value: decodeText(body, "STRING") };
    case "bytes": return { kind, tag, value: body };
    case "json": {
      const text = decodeText(body, "JSON");
      try {
        return { kind, tag, value: JSON.parse(text) };
      } catch (e) {
        throw protocol(`JSON frame is not valid JSON: ${(e as Error).message}`);
      }
    }
    case "fd": return { kind, tag, value: fds };
    case "user": return { kind, tag, value: body };
    default: throw protocol(`unknown tag ${tag}`);
  }
}

function decodeText(body: Uint8Array, name: string): string {
  try {
    return decoder.decode(body);
  } catch {
    throw protocol(`${name} frame is not valid UTF-8`);
  }
}

/**
 * The value of a frame that must be of `kind` (for "user", of `userTag` when
 * given); CommsError "type" otherwise. recvFd wants exactly one fd.
 */
export function decodeAs(frame: RawFrame, kind: Kind, what: string, userTag?: number): Message {
  const got = kindOf(frame.tag);
  const want = kind === "user" ? (userTag === undefined ? "a USER frame" : tagName(userTag)) : kind.toUpperCase();
  if (got !== kind || (userTag !== undefined && frame.tag !== userTag)) {
    throw new CommsError("type", `${what}: expected ${want}, got ${tagName(frame.tag)} (${frame.body.length} bytes)`);
  }
  return decode(frame);
}
