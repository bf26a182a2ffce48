/**
 * The seccomp-BPF compiler, checked through the interpreter (the kernel's
 * classic-BPF semantics over a synthetic seccomp_data): dispatch, argument
 * rules at 32 and 64 bits, jumps past 255, the 4096-instruction limit,
 * determinism, and a property test: the optimised binary-search program and
 * Sandbox2's linear shape agree on random policies and random inputs.
 */
import { describe, expect, test } from "bun:test";
import { ARCHES } from "../../src/policy/arch.ts";
import { encode, RET } from "../../src/policy/bpf.ts";
import { PolicyBuilder, PolicyError } from "../../src/policy/builder.ts";
import { compileFilter, withMagic } from "../../src/policy/compiler.ts";
import { evaluate } from "../../src/policy/interpreter.ts";
import {
  type Action, ALLOW, arg, arg32, errno, type Fragment, jeq, jge, jgt, jle, jlt, jne, jset, KILL, label, goto, type Node, nodes, type Rule,
} from "../../src/policy/rules.ts";
import { DANGEROUS_SYSCALLS, DANGEROUS_USES, REASON } from "../../src/policy/safety.ts";

const X = ARCHES.x86_64;
const A = ARCHES.aarch64;
const NOTIFY_POLICY = (RET.USER_NOTIF | REASON.POLICY) >>> 0;
const NOTIFY_DANGER = (RET.USER_NOTIF | REASON.DANGER) >>> 0;

function run(prog: ReturnType<typeof compileFilter>, name: string, args: bigint[] = [], arch = X) {
  return evaluate(prog.insns, { nr: arch.syscalls[name]!, arch: arch.audit, args }).ret >>> 0;
}

function frag(f: Fragment): Rule {
  return { kind: "fragment", nodes: nodes(f) };
}

describe("dispatch", () => {
  const rules = new Map<number, Rule[]>([
    [X.syscalls.read!, [{ kind: "action", action: ALLOW }]],
    [X.syscalls.getppid!, [{ kind: "action", action: ALLOW }]],
    [X.syscalls.open!, [{ kind: "action", action: errno(2) }]],
  ]);
  const f = compileFilter({ arch: X, rules, defaultAction: KILL, notify: true });

  test("allowed, errno, and everything else a violation", () => {
    expect(run(f, "read")).toBe(RET.ALLOW);
    expect(run(f, "getppid")).toBe(RET.ALLOW);
    expect(run(f, "open")).toBe((RET.ERRNO | 2) >>> 0);
    expect(run(f, "write")).toBe(NOTIFY_POLICY);
    expect(evaluate(f.insns, { nr: 100000, arch: X.audit }).ret >>> 0).toBe(NOTIFY_POLICY);
  });

  test("a foreign arch and x32 numbers are violations before dispatch", () => {
    expect(evaluate(f.insns, { nr: 0, arch: 0x40000003 }).ret >>> 0).toBe((RET.USER_NOTIF | REASON.ARCH) >>> 0);
    expect(evaluate(f.insns, { nr: 0x40000000 | X.syscalls.read!, arch: X.audit }).ret >>> 0).toBe((RET.USER_NOTIF | REASON.X32) >>> 0);
  });

  test("-1 is no syscall, not x32: the default action decides it, on both arches", () => {
    expect(evaluate(f.insns, { nr: -1, arch: X.audit }).ret >>> 0).toBe(NOTIFY_POLICY);
    const e = compileFilter({ arch: X, rules, defaultAction: errno(38), notify: true });
    expect(evaluate(e.insns, { nr: -1, arch: X.audit }).ret >>> 0).toBe((RET.ERRNO | 38) >>> 0);
    const a = compileFilter({ arch: A, rules: new Map(), defaultAction: errno(38), notify: true });
    expect(evaluate(a.insns, { nr: -1, arch: A.audit }).ret >>> 0).toBe((RET.ERRNO | 38) >>> 0);
  });

  test("without user notification, violations kill the process", () => {
    const k = compileFilter({ arch: X, rules, defaultAction: KILL, notify: false });
    expect(run(k, "write")).toBe(RET.KILL_PROCESS);
    expect(run(k, "ptrace")).toBe(RET.KILL_PROCESS);
    expect(run(k, "read")).toBe(RET.ALLOW);
  });

  test("the exec magic lets through exactly the first execveat", () => {
    const p = withMagic(f, 0x0123456789abcdefn);
    const call = (a5: bigint) => evaluate(p, { nr: X.syscalls.execveat!, arch: X.audit, args: [0n, 0n, 0n, 0n, 0n, a5] }).ret >>> 0;
    expect(call(0x0123456789abcdefn)).toBe((RET.USER_NOTIF | REASON.EXEC) >>> 0);
    expect(call(0x0123456789abcdeen)).toBe(NOTIFY_POLICY);
    expect(call(0x1123456789abcdefn)).toBe(NOTIFY_POLICY);
  });

  test("deterministic: the same policy compiles to the same bytes", () => {
    const a = encode(compileFilter({ arch: X, rules, defaultAction: KILL, notify: true }).insns);
    const b = encode(compileFilter({ arch: X, rules, defaultAction: KILL, notify: true }).insns);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
  });

  test("a 300-syscall allowlist dispatches in a handful of compares", () => {
    const names = Object.keys(X.syscalls).slice(0, 300);
    const big = new Map<number, Rule[]>(names.map((n) => [X.syscalls[n]!, [{ kind: "action", action: ALLOW }]]));
    const tree = compileFilter({ arch: X, rules: big, defaultAction: KILL, notify: true, dangerAllowed: new Set(["ptrace"]) });
    const linear = compileFilter({ arch: X, rules: big, defaultAction: KILL, notify: true, layout: "linear", dangerAllowed: new Set(["ptrace"]) });
    const steps = (p: typeof tree) =>
      Object.values(X.syscalls).map((nr) => evaluate(p.insns, { nr, arch: X.audit }).steps);
    expect(Math.max(...steps(tree))).toBeLessThan(30);
    expect(Math.max(...steps(linear))).toBeGreaterThan(3 * Math.max(...steps(tree)));
  });
});

