/**
 * Environment variables are names the caller chooses, not keys of a
 * JavaScript object: `__proto__` and `constructor` are variables like any
 * other, and `--keep-env` passes only what bunbox's own environment has.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNBOX, bunbox } from "../helpers.ts";

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

/**
 * Bytes that are not UTF-8, in an argument or a passed variable: Bun
 * decodes both as UTF-8 (each invalid byte as U+FFFD), and the sandboxee
 * got the changed string: `bunbox run -- printf %s $'\xff'` printed
 * EF BF BD, `cat $'\xff'` opened another file. Refused instead, by name.
 * The bytes reach bunbox through sh (Bun.spawn passes strings as UTF-8).
 */
describe("bytes that are not UTF-8 are refused, never changed", () => {
  const viaSh = (script: string, env: Record<string, string> = {}) =>
    Bun.spawn(["sh", "-c", script, BUNBOX], { env: { PATH: "/usr/bin:/bin", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const done = async (p: ReturnType<typeof viaSh>) => ({ code: await p.exited, stdout: await new Response(p.stdout).text(), stderr: await new Response(p.stderr).text() });

  test("an argument of the command", async () => {
    const r = await done(viaSh(`exec "$0" run -- /usr/bin/printf %s "$(printf 'a\\377')"`));
    expect([r.code, r.stdout]).toEqual([2, ""]);
    expect(r.stderr).toContain("argument 5 (a\uFFFD): not valid UTF-8");
    // Valid UTF-8, U+FFFD itself among it, passes as it is.
    const ok = await done(viaSh(`exec "$0" run -- /usr/bin/printf %s "é\uFFFD"`));
    expect([ok.code, ok.stdout]).toEqual([0, "é\uFFFD"]);
  });

  test("--keep-env and --env-file", async () => {
    const kept = await done(viaSh(`X="$(printf '\\377')" exec "$0" run --keep-env X -- /usr/bin/env`));
    expect([kept.code, kept.stdout]).toEqual([2, ""]);
    expect(kept.stderr).toContain("--keep-env X: the value of X is not valid UTF-8");
    const dir = mkdtempSync(join(tmpdir(), "bunbox-envfile-"));
    try {
      writeFileSync(join(dir, "env"), Buffer.from([0x41, 0x3d, 0xff, 0x0a]));
      const file = await bunbox(["run", "--env-file", join(dir, "env"), "--", "/usr/bin/env"], { bare: true });
      expect([file.code, file.stdout]).toEqual([2, ""]);
      expect(file.stderr).toContain(`--env-file: ${join(dir, "env")}: not valid UTF-8`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
