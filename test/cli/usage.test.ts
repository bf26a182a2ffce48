/**
 * Bad input never starts a sandbox and never prints a stack trace: one line
 * naming the option, path or field, and exit 2 (usage, policy) or 125
 * (bunbox's own failure). Every subcommand and every option, as a new user
 * and as a hostile caller would give them, run through the built executable.
 * --help and --version exit 0 wherever they are given.
 */
import { describe, expect, test } from "bun:test";
import { bunbox, DIR, type Run } from "../helpers.ts";

/** No stack frame, no message from Bun itself ("error: …" at a line's start). */
function expectNoTrace(r: Run): void {
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stderr).not.toMatch(/^error: /m);
  expect(r.stderr).not.toMatch(/\bat .*\.ts:\d+|\$bunfs/);
}

async function bad(args: string[], code: number, ...needles: (string | RegExp)[]) {
  const r = await bunbox(args, { bare: true });
  expect({ args, code: r.code }).toEqual({ args, code });
  expect(r.stdout).toBe("");
  expect(r.stderr.split("\n").filter(Boolean).length).toBe(1);
  expect(r.stderr).toStartWith("bunbox: ");
  expectNoTrace(r);
  for (const n of needles) expect(r.stderr).toMatch(n);
}

const T = ["--", "/bin/true"];

