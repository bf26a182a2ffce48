/**
 * `"allowIf"` (src/policy/allowif.ts): syscalls allowed by their arguments'
 * values, written by name, compiled to argument programs. Checked in the
 * interpreter (every verdict) and on the real kernel; and the portable form
 * a policy without "arch" has (x86_64's open read as aarch64's openat).
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { ARCHES, type ArchName } from "../../src/policy/arch.ts";
import { PolicyBuilder } from "../../src/policy/builder.ts";
import { policyFromJson } from "../../src/policy/file.ts";
import { evaluate } from "../../src/policy/interpreter.ts";
import type { Policy } from "../../src/policy/policy.ts";
import { RET } from "../../src/policy/bpf.ts";
import { bunbox, DIR, FX, HOST_ARCH, testUnless } from "../helpers.ts";

/** The policy's verdict for a call: "allow", "kill" (a violation) or an errno. */
function verdict(p: Policy, name: string, args: bigint[]): string {
  const { ret } = evaluate(p.filter(true).insns, { nr: p.arch.syscalls[name]!, arch: p.arch.audit, args });
  const action = (ret & RET.ACTION_FULL) >>> 0;
  if (action === RET.ALLOW) return "allow";
  if (action === RET.ERRNO) return `errno ${ret & RET.DATA}`;
  return "kill";
}

const O = { RDONLY: 0n, WRONLY: 1n, CREAT: 0o100n, TRUNC: 0o1000n, CLOEXEC: 0o2000000n, DIRECTORY_X86: 0o200000n, DIRECTORY_ARM: 0o40000n };

function problems(json: unknown): string[] {
  try {
    policyFromJson(json, "p.json");
    return [];
  } catch (e) {
    return [...((e as { problems?: string[] }).problems ?? [(e as Error).message])];
  }
}

describe("allowIf in the builder", () => {
  const p = new PolicyBuilder({ arch: "x86_64" })
    .allowIf("socket", [{ family: "AF_UNIX", type: ["SOCK_STREAM|SOCK_CLOEXEC", "SOCK_DGRAM|SOCK_CLOEXEC"] }, { family: "AF_INET6", type: "SOCK_DGRAM" }])
    .allowIf("openat", { flags: { subsetOf: "O_RDONLY|O_CLOEXEC|O_DIRECTORY" } })
    .allowIf("prlimit64", { new_rlim: 0 })
    .build();

  test("a call matches an alternative when every argument it names matches", () => {
    expect(verdict(p, "socket", [1n, 0x80001n, 0n])).toBe("allow");
    expect(verdict(p, "socket", [1n, 0x80002n, 7n])).toBe("allow");
    expect(verdict(p, "socket", [10n, 2n, 0n])).toBe("allow");
    // Each alternative's values go together: AF_INET6 with a stream is in neither.
    expect(verdict(p, "socket", [10n, 1n, 0n])).toBe("kill");
    expect(verdict(p, "socket", [2n, 0x80001n, 0n])).toBe("kill");
    // Named arguments are ints to the kernel: the high half does not matter.
    expect(verdict(p, "socket", [0x1_0000_0001n, 0x80001n, 0n])).toBe("allow");
  });

  test("subsetOf: any combination of those bits, no other bit", () => {
    expect(verdict(p, "openat", [0n, 0n, O.RDONLY, 0n])).toBe("allow");
    expect(verdict(p, "openat", [0n, 0n, O.CLOEXEC | O.DIRECTORY_X86, 0n])).toBe("allow");
    expect(verdict(p, "openat", [0n, 0n, O.WRONLY | O.CLOEXEC, 0n])).toBe("kill");
    expect(verdict(p, "openat", [0n, 0n, O.CREAT, 0n])).toBe("kill");
  });

  test("an argument without names (a pointer) is compared on all 64 bits", () => {
    expect(verdict(p, "prlimit64", [0n, 7n, 0n, 0n])).toBe("allow");
    expect(verdict(p, "prlimit64", [0n, 7n, 0x1_0000_0000n, 0n])).toBe("kill");
  });

  test("mistakes are problems naming the argument or the value", () => {
    const r = new PolicyBuilder({ arch: "x86_64" })
      .allowIf("socket", { famly: "AF_UNIX" })
      .allowIf("ioctl", { cmd: "TCGETZ" })
      .allowIf("ioctl", { __proto__: 1 } as never)
      .allowIf("openat", {})
      .allowIf("fcntl", { cmd: [] })
      .allowIf("socket", { family: 0x1_0000_0000 })
      .tryBuild();
    expect(r.problems).toEqual([
      `allowIf("socket").0.famly: socket has no argument "famly" (its arguments: family, type, protocol)`,
      `allowIf("ioctl").0.cmd: "TCGETZ" is not a name argument "cmd" knows (like TCGETS, TCSETS, TCSETSW)`,
      // In a JavaScript literal __proto__ sets the prototype: no condition at all, and said so.
      `allowIf("ioctl").0: no argument conditions (to allow ioctl whatever its arguments, list it in "allow")`,
      `allowIf("openat").0: no argument conditions (to allow openat whatever its arguments, list it in "allow")`,
      `allowIf("fcntl").0.cmd: give a value, a list of values or { "subsetOf": … }`,
      `allowIf("socket").0.family: 4294967296 does not fit the argument's 32 bits`,
    ]);
  });
});

