/**
 * The CLI's one error path (src/cli/main.ts errorReport): bunbox's own errors
 * are their message and exit code; an invalid policy lists each problem on a
 * line of its own; anything else is an internal error in one line, exit 125,
 * with its stack only when asked for (-v or BUNBOX_DEBUG). Every string in
 * it is made visible.
 */
import { describe, expect, test } from "bun:test";
import { errorReport } from "../../src/cli/main.ts";
import { BunboxError, UsageError } from "../../src/errors.ts";
import { PolicyError } from "../../src/policy/builder.ts";

describe("errorReport", () => {
  test("a UsageError: its message, exit 2", async () => {
    expect(await errorReport(new UsageError("--net", '"wifi" is not one of none'), false)).toEqual({
      lines: ['--net: "wifi" is not one of none'],
      code: 2,
    });
  });

  test("a BunboxError: its message and its exit code; a newline in it cannot start a line", async () => {
    const r = await errorReport(new BunboxError("native", "cannot load /x\nbunbox: OK\x1b[2K"), false);
    expect(r).toEqual({ lines: ["cannot load /x\\nbunbox: OK\\x1b[2K"], code: 125 });
  });

  test("a PolicyError: the heading, then each problem on its own line, each made visible", async () => {
    const e = new PolicyError(['p.json: allow.0: unknown syscall "a\nb\x1b[2K"', "p.json: block: bad"]);
    expect(await errorReport(e, false)).toEqual({
      lines: ["invalid policy:", '  - p.json: allow.0: unknown syscall "a\\nb\\x1b[2K"', "  - p.json: block: bad"],
      code: 2,
    });
  });

  test("anything else: one line, exit 125, no stack unless debugging", async () => {
    const e = new TypeError("undefined is not an object\n\x1b]0;x\x07");
    const quiet = await errorReport(e, false);
    expect(quiet).toEqual({
      lines: ["internal error: TypeError: undefined is not an object\\n\\x1b]0;x\\x07 (BUNBOX_DEBUG=1 shows where)"],
      code: 125,
    });
    const loud = await errorReport(e, true);
    expect(loud.code).toBe(125);
    expect(loud.lines[0]).toBe("internal error: TypeError: undefined is not an object\\n\\x1b]0;x\\x07");
    expect(loud.lines.length).toBeGreaterThan(1);
    for (const l of loud.lines.slice(1)) expect(l).toMatch(/^ {2}at /);
  });

  test("a thrown non-Error", async () => {
    expect(await errorReport("boom", false)).toEqual({
      lines: ["internal error: Error: boom (BUNBOX_DEBUG=1 shows where)"],
      code: 125,
    });
  });
});
