/**
 * The compiler checks its own output (src/policy/verify.ts): a program that
 * disagrees with the rule list it was compiled from is refused with an
 * internal error naming the syscall, and never returned. Faults are injected
 * by mutating the emitted program (every compare of the dispatch tree moved
 * by one, every return changed) and inside compileFilter itself, and keys
 * that are no syscall numbers (what "toString" once became) are refused
 * before a tree is built on them.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { Asm } from "../../src/policy/assembler.ts";
import { ARCHES } from "../../src/policy/arch.ts";
import { BPF, type Insn, RET } from "../../src/policy/bpf.ts";
import { PolicyBuilder } from "../../src/policy/builder.ts";
import { compileFilter, effectiveRules, type FilterSpec, retValue } from "../../src/policy/compiler.ts";
import { applyProfileRules } from "../../src/policy/profiles.ts";
import { ALLOW, arg, arg32, errno, jeq, jgt, jle, jset, KILL, label, nodes, type Rule } from "../../src/policy/rules.ts";
import { REASON } from "../../src/policy/safety.ts";
import { FilterInternalError, verifyFilter } from "../../src/policy/verify.ts";
import { evaluate } from "../../src/policy/interpreter.ts";

const X = ARCHES.x86_64;

function intentOf(spec: FilterSpec) {
  return {
    arch: spec.arch,
    rules: effectiveRules(spec),
    defaultAction: spec.defaultAction,
    ret: (a: Parameters<typeof retValue>[0]) => retValue(a, spec.notify),
    violation: (reason: number) => (spec.notify ? (RET.USER_NOTIF | reason) >>> 0 : RET.KILL_PROCESS),
    exec: spec.notify ? (RET.USER_NOTIF | REASON.EXEC) >>> 0 : RET.ALLOW,
  };
}

/**
 * Indices of the dispatch's compares on the syscall number: walked from the
 * end of the prelude (the reload of nr after the exec magic) along every
 * path while A holds nr (tree compares follow leaves that load arguments).
 */
function dispatchCompares(insns: readonly Insn[]): number[] {
  const nrLoads = insns.flatMap((i, pc) => ((i.code & 0x07) === BPF.LD && i.k === 0 ? [pc] : []));
  const start = nrLoads[1]! + 1;
  const found = new Set<number>();
  const seen = new Set<string>();
  const walk = (pc: number, aIsNr: boolean): void => {
    while (pc < insns.length && !seen.has(`${pc}:${aIsNr}`)) {
      seen.add(`${pc}:${aIsNr}`);
      const i = insns[pc]!;
      const cls = i.code & 0x07;
      if (cls === BPF.RET) return;
      if (cls === BPF.LD) aIsNr = i.k === 0;
      if (cls === BPF.JMP) {
        if ((i.code & 0xf0) === BPF.JA) {
          pc += 1 + i.k;
          continue;
        }
        if (aIsNr && pc >= start) found.add(pc);
        walk(pc + 1 + i.jt, aIsNr);
        pc += 1 + i.jf;
        continue;
      }
      pc++;
    }
  };
  walk(0, false);
  return [...found].sort((a, b) => a - b);
}

/**
 * Argument vectors for brute force: every argument set to each constant the
 * program compares an argument with (and its neighbours), in the low half,
 * the high half, both.
 */
function argumentPool(insns: readonly Insn[]): bigint[][] {
  const ks = new Set<bigint>([0n]);
  let argLoaded = false;
  for (const i of insns) {
    if ((i.code & 0x07) === BPF.LD) argLoaded = i.k >= 16;
    if (!argLoaded || (i.code & 0x07) !== BPF.JMP || (i.code & 0xf0) === BPF.JA) continue;
    for (const k of [i.k, i.k + 1, i.k - 1]) {
      const v = BigInt(k >>> 0);
      ks.add(v).add(v << 32n).add(v | (v << 32n));
    }
  }
  return [...ks].map((v) => [v, v, v, v, v, v]);
}

