/**
 * Compiles a policy's syscall rules to a seccomp-BPF program.
 *
 *   prelude   arch check (any other arch is a violation, i386's int 0x80
 *             included), x32 numbers refused (not -1: no syscall), the
 *             first-execveat magic
 *   dispatch  a balanced binary search over syscall-number ranges: runs of
 *             numbers with the same constant action are one range, so a
 *             300-syscall allowlist costs ~8 compares where Sandbox2's linear
 *             list costs up to 300 (kafel and libseccomp's "optimize 2" do the
 *             same)
 *   leaves    a constant action is one `ret`; argument rules are emitted in
 *             place (src/policy/fragments.ts), the safety rules first, then
 *             the policy's, then the default action
 *
 * Output is deterministic: the same policy gives the same bytes. The per-spawn
 * exec magic is patched into the two instructions `magic` points at.
 * `layout: "linear"` emits Sandbox2's shape (a compare per syscall) for the
 * property tests and the benchmark. Either layout is checked against the
 * rules before it is returned (src/policy/verify.ts).
 */
import { Asm, FALL } from "./assembler.ts";
import { type Arch, NO_SYSCALL_NR } from "./arch.ts";
import { BPF, type Insn, RET, SECCOMP_DATA } from "./bpf.ts";
import { emitRules } from "./fragments.ts";
import { type Action, CompileError, type Rule, sameAction } from "./rules.ts";
import { isDangerName, REASON, safetyRules } from "./safety.ts";
import { checkedNumbers, verifyFilter } from "./verify.ts";
import type { Filter } from "./filter.ts";
import { quote } from "../names.ts";

export interface FilterSpec {
  readonly arch: Arch;
  /** The policy's rules by syscall number, first match first. */
  readonly rules: ReadonlyMap<number, readonly Rule[]>;
  readonly defaultAction: Action;
  /** Safety rules relaxed by dangerAllowUnsafe(). */
  readonly dangerAllowed?: ReadonlySet<string>;
  /** Violations and TRACE notify the monitor (else violations kill the process). */
  readonly notify: boolean;
  readonly layout?: "tree" | "linear";
}

export { type Filter, withMagic } from "./filter.ts";

const EPERM = 1;

/** The filter's return value for an action. */
export function retValue(action: Action, notify: boolean): number {
  switch (action.kind) {
    case "allow":
      return RET.ALLOW;
    case "errno":
      return (RET.ERRNO | (action.errno & RET.DATA)) >>> 0;
    case "kill":
      return notify ? (RET.USER_NOTIF | (action.reason ?? REASON.POLICY)) >>> 0 : RET.KILL_PROCESS;
    case "refuse":
      // Without the monitor nothing records it: the errno alone (EPERM: the
      // filter cannot tell a number the arch lacks, which the monitor
      // answers with ENOSYS).
      return notify ? (RET.USER_NOTIF | (action.reason ?? REASON.REFUSED)) >>> 0 : (RET.ERRNO | EPERM) >>> 0;
    case "trace":
      if (!notify) {
        throw new CompileError(
          "TRACE rules need seccomp user notification, which is unavailable here",
        );
      }
      return (RET.USER_NOTIF | REASON.TRACE) >>> 0;
  }
}

/** The rules of every syscall: safety rules first, then the policy's. */
export function effectiveRules(spec: FilterSpec): Map<number, Rule[]> {
  for (const name of spec.dangerAllowed ?? []) {
    if (!isDangerName(name)) throw new CompileError(`dangerAllowUnsafe: ${quote(name)} is not a safety rule`);
  }
  const safety = safetyRules(spec.arch, spec.rules, spec.dangerAllowed ?? new Set());
  const all = new Map<number, Rule[]>();
  for (const [nr, rules] of spec.rules) all.set(nr, [...rules]);
  for (const [nr, rules] of safety) all.set(nr, [...rules, ...(all.get(nr) ?? [])]);
  return all;
}

/** A leaf's action when its rules reduce to one (no argument checks). */
function constantOf(rules: readonly Rule[] | undefined, dflt: Action): Action | undefined {
  if (!rules || rules.length === 0) return dflt;
  const first = rules[0]!;
  return first.kind === "action" ? first.action : undefined;
}

