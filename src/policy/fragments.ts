/**
 * One syscall's rules emitted as BPF (a leaf of the dispatch): whole-syscall
 * actions as returns, argument programs (src/policy/rules.ts) as compares on
 * the 32-bit halves of seccomp_data's arguments, then the default action.
 * 64-bit compares are built from two 32-bit ones: the high half decides
 * unless it is equal, then the low half does.
 */
import { type Asm, FALL, type Label } from "./assembler.ts";
import { BPF, SECCOMP_DATA } from "./bpf.ts";
import { type Action, type Compare, CompileError, type Node, type Rule, type Target } from "./rules.ts";

/** One syscall's rules in order, then the default; A holds garbage after. */
export function emitRules(
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
