// --net proxy-transparent's filter: connect() goes to the monitor (TRACE)
// exactly where the policy allows it; what the policy refuses stays refused.
// Checked on the compiled program, through the interpreter.
import { describe, expect, test } from "bun:test";
import { RET } from "../../src/policy/bpf.ts";
import { PolicyBuilder } from "../../src/policy/builder.ts";
import { evaluate } from "../../src/policy/interpreter.ts";
import type { Policy } from "../../src/policy/policy.ts";
import { arg, errno, jeq, KILL } from "../../src/policy/rules.ts";
import { REASON } from "../../src/policy/safety.ts";

const TRACED = (RET.USER_NOTIF | REASON.TRACE) >>> 0;
const AF_UNIX_FD = 7n;

function connectRet(p: Policy, fd = 3n): number {
  const prog = p.filter(true).insns;
  return evaluate(prog, { nr: p.arch.syscalls.connect!, arch: p.arch.audit, args: [fd, 0n, 16n, 0n, 0n, 0n] }).ret >>> 0;
}

describe("proxy-transparent traces connect where it is allowed", () => {
  test("an allowed connect is traced; in proxy mode it is allowed as written", () => {
    const b = () => new PolicyBuilder().allowSyscalls(["connect", "exit_group"]);
    expect(connectRet(b().setNetwork("proxy-transparent").build())).toBe(TRACED);
    const plain = b().setNetwork("proxy").build();
    expect(connectRet(plain)).toBe(RET.ALLOW);
    expect(plain.usesTrace()).toBe(false);
    // derive() recompiles when transparency changes, keeps the filter when it does not.
    const t = plain.derive({ net: "proxy-transparent" });
    expect(connectRet(t)).toBe(TRACED);
    expect(t.usesTrace()).toBe(true);
    expect(connectRet(t.derive({ net: "none" }))).toBe(RET.ALLOW);
  });

  test("a refused connect stays refused: kill, errno, and the argument program's own refusals", () => {
    const killed = new PolicyBuilder().allowSyscall("exit_group").setNetwork("proxy-transparent").build();
    expect(connectRet(killed)).not.toBe(TRACED);
    const blocked = new PolicyBuilder().blockSyscallWithErrno("connect", 13).setNetwork("proxy-transparent").build();
    expect(connectRet(blocked)).toBe((RET.ERRNO | 13) >>> 0);
    const some = new PolicyBuilder()
      .addPolicyOnSyscall("connect", [arg(0), jeq(AF_UNIX_FD, errno(1)), jeq(3, KILL), { kind: "allow" }])
      .setNetwork("proxy-transparent")
      .build();
    expect(connectRet(some, AF_UNIX_FD)).toBe((RET.ERRNO | 1) >>> 0);
    expect(connectRet(some, 3n)).not.toBe(TRACED);
    expect(connectRet(some, 4n)).toBe(TRACED);
  });

  test("under dangerDefaultAllowAll, connect (ruled by nothing) is traced", () => {
    const p = new PolicyBuilder().dangerDefaultAllowAll().setNetwork("proxy-transparent").build();
    expect(connectRet(p)).toBe(TRACED);
  });
});
