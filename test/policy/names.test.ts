/**
 * Names users write (syscalls, errnos, families, safety rules, arches,
 * profiles, option names, size units) are looked up in tables without a
 * prototype (src/names.ts). Every Object.prototype property name is refused
 * in every place of a policy file, of the builder and of the command line,
 * with an error naming the field. The repro: "toString" in a policy's
 * allow list became a function where a syscall number belonged, the sort of
 * the numbers gave NaN and the scrambled dispatch tree let a static program
 * ptrace, clone namespaces and mount; the real kernel shows it no longer can.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { AARCH64 } from "../../src/policy/syscalls/aarch64.ts";
import { I386 } from "../../src/policy/syscalls/i386.ts";
import { X86_64 } from "../../src/policy/syscalls/x86_64.ts";
import { SYSCALL_ARGS } from "../../src/policy/syscalls/args.ts";
import { ARCHES, archByName, syscallName } from "../../src/policy/arch.ts";
import { PolicyBuilder, PolicyError } from "../../src/policy/builder.ts";
import { compileFilter } from "../../src/policy/compiler.ts";
import { FAMILIES, type FamilyName, isFamilyName } from "../../src/policy/families.ts";
import { policyFromJson } from "../../src/policy/file.ts";
import type { NetMode } from "../../src/policy/policy.ts";
import { profileBuilder } from "../../src/policy/profiles.ts";
import { ALLOW, KILL } from "../../src/policy/rules.ts";
import { DANGEROUS_USES, isDangerName } from "../../src/policy/safety.ts";
import { errnoNumber } from "../../src/native/errno.ts";
import { SIGNALS } from "../../src/native/signals.ts";
import { bunbox, DIR, FX, HOST_ARCH, json } from "../helpers.ts";

/** Every name a lookup in a plain object would find without its being there. */
const RESERVED = [...new Set([...Object.getOwnPropertyNames(Object.prototype), "__proto__", "prototype"])];

/** A policy file's problems; JSON text, so that "__proto__" is an own key as in a file. */
function fileProblems(json: string): string[] {
  try {
    policyFromJson(JSON.parse(json), "p.json");
  } catch (e) {
    if (e instanceof PolicyError) return [...e.problems];
    throw e;
  }
  return [];
}

function builderProblems(edit: (b: PolicyBuilder) => unknown, options?: { arch?: string }): string[] {
  const b = new PolicyBuilder(options as { arch?: "x86_64" });
  edit(b);
  return b.tryBuild().problems ?? [];
}

describe("the tables have no prototype and are frozen", () => {
  const tables = { X86_64, AARCH64, I386, SYSCALL_ARGS, ARCHES, FAMILIES, DANGEROUS_USES, SIGNALS };
  test.each(Object.keys(tables))("%s", (name) => {
    const t = tables[name as keyof typeof tables];
    expect(Object.getPrototypeOf(t)).toBeNull();
    expect(Object.isFrozen(t)).toBe(true);
    for (const r of RESERVED) expect(`${r}:${(t as Record<string, unknown>)[r]}`).toBe(`${r}:undefined`);
  });

  test("and the lookups built on them know none of these names", () => {
    for (const r of RESERVED) {
      expect(archByName(r)).toBeUndefined();
      expect(isFamilyName(r)).toBe(false);
      expect(isDangerName(r)).toBe(false);
      expect(errnoNumber(r)).toBeUndefined();
      expect(HOST_ARCH.syscalls[r]).toBeUndefined();
    }
    expect(syscallName(HOST_ARCH.audit, Number.NaN)).toBeUndefined();
  });
});

describe.each(RESERVED)("%s is refused in every place of a policy file", (name) => {
  const n = JSON.stringify(name);
  const cases: [string, string, string][] = [
    ["allow", `{"allow": ["read", ${n}]}`, `allow.1: unknown syscall ${n}`],
    ["block (a syscall)", `{"block": {${n}: "EPERM", "write": "EPERM"}}`, `block.${name}: unknown syscall ${n}`],
    ["block (an errno)", `{"block": {"read": ${n}}}`, "block.read: not an errno name"],
    ["rules (a syscall)", `{"rules": [{"syscalls": ["read", ${n}], "program": ["allow"]}]}`, `rules.0.syscalls.1: unknown syscall ${n}`],
    ["rules (an errno)", `{"rules": [{"syscalls": ["read"], "program": [{"errno": ${n}}]}]}`, "rules.0.program.0"],
    ["rules (a compare)", `{"rules": [{"syscalls": ["read"], "program": [{"arg": 0}, {${n}: 1, "then": "allow"}]}]}`, "rules.0.program.1"],
    ["defaultAction", `{"defaultAction": ${n}}`, "defaultAction"],
    ["defaultAction (an errno)", `{"defaultAction": {"errno": ${n}}}`, "defaultAction"],
    ["dangerAllowUnsafe", `{"dangerAllowUnsafe": ["ptrace", ${n}]}`, "dangerAllowUnsafe.1: not a safety rule"],
    ["families", `{"families": ["read", ${n}]}`, "families.1"],
    ["profile", `{"profile": ${n}}`, "profile"],
    ["arch", `{"arch": ${n}}`, "arch"],
    ["network", `{"network": ${n}}`, "network"],
    ["filesystem.base", `{"filesystem": {"base": ${n}}}`, "filesystem.base"],
    ["a key", `{${n}: ["read"]}`, `p.json: ${name}: unknown key`],
    ["a tmpfs size unit", `{"filesystem": {"mounts": [{"tmpfs": "/t", "size": "1${name}"}]}}`, `"1${name}" is not a size`],
  ];
  test.each(cases)("%s", (_place, json, expected) => {
    const problems = fileProblems(json);
    expect(problems.join("\n")).toContain(expected);
  });
});

