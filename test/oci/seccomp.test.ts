/**
 * OCI seccomp profiles compiled by bunbox's compiler (src/oci/seccomp.ts),
 * checked with the BPF interpreter on the compiled program: every compare
 * op, rules ANDed and ORed, the most restrictive matching rule first,
 * errnoRet and the default, Docker's includes/excludes, names of other
 * architectures, exact 64-bit values; and each refusal naming its field.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { applySeccompProfile, SeccompProfileError } from "../../src/oci/seccomp.ts";
import { RET } from "../../src/policy/bpf.ts";
import { PolicyBuilder } from "../../src/policy/builder.ts";
import { evaluate } from "../../src/policy/interpreter.ts";
import type { Policy } from "../../src/policy/policy.ts";
import { testUnless } from "../helpers.ts";

function compile(profile: unknown): Policy {
  const b = new PolicyBuilder();
  applySeccompProfile(b, profile, "linux.seccomp");
  return b.build();
}

function verdict(p: Policy, name: string, args: (number | bigint)[] = []): string {
  const nr = p.arch.syscalls[name]!;
  const ret = evaluate(p.filter(true).insns, { nr, arch: p.arch.audit, args: [...args, 0, 0, 0, 0, 0, 0].slice(0, 6).map(BigInt) }).ret >>> 0;
  const action = (ret & RET.ACTION_FULL) >>> 0;
  if (action === RET.ALLOW) return "allow";
  if (action === RET.ERRNO) return `errno ${ret & RET.DATA}`;
  return "kill";
}

const rule = (names: string[], action: string, args: object[] = [], extra: object = {}) => ({ names, action, args, ...extra });

describe("compares", () => {
  const p = compile({
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: 38,
    syscalls: [
      rule(["personality"], "SCMP_ACT_ALLOW", [{ index: 0, value: 8, op: "SCMP_CMP_EQ" }]),
      rule(["personality"], "SCMP_ACT_ALLOW", [{ index: 0, value: 0xffffffff, op: "SCMP_CMP_EQ" }]),
      rule(["dup"], "SCMP_ACT_ALLOW", [{ index: 0, value: 3, op: "SCMP_CMP_NE" }]),
      rule(["dup2"], "SCMP_ACT_ALLOW", [{ index: 0, value: 10, op: "SCMP_CMP_LT" }]),
      rule(["dup3"], "SCMP_ACT_ALLOW", [{ index: 0, value: 10, op: "SCMP_CMP_LE" }]),
      rule(["close"], "SCMP_ACT_ALLOW", [{ index: 0, value: 10, op: "SCMP_CMP_GT" }]),
      rule(["fsync"], "SCMP_ACT_ALLOW", [{ index: 0, value: 10, op: "SCMP_CMP_GE" }]),
      // clone without namespace flags: (flags & 0x7e020000) == 0
      rule(["kill"], "SCMP_ACT_ALLOW", [{ index: 1, value: 0x7e020000, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }]),
      // both bits of the mask set, others free
      rule(["tkill"], "SCMP_ACT_ALLOW", [{ index: 1, value: 0x30, valueTwo: 0x10, op: "SCMP_CMP_MASKED_EQ" }]),
      // two compares ANDed
      rule(["lseek"], "SCMP_ACT_ALLOW", [{ index: 1, value: 0, op: "SCMP_CMP_EQ" }, { index: 2, value: 1, op: "SCMP_CMP_EQ" }]),
    ],
  });

  test("EQ, rules ORed, and the default errno", () => {
    expect([verdict(p, "personality", [8]), verdict(p, "personality", [0xffffffff]), verdict(p, "personality", [1])]).toEqual(["allow", "allow", "errno 38"]);
    // 64 bits: 0xffffffff is not 0x1ffffffff
    expect(verdict(p, "personality", [0x1ffffffffn])).toBe("errno 38");
  });

  test("NE, LT, LE, GT, GE", () => {
    expect([verdict(p, "dup", [3]), verdict(p, "dup", [4])]).toEqual(["errno 38", "allow"]);
    expect([verdict(p, "dup2", [9]), verdict(p, "dup2", [10])]).toEqual(["allow", "errno 38"]);
    expect([verdict(p, "dup3", [10]), verdict(p, "dup3", [11])]).toEqual(["allow", "errno 38"]);
    expect([verdict(p, "close", [11]), verdict(p, "close", [10])]).toEqual(["allow", "errno 38"]);
    expect([verdict(p, "fsync", [10]), verdict(p, "fsync", [9])]).toEqual(["allow", "errno 38"]);
  });

  test("MASKED_EQ, bit by bit", () => {
    expect(verdict(p, "kill", [0, 9])).toBe("allow");
    expect(verdict(p, "kill", [0, 0x10000000])).toBe("errno 38");
    expect([verdict(p, "tkill", [0, 0x10]), verdict(p, "tkill", [0, 0x1f]), verdict(p, "tkill", [0, 0x30]), verdict(p, "tkill", [0, 0])]).toEqual([
      "allow", "allow", "errno 38", "errno 38",
    ]);
  });

  test("compares within a rule are ANDed", () => {
    expect([verdict(p, "lseek", [0, 0, 1]), verdict(p, "lseek", [0, 0, 2]), verdict(p, "lseek", [0, 5, 1])]).toEqual(["allow", "errno 38", "errno 38"]);
  });
});

test("where rules overlap, the most restrictive wins, whatever their order", () => {
  const p = compile({
    defaultAction: "SCMP_ACT_ALLOW",
    syscalls: [
      rule(["mkdir", "mkdirat"], "SCMP_ACT_ALLOW", [{ index: 1, value: 0o700, op: "SCMP_CMP_EQ" }]),
      rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", [], { errnoRet: 1 }),
      rule(["rmdir"], "SCMP_ACT_KILL"),
    ],
  });
  expect(verdict(p, "mkdir", [0, 0o700])).toBe("errno 1");
  expect(verdict(p, "rmdir")).toBe("kill");
  expect(verdict(p, "getpid")).toBe("allow");
  expect(p.relaxations.join()).toContain("dangerDefaultAllowAll");
  // bunbox's safety rules stay first, even under a default that allows
  expect(verdict(p, "ptrace")).toBe("kill");
});

test("exact 64-bit values and Docker's includes and excludes", () => {
  const p = compile({
    defaultAction: "SCMP_ACT_ERRNO",
    syscalls: [
      rule(["getpid"], "SCMP_ACT_ALLOW", [{ index: 0, value: 0xffff_ffff_ffff_fffen, op: "SCMP_CMP_EQ" }]),
      rule(["getppid"], "SCMP_ACT_ALLOW", [], { includes: { caps: ["CAP_SYS_ADMIN"] } }),
      rule(["getuid"], "SCMP_ACT_ALLOW", [], { excludes: { caps: ["CAP_SYS_ADMIN"] } }),
      rule(["getgid"], "SCMP_ACT_ALLOW", [], { includes: { arches: ["s390x"] } }),
      rule(["arm_fadvise64_64", "_llseek", "getegid"], "SCMP_ACT_ALLOW"),
    ],
  });
  expect([verdict(p, "getpid", [0xffff_ffff_ffff_fffen]), verdict(p, "getpid", [0xffff_ffff_ffff_ffffn])]).toEqual(["allow", "errno 1"]);
  expect(verdict(p, "getppid")).toBe("errno 1"); // needs a capability bunbox does not grant
  expect(verdict(p, "getuid")).toBe("allow");
  expect(verdict(p, "getgid")).toBe("errno 1"); // another architecture's
  expect(verdict(p, "getegid")).toBe("allow");
});

test("what bunbox cannot carry out is refused, each problem naming its field", () => {
  let err: unknown;
  try {
    compile({
      defaultAction: "SCMP_ACT_ALLOW",
      flags: ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
      listenerPath: "/run/agent.sock",
      syscalls: [rule(["mkdir"], "SCMP_ACT_TRAP"), rule(["nosuchcall"], "SCMP_ACT_ERRNO"), rule(["getpid"], "SCMP_ACT_LOG")],
    });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(SeccompProfileError);
  expect((err as SeccompProfileError).problems).toEqual([
    "linux.seccomp.flags.0: SECCOMP_FILTER_FLAG_SPEC_ALLOW is not supported",
    "linux.seccomp.listenerPath: a seccomp agent is not supported (bunbox is the one monitor)",
    "linux.seccomp.syscalls.0.action: SCMP_ACT_TRAP is not supported (bunbox allows, fails with an errno, or ends the sandbox as a violation)",
    'linux.seccomp.syscalls.1.names.0: unknown syscall "nosuchcall" (skipping it would allow what this rule denies)',
    "linux.seccomp.syscalls.2.action: SCMP_ACT_LOG is not supported (bunbox allows, fails with an errno, or ends the sandbox as a violation)",
  ]);
  expect(() => compile({ defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["getpid"], action: "SCMP_ACT_ALLOW", bogus: 1 }] })).toThrow("linux.seccomp.syscalls.0");
});

const CONTAINERS = "/usr/share/containers/seccomp.json";
const NO_CONTAINERS = existsSync(CONTAINERS) ? undefined : `no ${CONTAINERS} (apt-get install golang-github-containers-common)`;
testUnless(NO_CONTAINERS)("containers-common's profile compiles", () => {
  const p = compile(JSON.parse(readFileSync(CONTAINERS, "utf8")));
  expect(verdict(p, "read")).toBe("allow");
  expect(verdict(p, "personality", [8])).toBe("allow");
  expect(verdict(p, "personality", [9])).toBe("errno 38"); // its default, ENOSYS
  // A dangerous call the profile fails with EPERM: that errno (bunbox's safety rule takes a policy's errno).
  expect(verdict(p, "kexec_load")).toBe("errno 1");
  // One it allows stays a violation: bunbox's safety rules come first.
  expect(verdict(p, "ptrace")).toBe("kill");
});
