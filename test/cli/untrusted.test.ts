/**
 * Strings the sandboxee or a hostile caller chose never reach a terminal
 * raw. A sandboxee names its binary with escape sequences (erase the line,
 * write a fake "OK", set the title, a C1 CSI, a bidi override, a newline, a
 * byte that is not UTF-8): the kernel puts that name in /proc/PID/maps and
 * bunbox names the mapping in the VIOLATION line. The same for a path in a
 * setup failure and for an option's value in a usage error. bunbox's stderr
 * must hold no ESC, BEL or CSI and no line that is not bunbox's; the JSON
 * Result keeps the exact string.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bunbox, DIR, type Run } from "../helpers.ts";

const HOSTILE = "x\x1b[2K\x1b[1Gbunbox: OK: exit code 0\x1b]0;title\x07\u009b2J\u202e\nz";

/** No control a terminal acts on, and every line is bunbox's (a message, its continuation, or the JSON). */
function expectInert(r: Run): void {
  const bytes = Buffer.from(r.stderr, "utf8");
  expect(bytes.includes(0x1b)).toBe(false); // ESC
  expect(bytes.includes(0x07)).toBe(false); // BEL
  expect(bytes.includes(Buffer.from("\u009b"))).toBe(false); // C1 CSI
  expect(r.stderr).not.toContain("\u202e");
  expect(r.stderr).not.toContain("\r");
  for (const line of r.stderr.split("\n").filter(Boolean)) expect(line).toMatch(/^(bunbox: |  |\{)/);
}

const resultOf = (stderr: string) => JSON.parse(stderr.split("\n").find((l) => l.startsWith("{"))!);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "bunbox-hostile-"));
  chmodSync(dir, 0o755); // the sandboxee runs as nobody when the tests run as root
  // The static probe, so that the syscall's instruction pointer is in the binary's own mapping;
  // its name ends in a byte that is not UTF-8.
  const name = Buffer.concat([Buffer.from(`${dir}/${HOSTILE}`), Buffer.from([0xff])]);
  copyFileSync(`${DIR}/probe-static`, name);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("untrusted strings on bunbox's stderr", () => {
  test("a VIOLATION in a binary whose name holds escape sequences", async () => {
    // The shell finds the name by a glob: an argv string cannot carry the 0xff byte.
    const r = await bunbox(["run", "--json", "--ro", `${dir}:/h`, "--", "/bin/sh", "-c", "exec /h/* ptrace"], { bare: true });
    expect(r.code).toBe(159);
    expectInert(r);
    const line = r.stderr.split("\n").find((l) => l.startsWith("bunbox: VIOLATION"));
    expect(line).toContain("ptrace(0, 0, 0, 0)");
    // Each escape shown; the newline is the kernel's "\012" in maps, its backslash shown as "\\".
    expect(line).toContain(" at x\\x1b[2K\\x1b[1Gbunbox: OK: exit code 0\\x1b]0;title\\x07\\u009b2J\\u202e\\\\012z\\xff+0x");
    expect(line).toMatch(/\(safety rule\)$/);
    // The JSON Result: the name exact (the non-UTF-8 byte as U+DCFF), C1 and bidi as \u escapes.
    const json = r.stderr.split("\n").find((l) => l.startsWith("{"))!;
    expect(json).toContain("\\u009b2J\\u202e");
    expect(resultOf(r.stderr).violation.ipMapping).toStartWith(`${HOSTILE.replace("\n", "\\012")}\udcff+0x`);
  });

  test("-v lists a mount whose path holds escape sequences, made visible", async () => {
    // No ":" in it: that would start the tmpfs's size.
    const r = await bunbox(["run", "-v", "--tmpfs", `/t${HOSTILE.replaceAll(":", "")}`, "--", "/bin/true"], { bare: true });
    expect(r.code).toBe(0);
    expectInert(r);
    expect(r.stderr).toContain("  tmpfs /tx\\x1b[2K\\x1b[1Gbunbox OK exit code 0\\x1b]0;title\\x07\\u009b2J\\u202e\\nz size=");
  });

  test("a setup failure naming such a path (cwd, then the command)", async () => {
    const cwd = await bunbox(["run", "--json", "--cwd", `/${HOSTILE}`, "--", "/bin/true"], { bare: true });
    expect(cwd.code).toBe(125);
    expectInert(cwd);
    expect(cwd.stderr).toContain("SETUP_ERROR: cwd /x\\x1b[2K\\x1b[1Gbunbox: OK: exit code 0\\x1b]0;title\\x07\\u009b2J\\u202e\\nz: ENOENT");
    expect(resultOf(cwd.stderr).setup.detail).toBe(`/${HOSTILE}`);

    const cmd = await bunbox(["run", "--json", "--", `/${HOSTILE}`], { bare: true });
    expect(cmd.code).toBe(127);
    expectInert(cmd);
    expect(cmd.stderr).toContain("SETUP_ERROR: /x\\x1b[2K\\x1b[1Gbunbox: OK: exit code 0\\x1b]0;title\\x07\\u009b2J\\u202e\\nz: command not found");
    expect(resultOf(cmd.stderr).setup.detail).toBe(`/${HOSTILE}`);
  });

  test("a usage error quoting an option's value", async () => {
    const r = await bunbox(["run", "--net", HOSTILE, "--", "/bin/true"], { bare: true });
    expect(r.code).toBe(2);
    expectInert(r);
    expect(r.stderr).toBe('bunbox: error: --net: "x\\x1b[2K\\x1b[1Gbunbox: OK: exit code 0\\x1b]0;title\\x07\\u009b2J\\u202e\\nz" is not one of none, loopback, host, proxy, proxy-transparent\n');
  });

  test("policy check: the file's name and an invalid policy's problems", async () => {
    const file = `${dir}/p${HOSTILE}.json`;
    await Bun.write(file, JSON.stringify({ profile: "minimal", allow: [HOSTILE] }));
    const r = await bunbox(["policy", "check", file], { bare: true });
    expect(r.code).toBe(2);
    expectInert(r);
    expect(r.stderr).toContain('allow.0: unknown syscall "x\\x1b[2K');

    await Bun.write(file, JSON.stringify({ profile: "minimal" }));
    const ok = await bunbox(["policy", "check", file], { bare: true });
    expect(ok.code).toBe(0);
    expect(ok.stdout).not.toContain("\x1b");
    expect(ok.stdout).toStartWith(`${dir}/px\\x1b[2K\\x1b[1Gbunbox: OK: exit code 0\\x1b]0;title\\x07\\u009b2J\\u202e\\nz.json: valid`);
  });
});
