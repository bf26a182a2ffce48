/**
 * Reactor tokens (src/native/reactor.ts): the reactor thread (csrc/monitor.c)
 * reports readiness by a token, and the JavaScript side finds the handler by
 * it. Tokens wrap after 2^31; a watch that stays open across the wrap (a long
 * run's pidfd, its comms socket) must keep its token: a newcomer given the
 * same one would take over its events, and closing either would drop both.
 */
import { expect, test } from "bun:test";
import { writeSync } from "node:fs";
import { socketpair } from "../../src/native/comms.ts";
import { _setNextToken, EPOLLIN, openWatches, watch } from "../../src/native/reactor.ts";
import { closeFd } from "../../src/native/sys.ts";

function pair(): [number, number] {
  const p = socketpair();
  if (typeof p === "number") throw new Error(`socketpair: ${p}`);
  return p;
}

test("a watch open across the token wrap keeps its events; the newcomer gets another token", async () => {
  const [a, a2] = pair();
  const [b, b2] = pair();
  const seen: string[] = [];
  let wake!: () => void;
  const arrived = () => new Promise<void>((r) => (wake = r));

  _setNextToken(1);
  const old = watch(a, EPOLLIN, () => (seen.push("old"), wake()));
  _setNextToken(0x7fffffff); // the last token before the wrap, then 1 again: the old watch's
  const last = watch(b, EPOLLIN, () => (seen.push("last"), wake()));
  const [c, c2] = pair();
  const fresh = watch(c, EPOLLIN, () => (seen.push("fresh"), wake()));

  let next = arrived();
  writeSync(a2, "x");
  await next;
  expect(seen).toEqual(["old"]);

  next = arrived();
  writeSync(c2, "x");
  await next;
  expect(seen).toEqual(["old", "fresh"]);

  // Closing the newcomer must not take the old watch's handler with it.
  fresh.close();
  expect(old.rearm()).toBe(0);
  next = arrived();
  writeSync(a2, "y");
  await next;
  expect(seen).toEqual(["old", "fresh", "old"]);

  for (const w of [old, last]) w.close();
  expect(openWatches()).toBe(0);
  for (const fd of [a, a2, b, b2, c, c2]) closeFd(fd);
});