/** [what, arguments, what stderr must say (the option first)]; each exits 2. */
const USAGE: [string, string[], ...string[]][] = [
  // the top level
  ["no command", [], "COMMAND: missing", "one of run, learn, policy, syscalls"],
  ["unknown command", ["frobnicate"], "frobnicate: unknown command"],
  ["an option before the command", ["--bogus"], "--bogus: unknown option"],
  ["a short option before the command", ["-x", "run"], "-x: unknown option"],
  ["help for an unknown command", ["help", "nosuch"], "nosuch: unknown command"],
  // run: the parser
  ["run with no command", ["run"], "no command given"],
  ["run -- with no command", ["run", "--"], "no command given"],
  ["run with options and no command", ["run", "--json"], "no command given"],
  ["unknown option", ["run", "--memory", "1G", ...T], "--memory: unknown option"],
  ["unknown short option", ["run", "-x", ...T], "-x: unknown option"],
  ["grouped short options", ["run", "-vq", ...T], "-vq: unknown option", "one letter"],
  ["--no- negation", ["run", "--no-json", ...T], "--no-json: unknown option"],
  ["camelCase spelling", ["run", "--timeLimit", "5", ...T], "--timeLimit: unknown option"],
  ["a flag with a value", ["run", "--json=yes", ...T], "--json: takes no value"],
  ["a flag with an empty value", ["run", "--quiet=", ...T], "--quiet: takes no value"],
  ["a value missing at the end", ["run", "--time-limit"], "--time-limit: needs a value"],
  ["an empty value", ["run", "--time-limit=", ...T], "--time-limit: needs a value", "empty"],
  ["a value forgotten before --", ["run", "--dir", ...T], "--dir: needs a value (DST), not \"--\""],
  ["a value forgotten before -- (a list)", ["run", "--unsetenv", "--", "/bin/true"], "--unsetenv: needs a value"],
  ["an empty policy path", ["run", "--policy", "", ...T], "--policy: needs a value", "empty"],
  ["an empty cwd", ["run", "--cwd", "", ...T], "--cwd: needs a value"],
  ["a scalar given twice", ["run", "--time-limit", "5", "--time-limit", "6", ...T], "--time-limit: given twice"],
  ["a profile given twice", ["run", "--profile", "shell", "--profile=minimal", ...T], "--profile: given twice"],
  ["--policy with --profile", ["run", "--policy", "/etc/hostname", "--profile", "shell", ...T], "--policy", "not both"],
  // run: numbers and units
  ["duration: not a number", ["run", "--time-limit", "soon", ...T], "--time-limit", "not a duration"],
  ["duration: negative", ["run", "--time-limit", "-1", ...T], "--time-limit", "not a duration"],
  ["duration: exponent", ["run", "--time-limit", "1e9", ...T], "--time-limit", "not a duration"],
  ["duration: unknown unit", ["run", "--time-limit", "5parsecs", ...T], "--time-limit", "not a duration"],
  ["duration: huge", ["run", "--time-limit", "99999999999999999999", ...T], "--time-limit", "too large"],
  ["cpu: past 2^64 s (wrapped to 0 in the rlimit)", ["run", "--cpu-limit", "18446744073709551616", ...T], "--cpu-limit", "too large"],
  ["cpu: not a number", ["run", "--cpu-limit", "lots", ...T], "--cpu-limit", "not a duration"],
  ["size: unknown unit", ["run", "--memory-limit", "12Q", ...T], '--memory-limit: "12Q" is not a size'],
  ["size: negative", ["run", "--max-file-size", "-1", ...T], "--max-file-size", "not a size"],
  ["size: huge", ["run", "--memory-limit", "99999T", ...T], "--memory-limit", "too large"],
  ["memory 0", ["run", "--memory-limit", "0", ...T], "--memory-limit", "smallest limit bunbox accepts"],
  ["memory below what a sandbox's cgroup counts at its start", ["run", "--memory-limit", "1M", ...T], "--memory-limit: 1M is below 4M"],
  ["address space below exec's own needs", ["run", "--address-space-limit", "64K", ...T], "--address-space-limit: 64K is below 1M"],
  ["cpus: not a number", ["run", "--cpus", "all", ...T], "--cpus", "not a number of CPUs"],
  ["cpus: 0", ["run", "--cpus", "0", ...T], "--cpus", "not a number of CPUs above 0"],
  ["cpus: below the kernel's smallest quota (was raised to 0.01 silently)", ["run", "--cpus", "0.001", ...T], "--cpus: 0.001 CPUs cannot be enforced", "from 0.01"],
  ["cpus: past 4096 (was 'not a number of CPUs above 0')", ["run", "--cpus", "5000", ...T], "--cpus: 5000 CPUs cannot be enforced", "to 4096"],
  ["count: past PID_MAX_LIMIT (was SETUP_ERROR: pids.max: EINVAL, exit 125)", ["run", "--max-procs", "4194305", ...T], "--max-procs: 4194305 is more processes than Linux can have"],
  ["count: negative", ["run", "--max-procs", "-3", ...T], "--max-procs", "not a whole number"],
  ["count: fraction", ["run", "--max-procs", "1.5", ...T], "--max-procs", "not a whole number"],
  ["count: huge", ["run", "--max-procs", "99999999999999999999", ...T], "--max-procs", "too large"],
  ["files: 0 (was EMFILE after 10 s)", ["run", "--max-files", "0", ...T], "--max-files: 0 cannot work", "at least 4"],
  ["files: 3", ["run", "--max-files", "3", ...T], "--max-files: 3 cannot work", "seccomp listener"],
  ["files: not a number", ["run", "--max-files", "many", ...T], "--max-files", "not a whole number"],
  ["uid: negative", ["run", "--uid", "-1", ...T], "--uid", "not a whole number"],
  ["uid: (uid_t)-1", ["run", "--uid", "4294967295", ...T], "--uid: 4294967295 is not a valid id"],
  ["gid: a name", ["run", "--gid", "root", ...T], "--gid", "not a whole number"],
  // run: paths, names, modes
  ["missing mount source", ["run", "--ro", "/no/such/path", ...T], "--ro /no/such/path", "does not exist"],
  ["relative source path", ["run", "--rw", "data:/data", ...T], "--rw data:/data", "must be absolute"],
  ["relative destination path", ["run", "--ro", "/etc:etc2", ...T], "--ro /etc:etc2", "must be absolute"],
  ["mount source missing before :", ["run", "--ro", ":/x", ...T], "--ro", "no source path"],
  [".. in a destination", ["run", "--ro", "/etc:/x/../y", ...T], "--ro /etc:/x/../y", '".." is not allowed'],
  ["a file as the sandbox's root", ["run", "--ro", "/etc/passwd:/", ...T], "--ro /etc/passwd:/", "the sandbox's root must be a directory"],
  ["the host's / as the sandbox's root", ["run", "--ro", "/:/", ...T], "--ro /:/", "would show the host's /proc"],
  ["tmpfs: bad size", ["run", "--tmpfs", "/t:lots", ...T], "--tmpfs /t:lots", "not a size"],
  ["tmpfs: size 0 (the kernel's 'half of the RAM')", ["run", "--tmpfs", "/t:0", ...T], "--tmpfs /t:0", "at least 1 byte"],
  ["tmpfs: relative", ["run", "--tmpfs", "t", ...T], "--tmpfs t", "must be absolute"],
  ["cwd: relative", ["run", "--cwd", "work", ...T], "--cwd", "must be absolute"],
  ["missing policy file", ["run", "--policy", "/no/policy.json", ...T], "--policy: /no/policy.json: no such file"],
  ["policy file is a directory", ["run", "--policy", "/etc", ...T], "--policy: /etc", "EISDIR"],
  ["unknown profile", ["run", "--profile", "nope", ...T], '--profile: unknown profile "nope"'],
  ["a profile named after Object.prototype", ["run", "--profile", "toString", ...T], '--profile: unknown profile "toString"'],
  ["bad network mode", ["run", "--net", "wifi", ...T], '--net: "wifi" is not one of none, loopback, host'],
  ["bad hostname", ["run", "--hostname", "-bad", ...T], "--hostname"],
  ["env without =", ["run", "--env", "FOO", ...T], '--env: "FOO" is not NAME=VALUE'],
  ["env without a name", ["run", "--env", "=x", ...T], '--env: "=x" is not NAME=VALUE'],
  ["keep-env: not a name", ["run", "--keep-env", "1BAD", ...T], '--keep-env: "1BAD" is not a variable name'],
  ["result file in a missing directory", ["run", "--result-file", "/no/such/dir/r.json", ...T], "--result-file: /no/such/dir/r.json", "ENOENT"],
  ["result file that cannot be written", ["run", "--result-file", "/proc/nope/x", ...T], "--result-file"],
  // policy
  ["policy with no subcommand", ["policy"], "policy COMMAND: missing", "one of check, explain"],
  ["policy: unknown subcommand", ["policy", "bogus"], "bogus: unknown command", "one of check, explain"],
  ["policy: an option before the subcommand", ["policy", "--bogus"], "--bogus: unknown option"],
  ["policy check with no file", ["policy", "check"], "policy check FILE: missing"],
  ["policy check: an empty file name", ["policy", "check", ""], "policy check FILE", "empty"],
  ["policy check: two files", ["policy", "check", "/a.json", "/b.json"], 'policy check: unexpected argument "/b.json"'],
  ["policy check: unknown option", ["policy", "check", "--json", "/a.json"], "--json: unknown option"],
  ["policy check: a missing file", ["policy", "check", "/no/such.json"], "/no/such.json: no such file"],
  ["policy check: not JSON", ["policy", "check", "/etc/hostname"], "/etc/hostname:1:1: not valid JSON"],
  ["policy explain with neither file nor profile", ["policy", "explain"], "policy explain", "name a policy FILE or --profile"],
  ["policy explain: --profile without a value", ["policy", "explain", "--profile"], "--profile: needs a value"],
  ["policy explain: unknown profile", ["policy", "explain", "--profile", "nope"], '--profile: unknown profile "nope"'],
  ["policy explain: unknown arch", ["policy", "explain", "--profile", "minimal", "--arch", "i386"], '--arch: "i386" is not one of x86_64, aarch64'],
  ["policy explain: arch from Object.prototype", ["policy", "explain", "--profile", "minimal", "--arch", "constructor"], '--arch: "constructor" is not one of'],
  ["policy explain: file and profile", ["policy", "explain", "/a.json", "--profile", "minimal"], "--profile", "not both"],
  ["policy explain: --arch with a file", ["policy", "explain", "/etc/hostname", "--arch", "aarch64"], "--arch: goes with --profile"],
  ["policy explain: a flag with a value", ["policy", "explain", "--profile", "minimal", "--all=1"], "--all: takes no value"],
  // syscalls
  ["syscalls: unknown option", ["syscalls", "--bogus"], "--bogus: unknown option"],
  ["syscalls: an argument", ["syscalls", "nosuch"], 'syscalls: unexpected argument "nosuch"'],
  ["syscalls: an argument after --", ["syscalls", "--", "x86_64"], 'syscalls: unexpected argument "x86_64"'],
  ["syscalls: --arch without a value", ["syscalls", "--arch"], "--arch: needs a value"],
  ["syscalls: unknown arch", ["syscalls", "--arch", "i386"], '--arch: "i386" is not one of x86_64, aarch64'],
  ["syscalls: arch from Object.prototype", ["syscalls", "--arch", "constructor"], '--arch: "constructor" is not one of'],
  ["syscalls: --arch twice", ["syscalls", "--arch", "x86_64", "--arch", "aarch64"], "--arch: given twice"],
  ["syscalls: a flag with a value", ["syscalls", "--json=no"], "--json: takes no value"],
];

