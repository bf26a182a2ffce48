/**
 * Both ends of a channel check their limits alike (wire.ts channelLimits,
 * checkTimeout): the host's Comms and the sandboxee's ClientComms refuse a
 * maximum message size outside 0..2^32-1 and a time limit that is not a
 * number >= 0 or Infinity, at construction and on each call, before
 * anything is sent. (ClientComms once took a NaN or negative time limit and
 * polled with it.)
 */
import { describe, expect, test } from "bun:test";
import { ClientComms } from "../../src/comms/client.ts";
import { Comms } from "../../src/comms/comms.ts";
import { CommsError } from "../../src/comms/error.ts";
import { socketpair } from "../../src/native/comms.ts";
import { closeFd } from "../../src/native/sys.ts";

function pair(): [number, number] {
  const r = socketpair();
  if (typeof r === "number") throw new Error(`socketpair: ${r}`);
  return r;
}

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof CommsError ? `${e.code}: ${e.message}` : String(e);
  }
  return undefined;
}

const BAD: [string, { maxMessageSize?: number; timeoutMs?: number }, string][] = [
  ["a negative time limit", { timeoutMs: -1 }, "timeoutMs must be a number >= 0 or Infinity, not -1"],
  ["a NaN time limit", { timeoutMs: Number.NaN }, "timeoutMs must be a number >= 0 or Infinity, not NaN"],
  ["a fractional size", { maxMessageSize: 1.5 }, "maxMessageSize must be an integer in 0..4294967295, not 1.5"],
  ["a size past u32", { maxMessageSize: 2 ** 32 }, "maxMessageSize must be an integer in 0..4294967295, not 4294967296"],
];

describe("channel limits", () => {
  for (const [what, options, message] of BAD) {
    test(`${what} is refused by Comms and ClientComms alike`, () => {
      const [a, b] = pair();
      expect(codeOf(() => new Comms(a, options))).toBe(`argument: Comms: ${message}`);
      expect(codeOf(() => new ClientComms(b, options))).toBe(`argument: ClientComms: ${message}`);
      closeFd(a);
      closeFd(b);
    });
  }

  test("a bad time limit on one call of ClientComms is refused before anything is sent", () => {
    const [a, b] = pair();
    const client = new ClientComms(b);
    expect(codeOf(() => client.sendBool(true, { timeoutMs: -5 }))).toBe("argument: sendBool: timeoutMs must be a number >= 0 or Infinity, not -5");
    expect(codeOf(() => client.recvBool({ timeoutMs: Number.NaN }))).toBe("argument: recvBool: timeoutMs must be a number >= 0 or Infinity, not NaN");
    // Nothing went out, and the channel still works.
    client.sendBool(true, { timeoutMs: 0 });
    const host = new Comms(a);
    return host.recvBool({ timeoutMs: 1000 }).then((v) => {
      expect(v).toBe(true);
      host.close();
      closeFd(b);
    });
  });
});
