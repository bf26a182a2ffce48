/**
 * `bunbox learn` from the command line: for the programs people sandbox
 * (python3, node, a shell pipeline, a gcc+make build, git), one learning
 * run, then `bunbox run --policy` with what it wrote passes on the first
 * try, on an empty root; --verify, --merge, --format ts and the report.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { bunbox, DIR, FX, NEEDS_ROOT, testUnless } from "../helpers.ts";

const WORK = `${DIR}/work`;
const LEARNEE = `${FX}/learnee`;
let n = 0;
const out = (ext = "json") => `${WORK}/learned-${process.pid}-${++n}.${ext}`;

/** learn, then run under the result: both must do the same. */
async function learnThenRun(command: string[], runOptions: string[] = [], learnOptions: string[] = []) {
  const file = out();
  const learned = await bunbox(["learn", "-o", file, ...runOptions, ...learnOptions, "--", ...command], { bare: true });
  expect(learned.stderr).toContain(`wrote ${file}`);
  const policy = JSON.parse(readFileSync(file, "utf8"));
  const runOpts = runOptions.filter((o, i) => !(o === "--rw" || o === "--ro" || runOptions[i - 1] === "--rw" || runOptions[i - 1] === "--ro"));
  const ran = await bunbox(["run", "--policy", file, ...runOpts, "--", ...command], { bare: true });
  return { learned, ran, policy, file };
}

describe("learn, then run --policy: passes on the first try", () => {
  test("python3", async () => {
    const { learned, ran, policy } = await learnThenRun(["python3", "-c", "import json, os; print(json.dumps({'cwd': os.getcwd()}))"]);
    expect(learned.code).toBe(0);
    expect(ran.stdout).toBe(learned.stdout);
    expect(ran.code).toBe(0);
    expect(policy.filesystem.base).toBe("empty");
    // A different behaviour of the same program is refused.
    const other = await bunbox(["run", "--policy", learnedFile(policy), "--", "python3", "-c", "import socket; socket.socket()"], { bare: true });
    expect(other.code).toBe(159);
  });

  test("node", async () => {
    const { learned, ran } = await learnThenRun(["node", "-e", "console.log([1, 2, 3].map((x) => x * 2).join(','))"]);
    expect(learned.stdout).toBe("2,4,6\n");
    expect(ran.stdout).toBe("2,4,6\n");
    expect(ran.code).toBe(0);
  });

  test("a sh pipeline with coreutils", async () => {
    const cmd = ["/bin/sh", "-c", "ls /etc | sort | head -n 3 | tr a-z A-Z; echo done | wc -c"];
    const { learned, ran } = await learnThenRun(cmd);
    expect(learned.code).toBe(0);
    expect(ran.stdout).toBe(learned.stdout);
    expect(ran.code).toBe(0);
  });

  test("a gcc+make build in a writable project directory", async () => {
    const proj = `${WORK}/proj-${process.pid}`;
    mkdirSync(proj, { recursive: true });
    chmodSync(proj, 0o777);
    writeFileSync(`${proj}/hello.c`, '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n');
    writeFileSync(`${proj}/Makefile`, "hello: hello.c\n\tcc -O1 -o hello hello.c\n");
    const { learned, ran, policy } = await learnThenRun(["make", "-C", proj], ["--rw", proj]);
    expect(learned.code).toBe(0);
    // The learned filesystem holds the project directory, writable: the run needs no --rw.
    expect(policy.filesystem.mounts).toContainEqual({ bind: proj, writable: true });
    expect(ran.stdout).toContain("is up to date"); // built once, by the learning run
    rmSync(`${proj}/hello`);
    const rebuilt = await bunbox(["run", "--policy", learnedFile(policy), "--", "make", "-C", proj], { bare: true });
    expect(rebuilt.code).toBe(0);
    const hello = await bunbox(["run", "--ro", proj, "--", `${proj}/hello`], { bare: true });
    expect(hello.stdout).toBe("hello\n");
    rmSync(proj, { recursive: true, force: true });
  });

  test("git", async () => {
    const repo = `${WORK}/repo-${process.pid}`;
    mkdirSync(repo, { recursive: true });
    const git = (...args: string[]) => Bun.spawnSync(["git", "-c", "user.email=t@t", "-c", "user.name=t", ...args], { cwd: repo });
    git("init", "-q");
    writeFileSync(`${repo}/a.txt`, "a\n");
    git("add", "a.txt");
    git("commit", "-q", "-m", "first");
    Bun.spawnSync(["chmod", "-R", "a+rwX", repo]);
    const cmd = ["git", "-c", "safe.directory=*", "-C", repo, "log", "--format=%s"];
    const { learned, ran } = await learnThenRun(cmd, ["--ro", repo, "--env", "HOME=/tmp"]);
    expect(learned.stdout).toBe("first\n");
    expect(ran.stdout).toBe("first\n");
    expect(ran.code).toBe(0);
    rmSync(repo, { recursive: true, force: true });
  });
});

