/**
 * Environment variables are names the caller chooses, not keys of a
 * JavaScript object: `__proto__` and `constructor` are variables like any
 * other, and `--keep-env` passes only what bunbox's own environment has.
 */
import { expect, test } from "bun:test";
import { bunbox } from "../helpers.ts";

test("--env __proto__=… and constructor=… reach the sandboxee as variables", async () => {
  const r = await bunbox(["run", "--env", "__proto__=p", "--env", "constructor=c", "--", "/usr/bin/env"], { bare: true });
  expect(r.code).toBe(0);
  expect(r.stdout.split("\n")).toEqual(expect.arrayContaining(["__proto__=p", "constructor=c"]));
});

test("--keep-env of a name bunbox's environment lacks passes nothing (constructor, toString)", async () => {
  const r = await bunbox(["run", "--keep-env", "constructor", "--keep-env", "toString", "--", "/usr/bin/env"], { bare: true });
  expect(r.code).toBe(0);
  expect(r.stdout).not.toContain("constructor=");
  expect(r.stdout).not.toContain("toString=");
  expect(r.stdout.trim().split("\n").map((l) => l.split("=")[0])).toEqual(["PATH", "HOME"]);
});