describe("argument rules", () => {
  const on = (name: string, f: Fragment, arch = X) =>
    compileFilter({ arch, rules: new Map([[arch.syscalls[name]!, [frag(f)]]]), defaultAction: KILL, notify: true });

  test("64-bit compares look at both halves", () => {
    const f = on("write", [arg(0), jeq(1, ALLOW), jeq(0x100000002n, ALLOW)]);
    expect(run(f, "write", [1n])).toBe(RET.ALLOW);
    expect(run(f, "write", [0x100000001n])).toBe(NOTIFY_POLICY);
    expect(run(f, "write", [0x100000002n])).toBe(RET.ALLOW);
    expect(run(f, "write", [2n])).toBe(NOTIFY_POLICY);
  });

  test("32-bit compares ignore the high half (ioctl's command is an int)", () => {
    const f = on("ioctl", [arg32(1), jeq(0x5401, ALLOW)]);
    expect(run(f, "ioctl", [0n, 0x5401n])).toBe(RET.ALLOW);
    expect(run(f, "ioctl", [0n, 0xffffffff00005401n])).toBe(RET.ALLOW);
  });

  test("negative values: -1 as 64 and 32 bits", () => {
    const f64 = on("close", [arg(0), jeq(-1, errno(9))]);
    expect(run(f64, "close", [0xffffffffffffffffn])).toBe((RET.ERRNO | 9) >>> 0);
    expect(run(f64, "close", [0xffffffffn])).toBe(NOTIFY_POLICY);
    const f32 = on("close", [arg32(0), jeq(-1, errno(9))]);
    expect(run(f32, "close", [0xffffffffn])).toBe((RET.ERRNO | 9) >>> 0);
  });

  test.each([
    ["jne", jne, [[5n, false], [6n, true], [0x500000005n, true]]],
    ["jset", jset, [[4n, true], [1n, false], [0x400000000n, false], [0x400000004n, true]]],
    ["jge", jge, [[5n, true], [4n, false], [6n, true], [0x100000000n, true]]],
    ["jgt", jgt, [[5n, false], [6n, true], [0x100000000n, true]]],
    ["jle", jle, [[5n, true], [6n, false], [0n, true], [0x100000000n, false]]],
    ["jlt", jlt, [[5n, false], [4n, true], [0x100000000n, false]]],
  ] as const)("%s at 64 bits", (_name, cmp, cases) => {
    const value = _name === "jset" ? 4 : 5;
    const f = on("lseek", [arg(2), cmp(value, ALLOW)]);
    for (const [v, allowed] of cases) {
      expect(`${v}:${run(f, "lseek", [0n, 0n, v]) === RET.ALLOW}`).toBe(`${v}:${allowed}`);
    }
  });

  test("labels and goto", () => {
    const f = on("mmap", [arg32(2), jset(4, "exec"), ALLOW, label("exec"), arg32(3), jset(0x20, errno(13)), goto(KILL)]);
    expect(run(f, "mmap", [0n, 0n, 3n])).toBe(RET.ALLOW);
    expect(run(f, "mmap", [0n, 0n, 4n, 0x22n])).toBe((RET.ERRNO | 13) >>> 0);
    expect(run(f, "mmap", [0n, 0n, 4n, 0x2n])).toBe(NOTIFY_POLICY);
  });

  test("compile errors name the problem", () => {
    expect(() => on("read", [jeq(1, ALLOW)])).toThrow("before arg(n)");
    expect(() => on("read", [arg(0), jeq(1, "nowhere")])).toThrow('label "nowhere" is never placed');
    expect(() => on("read", [label("x"), arg(0), jeq(1, "x")])).toThrow("BPF jumps only forward");
    expect(() => on("read", [arg(9), jeq(1, ALLOW)])).toThrow("arg(9) is out of range");
    expect(() => on("read", [arg32(0), jeq(0x100000000n, ALLOW)])).toThrow("does not fit arg32");
    // 64-bit values are checked too, not silently cut to 64 bits (which would compare another value).
    expect(() => on("read", [arg(0), jeq(1n << 64n, ALLOW)])).toThrow("rule for read (0): 18446744073709551616 does not fit arg(0)");
    expect(() => on("read", [arg(0), jeq(-(1n << 63n) - 1n, ALLOW)])).toThrow("does not fit arg(0)");
    expect(() => on("read", [arg(0), jeq((1n << 64n) - 1n, ALLOW), jeq(-(1n << 63n), ALLOW)])).not.toThrow();
    // A number is taken only when exact: 1.5 used to become 1, 2 ** 64 - 1 is 2 ** 64 as a number.
    expect(() => jeq(1.5, ALLOW)).toThrow("jeq(1.5): not an integer");
    expect(() => jset(2 ** 64 - 1, ALLOW)).toThrow("beyond ±2^53 a number is not exact: pass a bigint");
    expect(() => jeq(Number.NaN, ALLOW)).toThrow("not an integer");
  });

  test("jumps farther than 255 instructions get trampolines", () => {
    // A compare whose target sits past 300 compares.
    const body: (Node | Action)[] = [arg(0), jeq(999, "far")];
    for (let i = 0; i < 300; i++) body.push(jeq(1000 + i, errno(1 + (i % 100))));
    body.push(KILL, label("far"), ALLOW);
    const f = on("read", body);
    expect(f.insns.length).toBeGreaterThan(600);
    expect(run(f, "read", [999n])).toBe(RET.ALLOW);
    expect(run(f, "read", [1000n + 150n])).toBe((RET.ERRNO | 51) >>> 0);
    expect(run(f, "read", [5n])).toBe(NOTIFY_POLICY);
  });

  test("the kernel's 4096-instruction limit is checked at build time", () => {
    const b = new PolicyBuilder();
    const body: (Node | Action)[] = [arg(0)];
    for (let i = 0; i < 2100; i++) body.push(jeq(0x100000000n + BigInt(i), ALLOW));
    b.addPolicyOnSyscall("read", body);
    let error: unknown;
    try {
      b.build();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PolicyError);
    expect(String(error)).toContain("the kernel's limit is 4096");
  });

  test("aarch64 compiles with its own numbers and arch", () => {
    const f = on("write", [arg(0), jeq(1, ALLOW)], A);
    expect(run(f, "write", [1n], A)).toBe(RET.ALLOW);
    expect(evaluate(f.insns, { nr: A.syscalls.write!, arch: X.audit, args: [1n] }).ret >>> 0).toBe((RET.USER_NOTIF | REASON.ARCH) >>> 0);
  });
});