/** The policy file a test wrote (the JSON object was read from it). */
const files = new WeakMap<object, string>();
function learnedFile(policy: object): string {
  const f = files.get(policy);
  if (f) return f;
  const path = out();
  writeFileSync(path, JSON.stringify(policy));
  files.set(policy, path);
  return path;
}

describe("as a user without privileges", () => {
  // Reading a path out of the sandboxee and /proc/PID/cwd needs ptrace's access: bunbox owns the
  // sandbox's user namespace and is its ancestor (Yama allows that).
  testUnless(NEEDS_ROOT)("learn and verify as user nobody: the paths are read, the policy works", async () => {
    const file = out();
    const r = await bunbox(["learn", "-o", file, "--verify", "--", "python3", "-c", "print(1)"], { bare: true, nobody: true });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("--verify: the command runs under");
    const policy = JSON.parse(readFileSync(file, "utf8"));
    expect(Object.keys(policy.notes.paths)).toContain("/etc/ld.so.cache");
  });
});

describe("--verify, --merge, --format ts, the report", () => {
  test("--verify passes when the policy runs the command as it ran", async () => {
    const r = await bunbox(["learn", "-o", out(), "--verify", "--", LEARNEE, "socket", "1", "1"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("--verify: the command runs under");
  });

  test("--verify fails (exit 3) when the second run needs more than the first did", async () => {
    const dir = `${WORK}/marker-${process.pid}`;
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o777);
    // First run: creates the marker. Second run (the verify): sees it and opens a socket.
    const r = await bunbox(["learn", "-o", out(), "--rw", dir, "--verify", "--", LEARNEE, "marker", dir]);
    expect(r.stdout).toBe("create: 3\n");
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("--verify: the learned policy refuses a call: VIOLATION: socket(AF_INET, SOCK_STREAM, 0)");
    expect(r.stderr).toContain('"allowIf": {"socket":[{"family":"AF_INET","type":"SOCK_STREAM","protocol":0}]}');
    rmSync(dir, { recursive: true, force: true });
  });

  test("--merge adds a run to a learned policy, in place", async () => {
    const file = out();
    await bunbox(["learn", "-o", file, "--", LEARNEE, "socket", "1", "1"]);
    const m = await bunbox(["learn", "--merge", file, "--", LEARNEE, "socket", "2", "2"]);
    expect(m.stderr).toContain("from 2 runs");
    for (const [f, t] of [["1", "1"], ["2", "2"]]) {
      const r = await bunbox(["run", "--policy", file, "--", LEARNEE, "socket", f!, t!]);
      expect(r.code).toBe(0);
    }
    expect(JSON.parse(readFileSync(file, "utf8")).notes.runs.map((r: { command: string[] }) => r.command.slice(1).join(" "))).toEqual([
      "socket 1 1",
      "socket 2 2",
    ]);
  });

  test("--format ts writes a PolicyBuilder module that run --policy loads and --merge reads", async () => {
    const file = out("ts");
    const r = await bunbox(["learn", "-o", file, "--", LEARNEE, "socket", "1", "1"]);
    expect(r.code).toBe(0);
    const text = readFileSync(file, "utf8");
    expect(text).toContain('import type { PolicyBuilder } from "bunbox";');
    expect(text).toContain('.allowPortable([');
    expect(text).toContain('"socket":[{"family":"AF_UNIX","type":"SOCK_STREAM","protocol":0}]');
    const ran = await bunbox(["run", "--policy", file, "--", LEARNEE, "socket", "1", "1"]);
    expect(ran.code).toBe(0);
    const refused = await bunbox(["run", "--policy", file, "--", LEARNEE, "socket", "2", "1"]);
    expect(refused.code).toBe(159);
    const merged = await bunbox(["learn", "--merge", file, "--", LEARNEE, "socket", "2", "1"]);
    expect(merged.stderr).toContain("from 2 runs");
    expect((await bunbox(["run", "--policy", file, "--", LEARNEE, "socket", "2", "1"])).code).toBe(0);
  });

  // The module's first line is a comment holding the learned command line;
  // a U+2028 in an argument ended it (JavaScript's line terminators are
  // more than \r and \n), and what followed ran in bunbox, unsandboxed,
  // when `run --policy` loaded the module.
  test("--format ts: a command line cannot end the module's comment and become code", async () => {
    const file = out("ts");
    const hostile = "x\u2028console.error('INJECTED');//\u2029console.error('INJECTED');//";
    const r = await bunbox(["learn", "-o", file, "--", "/bin/echo", hostile], { bare: true });
    expect(r.code).toBe(0);
    expect(readFileSync(file, "utf8").split(/[\n\u2028\u2029]/)[0]).toStartWith("// Learned by bunbox learn");
    const ran = await bunbox(["run", "--policy", file, "--", "/bin/echo", hostile], { bare: true });
    expect([ran.code, ran.stderr]).toEqual([0, ""]);
  });

  test("-v prints the coverage report; a safety-list call is reported and not learned", async () => {
    const file = out();
    const v = await bunbox(["learn", "-v", "-o", file, "--", LEARNEE, "threads", "2"]);
    expect(v.stderr).toContain("coverage of 1 run");
    expect(v.stderr).toMatch(/ {2}getppid +2 {2}libc\.so\.6\+0x/);
    // The same listing beside the policy it explains.
    const e = await bunbox(["policy", "explain", file], { bare: true });
    expect(e.stdout).toContain("coverage of 1 run");
    expect(e.stdout).toMatch(/allows \d+ of the \d+ syscalls/);
    const s = await bunbox(["learn", "-o", out(), "--", `${FX}/probe`, "ptrace"]);
    expect(s.code).toBe(159);
    expect(s.stderr).toContain('bunbox: warning: a safety rule refused ptrace(0, 0, 0, 0): not learned; to learn it anyway, learn with a policy that relaxes it ("dangerAllowUnsafe": ["ptrace"])');
  });

  test("usage errors: no output, a --merge file bunbox did not learn", async () => {
    const r = await bunbox(["learn", "--", "/bin/true"], { bare: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--output: where should the learned policy go?");
    const hand = out();
    writeFileSync(hand, JSON.stringify({ profile: "default" }));
    const m = await bunbox(["learn", "--merge", hand, "--", "/bin/true"], { bare: true });
    expect(m.code).toBe(2);
    expect(m.stderr).toContain(`${hand}: not a policy bunbox learn wrote`);
  });

  // Where the policy goes is settled before the command runs: "-" was a
  // file named "-"; a directory, or a directory that passes access(2) but
  // takes no file (/proc as root), failed with exit 125 after the whole run.
  test("-o: '-', a directory or a place no file can be made are usage errors before the run; an existing file is replaced", async () => {
    const marker = out("marker");
    const ran = ["sh", "-c", `echo ran > ${marker}`];
    for (const [o, message] of [
      ["-", "--output: -: the command's own output goes to stdout; give a file for the policy"],
      [WORK, `--output: ${WORK}: is a directory; give a file for the policy`],
      ["/proc/learned.json", "--output: /proc/learned.json: cannot be written (ENOENT)"],
    ] as const) {
      const r = await bunbox(["learn", "--rw", WORK, "-o", o, "--", ...ran], { bare: true });
      expect([o, r.code, r.stderr.trim()]).toEqual([o, 2, `bunbox: error: ${message}`]);
    }
    expect(() => readFileSync(marker)).toThrow();
    // A usage error found after -o was opened leaves no empty file behind.
    const fresh = out();
    expect((await bunbox(["learn", "-o", fresh, "--memory-limit", "0", "--", "/bin/true"], { bare: true })).code).toBe(2);
    expect(() => readFileSync(fresh)).toThrow();
    const old = out();
    writeFileSync(old, "not a policy\n");
    const r = await bunbox(["learn", "-o", old, "--", "/bin/true"], { bare: true });
    expect(r.code).toBe(0);
    expect(JSON.parse(readFileSync(old, "utf8")).description).toContain("Learned by bunbox learn");
  });

  // learn took --allow-weaker-limits and dropped it: as a user with no
  // cgroup, `learn --cpus 1` failed whatever it was given, naming the
  // library's limits.cpus and allowWeakerLimits.
  testUnless(NEEDS_ROOT)("as nobody with no cgroup: a CPU limit names --cpus and --allow-weaker-limits, which learn honours", async () => {
    const file = out();
    const r = await bunbox(["learn", "--cpus", "1", "-o", file, "--", "/bin/true"], { bare: true, nobody: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toStartWith("bunbox: error: --cpus: a CPU limit (1) cannot be enforced");
    expect(r.stderr).toContain("or accept no CPU limit with --allow-weaker-limits");
    expect(() => readFileSync(file)).toThrow();
    const weaker = await bunbox(["learn", "--cpus", "1", "--allow-weaker-limits", "--verify", "-o", file, "--", "/bin/true"], { bare: true, nobody: true });
    expect(weaker.code).toBe(0);
    expect(weaker.stderr).toContain("--verify: the command runs under");
  });
});