function differs(a: readonly Insn[], b: readonly Insn[], audit: number, nrs: number[], pool: bigint[][]): boolean {
  return nrs.some((nr) =>
    pool.some((args) => evaluate(a, { nr, arch: audit, args }).ret !== evaluate(b, { nr, arch: audit, args }).ret),
  );
}

/** [name, spec, every return reachable (no rule shadowed by an earlier one)] */
const specs: [string, FilterSpec, boolean][] = [
  ["the shell profile", { ...specOf(applyProfileRules(new PolicyBuilder({ arch: "x86_64" }), "shell").build()), notify: true }, false],
  ["the static profile, linear", { ...specOf(applyProfileRules(new PolicyBuilder({ arch: "x86_64" }), "static").build()), notify: false, layout: "linear" }, false],
  ["a small policy on aarch64", {
    arch: ARCHES.aarch64,
    rules: new Map<number, Rule[]>([
      [ARCHES.aarch64.syscalls.read!, [{ kind: "action", action: ALLOW }]],
      [ARCHES.aarch64.syscalls.close!, [{ kind: "action", action: errno(9) }]],
      [ARCHES.aarch64.syscalls.write!, [{ kind: "fragment", nodes: nodes([arg(0), jeq(1, ALLOW), jeq(0x100000002n, errno(5))]) }]],
    ]),
    defaultAction: KILL,
    notify: true,
  }, true],
  ["a small policy on x86_64, without user notification", {
    arch: X,
    rules: new Map<number, Rule[]>([
      [X.syscalls.getppid!, [{ kind: "action", action: ALLOW }]],
      [X.syscalls.open!, [{ kind: "action", action: errno(2) }]],
      [X.syscalls.mmap!, [{ kind: "fragment", nodes: nodes([arg32(2), jset(4, "exec"), ALLOW, label("exec"), arg(3), jgt(0xffffffffn, errno(22)), jle(0x20, errno(13))]) }]],
    ]),
    defaultAction: errno(1),
    notify: false,
    // The setid-bits safety rule puts alike leaves side by side (chmod 90,
    // fchmod 91): without it, every range of this policy decides unlike its neighbours.
    dangerAllowed: new Set(["setid-bits"]),
  }, true],
];

function specOf(p: ReturnType<PolicyBuilder["build"]>): Omit<FilterSpec, "notify"> {
  return { arch: p.arch, rules: p.rules, defaultAction: p.defaultAction, dangerAllowed: p.dangerAllowed };
}

describe.each(specs)("%s", (_name, spec, allReachable) => {
  const f = compileFilter(spec);
  const intent = intentOf(spec);

  test("the emitted program passes its own check", () => {
    expect(() => verifyFilter(f.insns, f.magic, intent)).not.toThrow();
  });

  test("every compare of the dispatch moved by one that changes a verdict is refused, naming a syscall", () => {
    const at = dispatchCompares(f.insns);
    expect(at.length).toBeGreaterThan(2);
    const pool = argumentPool(f.insns);
    let refused = 0;
    for (const pc of at) {
      for (const delta of [1, -1]) {
        const bad = f.insns.map((i) => ({ ...i }));
        const k = f.insns[pc]!.k;
        bad[pc]!.k = (k + delta) >>> 0;
        let error: unknown;
        try {
          verifyFilter(bad, f.magic, intent);
        } catch (e) {
          error = e;
        }
        // In a profile, two leaves can decide alike (mmap and mprotect in the
        // shell profile both allow everything): moving a number between them
        // changes nothing; brute force around the compare tells. In the small
        // policies every range decides unlike its neighbours.
        const changed = allReachable || differs(f.insns, bad, spec.arch.audit, [k - 2, k - 1, k, k + 1, k + 2], pool);
        const what = `${pc}${delta > 0 ? "+" : "-"}`;
        if (changed) expect(`${what}: ${error instanceof FilterInternalError}`).toBe(`${what}: true`);
        if (error) {
          refused++;
          expect((error as Error).message).toMatch(/disagrees with its rules for \S+ \(\d+\)/);
        }
      }
    }
    expect(refused).toBeGreaterThan(at.length);
  });

});