describe("property: tree and linear layouts agree", () => {
  // A small deterministic PRNG so a failure can be replayed from its seed.
  function rng(seed: number) {
    let s = seed >>> 0;
    return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  }
  const values = [0n, 1n, 2n, 3n, 4n, 0x5401n, 0xffffffffn, 0x100000000n, 0x100000001n, 0xffffffffffffffffn, 1n << 63n];

  function randomPolicy(r: () => number): Map<number, Rule[]> {
    const names = Object.keys(X.syscalls);
    const rules = new Map<number, Rule[]>();
    const n = 5 + Math.floor(r() * 120);
    for (let i = 0; i < n; i++) {
      const nr = X.syscalls[names[Math.floor(r() * names.length)]!]!;
      const pick = r();
      const action = pick < 0.6 ? ALLOW : pick < 0.8 ? errno(1 + Math.floor(r() * 40)) : KILL;
      if (r() < 0.7) {
        rules.set(nr, [{ kind: "action", action }]);
      } else {
        const f: (Node | Action)[] = [];
        const cmps = [jeq, jne, jset, jge, jgt, jle, jlt];
        for (let j = 0; j < 1 + Math.floor(r() * 4); j++) {
          f.push(r() < 0.5 ? arg(Math.floor(r() * 6)) : arg32(Math.floor(r() * 6)));
          const cmp = cmps[Math.floor(r() * cmps.length)]!;
          const v = values[Math.floor(r() * values.length)]!;
          const target = r() < 0.5 ? ALLOW : errno(1 + Math.floor(r() * 40));
          f.push(cmp(f[f.length - 1] && (f[f.length - 1] as { width?: number }).width === 32 ? v & 0xffffffffn : v, target));
        }
        if (r() < 0.5) f.push(action);
        rules.set(nr, [frag(f)]);
      }
    }
    return rules;
  }

  test("on 300 random policies × 200 random calls", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = rng(seed);
      const rules = randomPolicy(r);
      const dflt = r() < 0.8 ? KILL : errno(1);
      const spec = { arch: X, rules, defaultAction: dflt, notify: r() < 0.5 };
      const tree = compileFilter(spec);
      const linear = compileFilter({ ...spec, layout: "linear" });
      const nrs = [...rules.keys()];
      for (let i = 0; i < 200; i++) {
        const nr = r() < 0.7 && nrs.length ? nrs[Math.floor(r() * nrs.length)]! : Math.floor(r() * 500);
        const args = Array.from({ length: 6 }, () => values[Math.floor(r() * values.length)]!);
        const arch = r() < 0.05 ? 0x40000003 : X.audit;
        const data = { nr: r() < 0.03 ? nr | 0x40000000 : nr, arch, args };
        const a = evaluate(tree.insns, data).ret >>> 0;
        const b = evaluate(linear.insns, data).ret >>> 0;
        if (a !== b) throw new Error(`seed ${seed}: nr ${data.nr} args ${args}: tree 0x${a.toString(16)} linear 0x${b.toString(16)}`);
      }
    }
  });

  test("both agree with a direct reading of the rules", () => {
    // Reference semantics: first matching rule; safety rules excluded by
    // allowing every dangerous name and testing only plain actions.
    const r = rng(7);
    const names = Object.keys(X.syscalls).filter((n) => !["execveat", "clone", "clone3", "unshare", "ioctl", "seccomp"].includes(n));
    const rules = new Map<number, Rule[]>();
    const expected = new Map<number, number>();
    for (const name of names) {
      const nr = X.syscalls[name]!;
      const pick = r();
      if (pick < 0.4) continue;
      const action = pick < 0.8 ? ALLOW : errno(1 + Math.floor(r() * 30));
      rules.set(nr, [{ kind: "action", action }]);
      expected.set(nr, action.kind === "allow" ? RET.ALLOW : (RET.ERRNO | (action as { errno: number }).errno) >>> 0);
    }
    const dangerAllowed = new Set<string>([...DANGEROUS_SYSCALLS, ...Object.keys(DANGEROUS_USES)]);
    const f = compileFilter({ arch: X, rules, defaultAction: KILL, notify: true, dangerAllowed });
    for (const name of names) {
      const nr = X.syscalls[name]!;
      expect(`${name}:${evaluate(f.insns, { nr, arch: X.audit }).ret >>> 0}`).toBe(`${name}:${expected.get(nr) ?? NOTIFY_POLICY}`);
    }
    void NOTIFY_DANGER;
  });
});
