/**
 * Policy files (valibot strictObject): a valid file end to end through
 * `bunbox run --policy`, every kind of mistake reported with its dotted path,
 * .ts modules exporting a policy, and `bunbox policy check|explain` and
 * `bunbox syscalls`.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { policyFromJson } from "../../src/policy/file.ts";
import { PolicyError } from "../../src/policy/builder.ts";
import { bunbox, DIR, HOST_ARCH, json, probe } from "../helpers.ts";

const root = resolve(import.meta.dir, "../..");
let n = 0;
function file(body: unknown, ext = "json"): string {
  const p = join(DIR, "work", `policy-${process.pid}-${n++}.${ext}`);
  writeFileSync(p, typeof body === "string" ? body : JSON.stringify(body));
  return p;
}

function problemsOf(json: unknown): string[] {
  try {
    policyFromJson(json, "p.json");
  } catch (e) {
    if (e instanceof PolicyError) return [...e.problems];
    throw e;
  }
  return [];
}

describe("a policy file end to end", () => {
  const policy = {
    description: "stdout only",
    profile: "dynamic",
    rules: [{ syscalls: ["write"], program: [{ arg: 0 }, { jeq: 1, then: "allow" }, "kill"] }],
    block: { getppid: "ENOSYS" },
    hostname: "from-file",
  };

  test("writes to fd 1 pass, to fd 2 are a violation with the fd in it", async () => {
    const p = file(policy);
    const ok = await probe(["ok"], ["--policy", p]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe("ok: 0\n");
    const bad = await probe(["syscall", String(HOST_ARCH.syscalls.write), "2", "0", "1"], ["--policy", p, "--json"]);
    expect(bad.code).toBe(159);
    const v = json(bad.stderr).violation;
    expect(v.syscall).toBe("write");
    expect(v.args[0]).toBe("0x2");
    expect(v.rule).toBe("policy");
  });

  test("a blocked syscall returns its errno; hostname comes from the file", async () => {
    const p = file(policy);
    const r = await probe(["syscall", String(HOST_ARCH.syscalls.getppid)], ["--policy", p]);
    expect(r.stdout).toContain("syscall: -1 ENOSYS");
    const h = await probe(["read", "/proc/sys/kernel/hostname"], ["--policy", p]);
    expect(h.stdout.trim()).toBe("from-file");
  });

  test("a .ts module exporting a PolicyBuilder", async () => {
    const p = file(
      `import { PolicyBuilder } from ${JSON.stringify(join(root, "src/index.ts"))};\n` +
        `export default new PolicyBuilder().allowDynamicStartup().allowWrite().allowExit().setHostname("from-ts");\n`,
      "ts",
    );
    // From source: a compiled bunbox cannot import TypeScript that imports bunbox's sources.
    const r = Bun.spawnSync([process.execPath, join(root, "src/cli/main.ts"), "run", "--policy", p, "--ro", `${DIR}:/fx`, "--", "/fx/minimal"]);
    expect(r.stderr.toString()).toBe("");
    expect(r.stdout.toString()).toBe("minimal: hello\n");
  });

  test("a module exporting something else is a clear error", async () => {
    const p = file("export default 42;\n", "ts");
    const r = await bunbox(["run", "--policy", p, "--", "/bin/true"], { bare: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("export a Policy, a PolicyBuilder or a function returning one");
  });
});

describe("mistakes name their dotted path", () => {
  test("an unknown key (a typo)", () => {
    const p = problemsOf({ alow: ["read"] });
    expect(p.join()).toMatch(/alow/);
  });
  test("a nested typo", () => {
    expect(problemsOf({ filesystem: { mount: [] } }).join()).toContain("filesystem.mount");
  });
  test("a wrong type", () => {
    expect(problemsOf({ allow: "read" }).join()).toContain("allow");
    expect(problemsOf({ uid: "x" }).join()).toContain("uid");
  });
  test("an unknown syscall name, with its index", () => {
    expect(problemsOf({ allow: ["read", "wirte"] }).join()).toContain('allow.1: unknown syscall "wirte"');
    expect(problemsOf({ rules: [{ syscalls: ["opne"], program: ["allow"] }] }).join()).toContain("rules.0.syscalls.0");
    expect(problemsOf({ block: { nope: "EPERM" } }).join()).toContain("block.nope");
  });
  test("a bad errno name", () => {
    expect(problemsOf({ block: { open: "ENOTANERRNO" } }).join()).toContain("block.open");
  });
  test("a bad rule program", () => {
    expect(problemsOf({ rules: [{ syscalls: ["write"], program: [{ arg: 7 }] }] }).join()).toContain("rules.0.program.0");
    expect(problemsOf({ rules: [{ syscalls: ["write"], program: [{ jeq: "x1", then: "allow" }] }] }).join()).toContain("rules.0.program.0");
  });
  test("compare values: exact or refused, never a crash nor a silently different value", () => {
    const program = (value: unknown) => ({ rules: [{ syscalls: ["write"], program: [{ arg: 0 }, { jeq: value, then: "allow" }, "kill"] }] });
    // A JSON number past 2^53 was already rounded by the parser (1e300 used to crash BigInt).
    for (const big of [1e300, 2 ** 70, 9007199254740993]) {
      expect(problemsOf(program(big)).join()).toContain("rules.0.program.1.jeq: beyond ±2^53 a number is not exact: write it as a string");
    }
    expect(problemsOf(program("18446744073709551616")).join()).toContain("rule for write (1): 18446744073709551616 does not fit arg(0)");
    expect(problemsOf(program("-0x8000000000000001")).join()).toContain("does not fit arg(0)");
    expect(problemsOf(program("0xffffffffffffffff"))).toEqual([]);
    expect(problemsOf(program(-1))).toEqual([]);
  });
  test("an unknown profile, family, network", () => {
    expect(problemsOf({ profile: "fast" }).join()).toContain("profile");
    expect(problemsOf({ families: ["everything"] }).join()).toContain("families.0");
    expect(problemsOf({ network: "wifi" }).join()).toContain("network");
  });
  test("several mistakes are all reported at once", () => {
    expect(problemsOf({ alow: [], uid: "x", network: "wifi" }).length).toBe(3);
  });

  test("the CLI prints them and exits 2", async () => {
    const p = file({ allow: ["wirte"], hostnme: "x" });
    const r = await bunbox(["run", "--policy", p, "--", "/bin/true"], { bare: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("invalid policy");
    expect(r.stderr).toContain("hostnme");
  });

  test("invalid JSON", async () => {
    const p = file("{ nope");
    const r = await bunbox(["run", "--policy", p, "--", "/bin/true"], { bare: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("not valid JSON");
  });
});

describe("policy check, policy explain, syscalls", () => {
  test("check: valid file", async () => {
    const r = await bunbox(["policy", "check", file({ profile: "shell", allow: ["getppid"] })], { bare: true });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/valid .*BPF instructions/);
  });

  test("check: invalid file lists the problems, exit 2", async () => {
    const r = await bunbox(["policy", "check", file({ allow: ["nope1", "nope2"] })], { bare: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('allow.0: unknown syscall "nope1"');
    expect(r.stderr).toContain('allow.1: unknown syscall "nope2"');
  });

  test("explain: what each syscall gets, and the program", async () => {
    const p = file({ profile: "minimal", rules: [{ syscalls: ["close"], program: [{ arg32: 0 }, { jeq: 3, then: "allow" }, { errno: "EBADF" }] }] });
    const r = await bunbox(["policy", "explain", p], { bare: true });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/close \(\d+\)\s+ALLOW \| ERRNO\(EBADF\)\s+\(by arguments\)/);
    expect(r.stdout).toMatch(/ptrace \(\d+\)\s+violation: safety rule/);
    expect(r.stdout).toMatch(/others\s+violation: policy \(the default action\)/);
    expect(r.stdout).toContain("program:");
    expect(r.stdout).toMatch(/ld\s+arch/);
  });

  test("explain --profile for the other arch", async () => {
    const r = await bunbox(["policy", "explain", "--profile", "static", "--arch", "aarch64"], { bare: true });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("(aarch64)");
    expect(r.stdout).toMatch(/read \(63\)\s+ALLOW/);
  });

  test("syscalls lists the table with argument names", async () => {
    const r = await bunbox(["syscalls", "--arch", "x86_64"], { bare: true });
    expect(r.stdout).toContain("   0  read(fd, buf, count)");
    expect(r.stdout).toContain(" 101  ptrace(request, pid, addr, data)");
    const a = await bunbox(["syscalls", "--arch", "aarch64", "--json"], { bare: true });
    const rows = JSON.parse(a.stdout);
    expect(rows.find((x: { name: string }) => x.name === "openat").nr).toBe(56);
  });
});

describe("the executable's precompiled profiles", () => {
  test.each(["minimal", "static", "dynamic", "shell", "default", "python3", "node"])("%s: the same program as compiled from source", async (name) => {
    for (const arch of ["x86_64", "aarch64"]) {
      const built = await bunbox(["policy", "explain", "--profile", name, "--arch", arch], { bare: true });
      const source = Bun.spawnSync([process.execPath, join(root, "src/cli/main.ts"), "policy", "explain", "--profile", name, "--arch", arch]);
      expect(built.code).toBe(0);
      expect(built.stdout).toBe(source.stdout.toString());
    }
  });
});
