/**
 * Compiles a policy's syscall rules to a seccomp-BPF program.
 *
 *   prelude   arch check (any other arch is a violation, i386's int 0x80
 *             included), x32 numbers refused, the first-execveat magic
 *   dispatch  a balanced binary search over syscall-number ranges: runs of
 *             numbers with the same constant action are one range, so a
 *             300-syscall allowlist costs ~8 compares where Sandbox2's linear
 *             list costs up to 300 (kafel and libseccomp's "optimize 2" do the
 *             same)
 *   leaves    a constant action is one `ret`; argument rules are emitted in
 *             place, the safety rules first, then the policy's, then the
 *             default action
 *
 * Output is deterministic: the same policy gives the same bytes. The per-spawn
 * exec magic is patched into the two instructions `magic` points at.
 * `layout: "linear"` emits Sandbox2's shape (a compare per syscall) for the
 * property tests and the benchmark. Either layout is checked against the
 * rules before it is returned (src/policy/verify.ts).
 */
import { Asm, FALL, type Label } from "./assembler.ts";
import { type Arch, NO_SYSCALL_NR } from "./arch.ts";
import { BPF, type Insn, RET, SECCOMP_DATA } from "./bpf.ts";
import { type Action, type Compare, type Node, type Rule, sameAction, type Target } from "./rules.ts";
import { isDangerName, REASON, safetyRules } from "./safety.ts";
import { checkedNumbers, verifyFilter } from "./verify.ts";

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

export interface Filter {
  readonly insns: readonly Insn[];
  /** Indices of the instructions comparing the low and high halves of the exec magic. */
  readonly magic: readonly [number, number];
}

export class CompileError extends Error {}