describe("allowIf in a policy file", () => {
  test("the same verdicts from JSON; __proto__ as an argument is a problem, not a dropped condition", () => {
    const p = policyFromJson({ arch: "x86_64", allowIf: { ioctl: [{ cmd: ["TCGETS", "TIOCGWINSZ"] }] } }, "p.json");
    expect(verdict(p, "ioctl", [0n, 0x5401n, 0n])).toBe("allow");
    expect(verdict(p, "ioctl", [0n, 0x5412n, 0n])).toBe("kill");
    expect(problems(JSON.parse('{"allowIf": {"ioctl": {"__proto__": "TCGETS"}}}'))).toEqual([
      `p.json: allowIf.ioctl.0.__proto__: ioctl has no argument "__proto__" (its arguments: fd, cmd, arg)`,
    ]);
    expect(problems({ allowIf: { toString: [{ arg0: 1 }] } })).toEqual([`p.json: allowIf.toString: unknown syscall "toString" on ${HOST_ARCH.name}`]);
  });

  test("a safety rule still comes first: allowIf cannot let clone make a namespace", () => {
    const p = policyFromJson({ arch: "x86_64", allowIf: { clone: { clone_flags: { subsetOf: "CLONE_NEWUSER|SIGCHLD" } } } }, "p.json");
    expect(verdict(p, "clone", [0x10000011n])).toBe("kill");
    expect(verdict(p, "clone", [0x11n])).toBe("allow");
  });
});