describe.each(RESERVED)("%s is refused by every builder method", (name) => {
  // Four fields each: bun would take a missing fourth for a done callback.
  const cases: [string, (b: PolicyBuilder) => unknown, string, { arch?: string }][] = [
    ["new PolicyBuilder({ arch })", () => {}, `arch: unknown architecture "${name}"`, { arch: name }],
    ["allowSyscall", (b) => b.allowSyscall(name), `allowSyscall: unknown syscall "${name}"`, {}],
    ["allowSyscalls", (b) => b.allowSyscalls(["read", name]), `allowSyscall: unknown syscall "${name}"`, {}],
    ["allowAvailableSyscalls", (b) => b.allowAvailableSyscalls(["read", name]), `allowAvailableSyscalls: unknown syscall "${name}" on every arch`, {}],
    ["blockSyscallWithErrno (syscall)", (b) => b.blockSyscallWithErrno(name, "EPERM"), `blockSyscallWithErrno: unknown syscall "${name}"`, {}],
    ["blockSyscallWithErrno (errno)", (b) => b.blockSyscallWithErrno("read", name), `blockSyscallWithErrno: "${name}" is not an errno`, {}],
    ["addPolicyOnSyscall", (b) => b.addPolicyOnSyscall(name, [ALLOW]), `addPolicyOnSyscall: unknown syscall "${name}"`, {}],
    ["allowFamily", (b) => b.allowFamily(name as FamilyName), `allowFamily: unknown family "${name}"`, {}],
    ["dangerAllowUnsafe", (b) => b.dangerAllowUnsafe(name), `dangerAllowUnsafe: "${name}" is not a safety rule`, {}],
    ["setNetwork", (b) => b.setNetwork(name as NetMode), `setNetwork: "${name}" is not one of`, {}],
    ["addTmpfs size", (b) => b.addTmpfs("/t", { size: `1${name}` }), `"1${name}" is not a size`, {}],
  ];
  test.each(cases)("%s", (_method, edit, expected, options) => {
    expect(builderProblems(edit, options).join("\n")).toContain(expected);
  });

  test("profileBuilder", () => {
    expect(() => profileBuilder(name)).toThrow(`unknown profile "${name}"`);
  });

  test("compileFilter's relaxations", () => {
    const spec = { arch: ARCHES.x86_64, rules: new Map(), defaultAction: KILL, notify: true, dangerAllowed: new Set([name]) };
    expect(() => compileFilter(spec)).toThrow(`dangerAllowUnsafe: "${name}" is not a safety rule`);
  });
});

describe("on the command line", () => {
  // Each case: exit 2 and a message naming the option, never a stack trace.
  const cases = (name: string): [string[], string][] => [
    [["policy", "explain", "--profile", "default", "--arch", name], "--arch"],
    [["syscalls", "--arch", name], "--arch"],
    [["policy", "explain", "--profile", name], "--profile"],
    [["run", "--profile", name, "--", "/bin/true"], "--profile"],
    [["run", `--${name}`, "x", "--", "/bin/true"], `--${name}: unknown option`],
    [["run", "--tmpfs", `/x:1${name}`, "--", "/bin/true"], `"1${name}" is not a size`],
  ];
  test("every Object.prototype name, in every option that takes a name", async () => {
    const runs = RESERVED.flatMap((name) => cases(name));
    // Two at a time: each is a bunbox start.
    for (let i = 0; i < runs.length; i += 2) {
      await Promise.all(
        runs.slice(i, i + 2).map(async ([args, expected]) => {
          const r = await bunbox(args, { bare: true });
          expect(`${args.join(" ")} -> ${r.code} ${r.stderr.trim()}`).toBe(`${args.join(" ")} -> 2 ${r.stderr.trim()}`);
          expect(r.stderr).toContain(expected);
          expect(r.stderr).not.toContain("    at ");
        }),
      );
    }
  });
});

describe("the issue's repro, on the real kernel", () => {
  const list = ["getppid", "sync", "uname", "chroot", "vhangup", "pivot_root", "reboot", "mknod", "kexec_load", "socket", "getdents64", "toString", "openat", "fork", "execve"];
  const file = (name: string, body: object) => {
    const p = `${DIR}/work/${name}-${process.pid}.json`;
    writeFileSync(p, JSON.stringify(body));
    return p;
  };

  test("bunbox policy check refuses it, naming the field", async () => {
    const p = file("repro", { profile: "minimal", allow: list });
    const r = await bunbox(["policy", "check", p], { bare: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('allow.11: unknown syscall "toString"');
  });

  test.each(["ptrace", "clone-newuser-newns", "mount"])("bunbox run --policy refuses it before a static probe can %s", async (mode) => {
    const p = file("repro", { profile: "minimal", allow: list });
    const r = await bunbox(["run", "--policy", p, "--", `${FX}/probe-static`, mode]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('allow.11: unknown syscall "toString"');
    expect(r.stdout).toBe("");
  });

  // The same list without the name, over what a static program needs to
  // start: each attempt is a violation naming its syscall.
  test.each([
    ["ptrace", "ptrace"],
    ["clone-newuser-newns", "clone"],
    ["mount", "mount"],
  ])("without the name, %s is a violation of the compiled tree", async (mode, syscall) => {
    const p = file("repro-clean", { profile: "static", allow: list.filter((s) => s !== "toString") });
    const r = await bunbox(["run", "--json", "--policy", p, "--", `${FX}/probe-static`, mode]);
    expect(r.code).toBe(159);
    expect(json(r.stderr).violation.syscall).toBe(syscall);
    expect(r.stdout).toBe("");
  });
});