/** The filter's return value for an action. */
export function retValue(action: Action, notify: boolean): number {
  switch (action.kind) {
    case "allow":
      return RET.ALLOW;
    case "errno":
      return (RET.ERRNO | (action.errno & RET.DATA)) >>> 0;
    case "kill":
      return notify ? (RET.USER_NOTIF | (action.reason ?? REASON.POLICY)) >>> 0 : RET.KILL_PROCESS;
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
    if (!isDangerName(name)) throw new CompileError(`dangerAllowUnsafe: ${JSON.stringify(name)} is not a safety rule`);
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

/** Copies `insns` with the exec magic written into its two compares. */
export function withMagic(filter: Filter, magic: bigint): Insn[] {
  const out = filter.insns.map((i) => ({ ...i }));
  out[filter.magic[0]]!.k = Number(magic & 0xffffffffn);
  out[filter.magic[1]]!.k = Number((magic >> 32n) & 0xffffffffn);
  return out;
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

// ---- argument rules ----

/** One syscall's rules in order, then the default; A holds garbage after. */
function emitRules(
  asm: Asm,
  rules: readonly Rule[],
  dflt: Action,
  ret: (a: Action) => number,
  where: string,
): void {
  const stubs = new Map<number, Label>();
  const stub = (a: Action): Label => {
    const v = ret(a);
    let l = stubs.get(v);
    if (l === undefined) stubs.set(v, (l = asm.label()));
    return l;
  };
  let terminated = false;
  for (const rule of rules) {
    if (rule.kind === "action") {
      asm.ret(ret(rule.action));
      terminated = true;
      break;
    }
    emitFragment(asm, rule.nodes, stub, ret, where);
  }
  if (!terminated) asm.ret(ret(dflt));
  for (const [value, l] of stubs) {
    asm.place(l);
    asm.ret(value);
  }
}

const LO = (n: number) => SECCOMP_DATA.argLo(n);
const HI = (n: number) => SECCOMP_DATA.argHi(n);

function emitFragment(
  asm: Asm,
  nodes: readonly Node[],
  stub: (a: Action) => Label,
  ret: (a: Action) => number,
  where: string,
): void {
  const labels = new Map<string, { id: Label; placed: boolean }>();
  const labelId = (name: string) => {
    let l = labels.get(name);
    if (!l) labels.set(name, (l = { id: asm.label(), placed: false }));
    if (l.placed) {
      throw new CompileError(
        `${where}: label "${name}" is placed before a jump to it (BPF jumps only forward)`,
      );
    }
    return l.id;
  };
  const target = (t: Target): Label => ("label" in t ? labelId(t.label) : stub(t));
  let sel: { arg: number; width: 32 | 64 } | undefined;
  let inA: number | undefined; // the seccomp_data offset A holds, when known
  const load = (off: number) => {
    if (inA !== off) asm.op(BPF.LD | BPF.W | BPF.ABS, off);
    inA = off;
  };

  for (const node of nodes) {
    switch (node.op) {
      case "load":
        if (!Number.isInteger(node.arg) || node.arg < 0 || node.arg > 5) {
          throw new CompileError(`${where}: arg(${node.arg}) is out of range (0..5)`);
        }
        sel = { arg: node.arg, width: node.width };
        break;
      case "label": {
        const l = labels.get(node.name);
        if (l?.placed) throw new CompileError(`${where}: label "${node.name}" is placed twice`);
        const id = l?.id ?? asm.label();
        labels.set(node.name, { id, placed: true });
        asm.place(id);
        inA = undefined; // jumps arrive here from anywhere
        break;
      }
      case "goto":
        asm.ja(target(node.target));
        break;
      case "ret":
        asm.ret(ret(node.action));
        break;
      case "cmp": {
        if (!sel) throw new CompileError(`${where}: ${node.cmp} before arg(n) or arg32(n)`);
        const t = target(node.target);
        if (sel.width === 32) {
          if (node.value > 0xffffffffn || node.value < -0x80000000n) {
            throw new CompileError(`${where}: ${node.value} does not fit arg32(${sel.arg})`);
          }
          load(LO(sel.arg));
          cmp32(asm, node.cmp, Number(BigInt.asUintN(32, node.value)), t);
        } else {
          if (node.value > 0xffffffffffffffffn || node.value < -0x8000000000000000n) {
            throw new CompileError(`${where}: ${node.value} does not fit arg(${sel.arg}) (64 bits)`);
          }
          cmp64(asm, node.cmp, BigInt.asUintN(64, node.value), sel.arg, t, load);
          inA = undefined; // its false exit is reached with either half in A
        }
        break;
      }
    }
  }
  for (const [name, l] of labels) {
    if (!l.placed) throw new CompileError(`${where}: label "${name}" is never placed`);
  }
}

function cmp32(asm: Asm, cmp: Compare, k: number, t: Label): void {
  switch (cmp) {
    case "jeq":
      return asm.jmp(BPF.JEQ, k, t, FALL);
    case "jne":
      return asm.jmp(BPF.JEQ, k, FALL, t);
    case "jset":
      return asm.jmp(BPF.JSET, k, t, FALL);
    case "jge":
      return asm.jmp(BPF.JGE, k, t, FALL);
    case "jgt":
      return asm.jmp(BPF.JGT, k, t, FALL);
    case "jle":
      return asm.jmp(BPF.JGT, k, FALL, t);
    case "jlt":
      return asm.jmp(BPF.JGE, k, FALL, t);
  }
}

/**
 * A 64-bit unsigned compare from two 32-bit halves: the high half decides
 * unless it is equal, then the low half does. Jumps to `t` when true, falls
 * through when false.
 */
function cmp64(
  asm: Asm,
  cmp: Compare,
  v: bigint,
  arg: number,
  t: Label,
  load: (off: number) => void,
): void {
  const hi = Number(v >> 32n);
  const lo = Number(v & 0xffffffffn);
  const no = asm.label();
  switch (cmp) {
    case "jeq":
      load(HI(arg));
      asm.jmp(BPF.JEQ, hi, FALL, no);
      load(LO(arg));
      asm.jmp(BPF.JEQ, lo, t, FALL);
      break;
    case "jne":
      load(HI(arg));
      asm.jmp(BPF.JEQ, hi, FALL, t);
      load(LO(arg));
      asm.jmp(BPF.JEQ, lo, FALL, t);
      break;
    case "jset":
      if (hi) {
        load(HI(arg));
        asm.jmp(BPF.JSET, hi, t, FALL);
      }
      if (lo) {
        load(LO(arg));
        asm.jmp(BPF.JSET, lo, t, FALL);
      }
      break;
    case "jge":
    case "jgt":
      load(HI(arg));
      asm.jmp(BPF.JGT, hi, t, FALL);
      asm.jmp(BPF.JEQ, hi, FALL, no);
      load(LO(arg));
      asm.jmp(cmp === "jge" ? BPF.JGE : BPF.JGT, lo, t, FALL);
      break;
    case "jle":
    case "jlt":
      // true unless greater (jle) or greater-or-equal (jlt)
      load(HI(arg));
      asm.jmp(BPF.JGT, hi, no, FALL);
      asm.jmp(BPF.JEQ, hi, FALL, t);
      load(LO(arg));
      asm.jmp(cmp === "jle" ? BPF.JGT : BPF.JGE, lo, no, t);
      break;
  }
  asm.place(no);
}