describe("portable policies (no \"arch\"): one file for x86_64 and aarch64", () => {
  const neutral = {
    allow: ["read", "arch_prctl", "fork"],
    allowIf: { open: [{ flags: { subsetOf: "O_RDONLY|O_CLOEXEC|O_DIRECTORY" } }], mmap: [{ prot: ["PROT_READ", "PROT_READ|PROT_EXEC"] }] },
  };
  const on = (arch: ArchName) => {
    const b = new PolicyBuilder({ arch });
    b.allowPortable(neutral.allow, neutral.allowIf);
    return b.build();
  };

  test("x86_64 takes the names as they are", () => {
    const p = on("x86_64");
    expect(verdict(p, "open", [0n, O.DIRECTORY_X86, 0n])).toBe("allow");
    expect(verdict(p, "open", [0n, O.WRONLY, 0n])).toBe("kill");
    expect(verdict(p, "arch_prctl", [0x1002n, 0n])).toBe("allow");
    expect(verdict(p, "openat", [0n, 0n, 0n])).toBe("kill");
  });

  test("aarch64: open is openat (its flags are openat's, by aarch64's numbers), fork a clone with fork's flags, arch_prctl nothing", () => {
    const p = on("aarch64");
    expect(verdict(p, "openat", [0n, 0n, O.DIRECTORY_ARM | O.CLOEXEC, 0n])).toBe("allow");
    // x86_64's O_DIRECTORY bit is aarch64's O_DIRECT: not in the set.
    expect(verdict(p, "openat", [0n, 0n, O.DIRECTORY_X86, 0n])).toBe("kill");
    expect(verdict(p, "clone", [0x1200011n])).toBe("allow");
    expect(verdict(p, "clone", [0x10f00n])).toBe("kill"); // a thread: not what fork is
    expect(verdict(p, "mmap", [0n, 4096n, 5n, 0n, 0n, 0n])).toBe("allow");
    expect(verdict(p, "mmap", [0n, 4096n, 7n, 0n, 0n, 0n])).toBe("kill");
  });

  test("a file without arch: a name no arch has is still a typo", () => {
    expect(problems({ allow: ["read", "opne"] })).toEqual([`p.json: allow.1: unknown syscall "opne" on ${HOST_ARCH.name} (did you mean open?)`]);
    // With "arch", a name that arch lacks is an error as before.
    expect(problems({ arch: "aarch64", allow: ["open"] })).toEqual([`p.json: allow.0: unknown syscall "open" on aarch64`]);
  });
});

describe("on the kernel", () => {
  test("a call outside allowIf is a violation decoded by name, and the suggested alternative lets the next run pass", async () => {
    const file = `${DIR}/work/allowif-${process.pid}.json`;
    const policy = { profile: "dynamic", allowIf: { socket: [{ family: "AF_UNIX", type: "SOCK_STREAM" }] } };
    writeFileSync(file, JSON.stringify(policy));
    const ok = await bunbox(["run", "--policy", file, "--", `${FX}/learnee`, "socket", "1", "1"]);
    expect(ok.stdout).toBe("socket: 3\n");
    const bad = await bunbox(["run", "--policy", file, "--json", "--", `${FX}/learnee`, "socket", "2", "2"]);
    expect(bad.code).toBe(159);
    expect(bad.stderr).toContain("VIOLATION: socket(AF_INET, SOCK_DGRAM, 0) [");
    const v = JSON.parse(bad.stderr.trim().split("\n").at(-1)!).violation;
    expect(v.suggestion.policy).toEqual({ allowIf: { socket: [{ family: "AF_INET", type: "SOCK_DGRAM", protocol: 0 }] } });
    expect(bad.stderr).toContain(`to allow it, add to ${file}: "allowIf": {"socket":[{"family":"AF_INET","type":"SOCK_DGRAM","protocol":0}]}`);
    const { applySuggestion } = await import("../../src/monitor/suggest.ts");
    writeFileSync(file, JSON.stringify(applySuggestion(policy, v.suggestion)));
    const again = await bunbox(["run", "--policy", file, "--", `${FX}/learnee`, "socket", "2", "2"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe("socket: 3\n");
  });

  testUnless(HOST_ARCH.name === "x86_64" ? undefined : "the syscall numbers below are x86_64's")("explain shows the argument rule's verdicts", async () => {
    const file = `${DIR}/work/allowif-explain-${process.pid}.json`;
    writeFileSync(file, JSON.stringify({ profile: "minimal", allowIf: { ioctl: { cmd: "TCGETS" } } }));
    const r = await bunbox(["policy", "explain", file], { bare: true });
    expect(r.stdout).toMatch(/ioctl \(16\)\s+ALLOW \| violation: policy \| violation: safety rule\s+\(by arguments\)/);
    expect(ARCHES.x86_64.syscalls.ioctl).toBe(16);
  });
});
