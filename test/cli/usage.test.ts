/**
 * Bad input never starts a sandbox and never prints a stack trace: one line
 * naming the option, path or field, and exit 2 (usage, policy) or 125
 * (bunbox's own failure).
 */
import { describe, expect, test } from "bun:test";
import { bunbox } from "../helpers.ts";

async function bad(args: string[], code: number, ...needles: (string | RegExp)[]) {
  const r = await bunbox(args, { bare: true });
  expect(r.code).toBe(code);
  expect(r.stdout).toBe("");
  expect(r.stderr.split("\n").filter(Boolean).length).toBeLessThanOrEqual(3);
  expect(r.stderr).not.toMatch(/\bat .*\.ts:\d+|Error:/);
  for (const n of needles) expect(r.stderr).toMatch(n);
}

describe("bad input", () => {
  test("unknown option", () => bad(["run", "--memory", "1G", "--", "true"], 2, "--memory: unknown option"));
  test("unknown short option", () => bad(["run", "-x", "--", "true"], 2, "-x: unknown option"));
  test("unknown command", () => bad(["frobnicate"], 2, "frobnicate: unknown command"));
  test("no command", () => bad(["run", "--json"], 2, "no command given"));
  test("option without its value", () => bad(["run", "--time-limit"], 2, "--time-limit: needs a value"));
  test("bad size", () => bad(["run", "--memory-limit", "12Q", "--", "true"], 2, '--memory-limit: "12Q" is not a size'));
  test("bad tmpfs size", () => bad(["run", "--tmpfs", "/t:lots", "--", "true"], 2, "--tmpfs /t:lots", "not a size"));
  test("tmpfs size 0 (the kernel's 'half of the RAM')", () => bad(["run", "--tmpfs", "/t:0", "--", "true"], 2, "--tmpfs /t:0", "at least 1 byte"));
  test("a mount onto the sandbox's root", () => bad(["run", "--ro", "/tmp:/", "--", "true"], 2, "--ro /tmp:/", "root cannot be a mount destination"));
  test("--memory-limit 0", () => bad(["run", "--memory-limit", "0", "--", "true"], 2, "--memory-limit", "no address space"));
  test("bad duration", () => bad(["run", "--time-limit", "soon", "--", "true"], 2, "--time-limit", "not a duration"));
  test("bad count", () => bad(["run", "--max-procs", "-3", "--", "true"], 2, "--max-procs", "not a whole number"));
  test("missing mount source", () => bad(["run", "--ro", "/no/such/path", "--", "true"], 2, "--ro /no/such/path", "does not exist"));
  test("relative source path", () => bad(["run", "--rw", "data:/data", "--", "true"], 2, "--rw data:/data", "must be absolute"));
  test("relative destination path", () => bad(["run", "--ro", "/etc:etc2", "--", "true"], 2, "--ro /etc:etc2", "must be absolute"));
  test(".. in a destination", () => bad(["run", "--ro", "/etc:/x/../y", "--", "true"], 2, '".." is not allowed'));
  test("bad network mode", () => bad(["run", "--net", "wifi", "--", "true"], 2, '--net: "wifi" is not one of none, loopback, host'));
  test("bad hostname", () => bad(["run", "--hostname", "-bad", "--", "true"], 2, "--hostname"));
  test("unknown profile", () => bad(["run", "--profile", "nope", "--", "true"], 2, '--profile: unknown profile "nope"'));
  test("missing policy file", () => bad(["run", "--policy", "/no/policy.json", "--", "true"], 2, "--policy: /no/policy.json: no such file"));
  test("--policy with --profile", () => bad(["run", "--policy", "/etc/hostname", "--profile", "shell", "--", "true"], 2, "not both"));
  test("setup failure names the stage: 125", () => bad(["run", "--cwd", "/nonexistent", "--", "true"], 125, "SETUP_ERROR: cwd /nonexistent: ENOENT"));
  test("unwritable --result-file", () => bad(["run", "--result-file", "/proc/nope/x", "--", "true"], 2, "--result-file"));
});

describe("help and version", () => {
  test("--version", async () => {
    const r = await bunbox(["--version"], { bare: true });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^bunbox \d+\.\d+\.\d+/);
  });
  test("run --help lists every option", async () => {
    const r = await bunbox(["run", "--help"], { bare: true });
    expect(r.code).toBe(0);
    for (const o of ["--policy", "--profile", "--ro", "--rw", "--tmpfs", "--net", "--cwd", "--env", "--keep-env", "--hostname", "--uid", "--gid", "--time-limit", "--cpu-limit", "--memory-limit", "--max-procs", "--max-files", "--max-file-size", "--json", "--result-file", "--verbose", "--quiet"]) {
      expect(r.stdout).toContain(o);
    }
  });
});