describe("usage errors: exit 2, one line naming the option, no stack trace", () => {
  for (const [what, args, ...needles] of USAGE) {
    test(what, () => bad(args, 2, ...needles));
  }
  test("setup failure names the stage: 125", () => bad(["run", "--cwd", "/nonexistent", ...T], 125, "SETUP_ERROR: cwd /nonexistent: ENOENT"));
});

describe("the smallest values the checks accept do work", () => {
  test("--max-files 4, --address-space-limit 1M (a program without libc)", async () => {
    const r = await bunbox(["run", "--max-files", "4", "--address-space-limit", "1M", "--ro", `${DIR}:/fx`, "--", "/fx/minimal"], { bare: true });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("minimal: hello\n");
  });

  test("a duration under 1 ms is 1 ms, not 0 (no limit)", async () => {
    const r = await bunbox(["run", "--time-limit", "0.0001", "--json", "--", "/bin/sleep", "5"], { bare: true });
    expect(r.code).toBe(124);
    expect(r.stderr).toContain("TIMEOUT");
  });
});

/** [arguments, what stdout must hold]: exit 0, nothing on stderr. */
const HELP: [string[], string][] = [
  [["--help"], "USAGE bunbox run|learn|policy|syscalls"],
  [["-h"], "USAGE bunbox run|learn|policy|syscalls"],
  [["help"], "USAGE bunbox run|learn|policy|syscalls"],
  [["help", "run"], "USAGE bunbox run [OPTIONS]"],
  [["help", "policy", "check"], "USAGE bunbox policy check [OPTIONS] <FILE>"],
  [["run", "--help"], "USAGE bunbox run [OPTIONS]"],
  [["run", "--memory-limit", "1G", "-h", "--bogus"], "USAGE bunbox run [OPTIONS]"],
  [["policy", "--help"], "USAGE bunbox policy check|explain"],
  [["policy", "check", "--help"], "USAGE bunbox policy check [OPTIONS] <FILE>"],
  [["policy", "explain", "-h"], "USAGE bunbox policy explain [OPTIONS] [FILE]"],
  [["syscalls", "--help"], "USAGE bunbox syscalls [OPTIONS]"],
  [["--version"], "bunbox 0."],
  [["-V"], "bunbox 0."],
  [["run", "--version"], "bunbox 0."],
  [["policy", "--version"], "bunbox 0."],
  [["policy", "check", "--version"], "bunbox 0."],
  [["syscalls", "-V"], "bunbox 0."],
];

describe("help and version: exit 0 wherever asked", () => {
  for (const [args, needle] of HELP) {
    test(args.join(" "), async () => {
      const r = await bunbox(args, { bare: true });
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: "" });
      expect(r.stdout).toContain(needle);
      expect(r.stdout).not.toContain("\x1b"); // no colours into a pipe
    });
  }

  test("run --help lists every option", async () => {
    const r = await bunbox(["run", "--help"], { bare: true });
    expect(r.code).toBe(0);
    for (const o of ["--policy", "--profile", "--ro", "--rw", "--tmpfs", "--net", "--cwd", "--env", "--keep-env", "--hostname", "--uid", "--gid", "--time-limit", "--cpu-limit", "--memory-limit", "--max-procs", "--max-files", "--max-file-size", "--json", "--result-file", "--verbose", "--quiet"]) {
      expect(r.stdout).toContain(o);
    }
  });

  test("after --, --help is the command's (not found here: 127)", async () => {
    const r = await bunbox(["run", "--", "--help"], { bare: true });
    expect(r.code).toBe(127);
    expect(r.stderr).toContain("--help: command not found");
  });
});