export function compileFilter(spec: FilterSpec): Filter {
  const asm = new Asm();
  const { arch, notify } = spec;
  const ret = (a: Action) => retValue(a, notify);
  const violation = (reason: number) =>
    notify ? (RET.USER_NOTIF | reason) >>> 0 : RET.KILL_PROCESS;
  const exec = notify ? (RET.USER_NOTIF | REASON.EXEC) >>> 0 : RET.ALLOW;

  // ---- prelude ----
  asm.op(BPF.LD | BPF.W | BPF.ABS, SECCOMP_DATA.arch);
  const archOk = asm.label();
  asm.jmp(BPF.JEQ, arch.audit, archOk, FALL);
  asm.ret(violation(REASON.ARCH));
  asm.place(archOk);
  asm.op(BPF.LD | BPF.W | BPF.ABS, SECCOMP_DATA.nr);
  if (arch.x32Bit) {
    // -1 (0xffffffff) has the x32 bit too, but is no syscall (src/policy/arch.ts
    // NO_SYSCALL): it goes on to the dispatch, whose default action decides
    // it as any number that names no syscall.
    const high = asm.label();
    const ok = asm.label();
    asm.jmp(BPF.JGE, arch.x32Bit, high, ok);
    asm.place(high);
    asm.jmp(BPF.JEQ, NO_SYSCALL_NR, ok, FALL);
    asm.ret(violation(REASON.X32));
    asm.place(ok);
  }
  const execveat = arch.syscalls.execveat;
  if (execveat === undefined) throw new CompileError(`no execveat on ${arch.name}`);
  const notExec = asm.label();
  const reload = asm.label();
  asm.jmp(BPF.JEQ, execveat, FALL, notExec);
  asm.op(BPF.LD | BPF.W | BPF.ABS, SECCOMP_DATA.argLo(5));
  asm.jmp(BPF.JEQ, 0, FALL, reload, "magic-lo");
  asm.op(BPF.LD | BPF.W | BPF.ABS, SECCOMP_DATA.argHi(5));
  asm.jmp(BPF.JEQ, 0, FALL, reload, "magic-hi");
  asm.ret(exec);
  asm.place(reload);
  asm.op(BPF.LD | BPF.W | BPF.ABS, SECCOMP_DATA.nr);
  asm.place(notExec);

  // ---- dispatch ----
  const rules = effectiveRules(spec);
  const nrs = checkedNumbers(rules);
  const emitLeaf = (nr: number | undefined) => {
    const r = nr === undefined ? undefined : rules.get(nr);
    emitRules(asm, r ?? [], spec.defaultAction, ret, nr === undefined ? "rule" : `rule for ${syscallLabel(nr)}`);
  };
  const names = new Map(Object.entries(arch.syscalls).map(([name, n]) => [n, name]));
  const syscallLabel = (nr: number) => (names.has(nr) ? `${names.get(nr)} (${nr})` : `syscall ${nr}`);
  if (spec.layout === "linear") {
    const leaves = nrs.map(() => asm.label());
    nrs.forEach((nr, i) => {
      const c = constantOf(rules.get(nr), spec.defaultAction);
      if (c) {
        const next = asm.label();
        asm.jmp(BPF.JEQ, nr, FALL, next);
        asm.ret(ret(c));
        asm.place(next);
      } else {
        asm.jmp(BPF.JEQ, nr, leaves[i]!, FALL);
      }
    });
    asm.ret(ret(spec.defaultAction));
    nrs.forEach((nr, i) => {
      if (constantOf(rules.get(nr), spec.defaultAction)) return;
      asm.place(leaves[i]!);
      emitLeaf(nr);
    });
  } else {
    emitTree(asm, segments(nrs, rules, spec.defaultAction), emitLeaf, ret);
  }

  const { insns, tags } = asm.assemble();
  const magic: [number, number] = [tags.get("magic-lo")!, tags.get("magic-hi")!];
  verifyFilter(insns, magic, {
    arch,
    rules,
    defaultAction: spec.defaultAction,
    ret,
    violation,
    exec,
  });
  return { insns, magic };
}

// ---- dispatch tree ----

interface Segment {
  /** First syscall number of the range; it ends where the next begins. */
  lo: number;
  /** The syscall whose rules apply (a one-number range), or a constant. */
  nr?: number;
  constant?: Action;
}

/** `nrs`: the rules' numbers, checked and sorted (checkedNumbers). */
function segments(nrs: readonly number[], rules: ReadonlyMap<number, readonly Rule[]>, dflt: Action): Segment[] {
  const segs: Segment[] = [];
  const push = (s: Segment) => {
    const last = segs[segs.length - 1];
    if (last?.constant && s.constant && sameAction(last.constant, s.constant)) return;
    segs.push(s);
  };
  let prev = 0;
  for (const nr of nrs) {
    if (nr > prev) push({ lo: prev, constant: dflt });
    const c = constantOf(rules.get(nr), dflt);
    push(c ? { lo: nr, constant: c } : { lo: nr, nr });
    prev = nr + 1;
  }
  push({ lo: prev, constant: dflt });
  return segs;
}

function emitTree(
  asm: Asm,
  segs: Segment[],
  emitLeaf: (nr: number | undefined) => void,
  ret: (a: Action) => number,
): void {
  if (segs.length === 1) {
    const s = segs[0]!;
    if (s.constant) asm.ret(ret(s.constant));
    else emitLeaf(s.nr);
    return;
  }
  const mid = segs.length >> 1;
  const right = asm.label();
  asm.jmp(BPF.JGE, segs[mid]!.lo, right, FALL);
  emitTree(asm, segs.slice(0, mid), emitLeaf, ret);
  asm.place(right);
  emitTree(asm, segs.slice(mid), emitLeaf, ret);
}