// Where a rule is shadowed by an earlier one (as in the profiles), its
// returns are dead code: a change there changes nothing, and the check
// rightly lets it pass. The small policies have none.
describe.each(specs.filter(([, , allReachable]) => allReachable))("%s", (_name, spec) => {
  const f = compileFilter(spec);
  const intent = intentOf(spec);

  test("every return changed is refused", () => {
    const rets = f.insns.flatMap((i, pc) => ((i.code & 0x07) === BPF.RET ? [pc] : []));
    for (const pc of rets) {
      const bad = f.insns.map((i) => ({ ...i }));
      bad[pc]!.k = bad[pc]!.k === RET.ALLOW ? (RET.ERRNO | 1) >>> 0 : RET.ALLOW;
      let outcome = "passed";
      try {
        verifyFilter(bad, f.magic, intent);
      } catch (e) {
        outcome = e instanceof FilterInternalError ? "refused" : String(e);
      }
      expect(`${pc}: ${outcome}`).toBe(`${pc}: refused`);
    }
  });
});

describe("inside the compiler", () => {
  const assemble = Asm.prototype.assemble;
  afterEach(() => {
    Asm.prototype.assemble = assemble;
  });

  test("a fault injected into the assembled tree: compileFilter and build() emit no filter", () => {
    // The test hook: the assembler's output is corrupted before the check sees it.
    Asm.prototype.assemble = function (this: Asm) {
      const out = assemble.call(this);
      const pc = dispatchCompares(out.insns)[0]!;
      out.insns[pc]!.k += 1;
      return out;
    };
    const spec: FilterSpec = { arch: X, rules: new Map([[X.syscalls.getppid!, [{ kind: "action", action: ALLOW }]]]), defaultAction: KILL, notify: true };
    expect(() => compileFilter(spec)).toThrow(FilterInternalError);
    const b = new PolicyBuilder({ arch: "x86_64" }).allowSyscall("getppid");
    expect(() => b.build()).toThrow(/internal error: the compiled x86_64 filter disagrees with its rules for \S+ \(\d+\).*no filter is emitted/);
  });

  test("the check reads argument rules: a 32-bit compare widened to 64 bits is refused", () => {
    // mprotect: PROT_EXEC refused whatever the high half holds; the corrupted
    // program reads the high half instead of the low one.
    Asm.prototype.assemble = function (this: Asm) {
      const out = assemble.call(this);
      for (const i of out.insns) if ((i.code & 0x07) === BPF.LD && i.k === 16 + 8 * 2) i.k = 20 + 8 * 2;
      return out;
    };
    const rules = new Map<number, Rule[]>([[X.syscalls.mprotect!, [{ kind: "fragment", nodes: nodes([arg32(2), jset(4, KILL), ALLOW]) }]]]);
    // Without the setid-bits rule, whose open rule reads argument 2 too: the fault shows at mprotect alone.
    expect(() => compileFilter({ arch: X, rules, defaultAction: KILL, notify: true, dangerAllowed: new Set(["setid-bits"]) })).toThrow(/for mprotect \(10\) with arguments/);
  });

  test.each([
    ["NaN", Number.NaN],
    ["a function (what \"toString\" once became)", Object.prototype.toString as unknown as number],
    ["1.5", 1.5],
    ["-1", -1],
    ["70000", 70000],
  ])("a rule keyed by %s is refused before a tree is built", (_what, key) => {
    const rules = new Map<number, Rule[]>([
      [X.syscalls.read!, [{ kind: "action", action: ALLOW }]],
      [key, [{ kind: "action", action: ALLOW }]],
    ]);
    expect(() => compileFilter({ arch: X, rules, defaultAction: KILL, notify: true })).toThrow(/internal error: a rule is keyed by .*, not a syscall number/);
  });
});
