/**
 * The compiler checks its own output before anyone may load it. The rule
 * list is read directly (first rule that decides wins, then the default
 * action: what Sandbox2's linear layout would decide) and must agree with
 * the compiled program for every 32-bit syscall number:
 *
 *   - the program is walked once with the number as ranges (spans below):
 *     every number falls in a span that returns one value whatever the
 *     arguments, or in one that reads them;
 *   - in a span of the first kind, the rules must give that value to the
 *     span's ends and to every number worth naming in it (the arch's
 *     syscalls, each rule's number and its neighbours, -1, the x32 edges):
 *     every other number has no rules and decides as the nearest checked
 *     one without rules does (each run of them begins and ends next to a
 *     rule's number or at the span's end);
 *   - in a span of the second kind, a number must have argument rules of its
 *     own (a number sent into another syscall's rules, one range too far, is
 *     caught even where the verdicts for zero arguments agree), and the
 *     interpreter runs the program for it with arguments at, just below and
 *     just above every value its rules compare.
 *
 * A disagreement is a bug in bunbox, never the user's: an internal error
 * naming the syscall, and no filter. It costs a few hundred interpreted calls
 * per compile (a few ms on a cold start); the built-in profiles in the
 * executable are compiled, and so checked, when it is built (scripts/build.ts).
 */
import { BunboxError } from "../errors.ts";
import { type Arch, MAX_SYSCALL_NR, NO_SYSCALL_NR, syscallName } from "./arch.ts";
import { BPF, type Insn, SECCOMP_DATA } from "./bpf.ts";
import { describeReturn } from "./explain.ts";
import { evaluate } from "./interpreter.ts";
import type { Action, Compare, Node, Rule } from "./rules.ts";
import { REASON } from "./safety.ts";

/** A bug in the compiler caught before its output was used (exit 125). */
export class FilterInternalError extends BunboxError {
  override readonly name = "FilterInternalError";
  constructor(message: string) {
    super("compile", `internal error: ${message}; no filter is emitted (please report this)`);
  }
}

/** What a filter must decide, in the terms of the rules it was compiled from. */
export interface Intent {
  readonly arch: Arch;
  /** Safety rules and the policy's, by syscall number, first match first. */
  readonly rules: ReadonlyMap<number, readonly Rule[]>;
  readonly defaultAction: Action;
  /** The filter's return value for an action, a violation, the first exec. */
  readonly ret: (a: Action) => number;
  readonly violation: (reason: number) => number;
  readonly exec: number;
}

/**
 * Syscall numbers a dispatch tree can be built on: integers in range, in
 * strictly increasing order. A NaN or a function here (a name that slipped
 * through as a number) would scramble the tree's ranges.
 */
export function checkedNumbers(rules: ReadonlyMap<number, unknown>): number[] {
  const nrs = [...rules.keys()];
  for (const nr of nrs) {
    if (!Number.isInteger(nr) || nr < 0 || nr > MAX_SYSCALL_NR) {
      throw new FilterInternalError(`a rule is keyed by ${String(nr)}, not a syscall number (0..${MAX_SYSCALL_NR})`);
    }
  }
  nrs.sort((a, b) => a - b);
  for (let i = 1; i < nrs.length; i++) {
    if (nrs[i]! <= nrs[i - 1]!) throw new FilterInternalError(`syscall numbers are not strictly increasing at ${nrs[i]}`);
  }
  return nrs;
}

// ---- the rules, read directly ----

function compare(cmp: Compare, v: bigint, k: bigint): boolean {
  switch (cmp) {
    case "jeq": return v === k;
    case "jne": return v !== k;
    case "jset": return (v & k) !== 0n;
    case "jge": return v >= k;
    case "jgt": return v > k;
    case "jle": return v <= k;
    case "jlt": return v < k;
  }
}

/** A compare's operands as the program reads them: which argument, how wide, the value cut to that width. */
interface Operand {
  arg: number;
  width: 32 | 64;
  k: bigint;
}

/**
 * An argument program prepared for reading: where each label is, and for
 * each compare its operand. A compare uses the selection (arg or arg32)
 * written before it, whatever path led there, as the compiled code does.
 */
interface Reading {
  labels: Map<string, number>;
  operands: (Operand | undefined)[];
}

const readings = new WeakMap<readonly Node[], Reading>();

function reading(nodes: readonly Node[]): Reading {
  let r = readings.get(nodes);
  if (r) return r;
  r = { labels: new Map(), operands: [] };
  let sel: { arg: number; width: 32 | 64 } | undefined;
  for (const [i, n] of nodes.entries()) {
    if (n.op === "load") sel = { arg: n.arg, width: n.width };
    if (n.op === "label") r.labels.set(n.name, i);
    r.operands.push(n.op === "cmp" && sel ? { ...sel, k: BigInt.asUintN(sel.width, n.value) } : undefined);
  }
  readings.set(nodes, r);
  return r;
}

/** One argument program on `args`: the return value it decides, or undefined when it falls off its end. */
function runFragment(nodes: readonly Node[], args: readonly bigint[], ret: (a: Action) => number): number | undefined {
  const { labels, operands } = reading(nodes);
  let pc = 0;
  while (pc < nodes.length) {
    const n = nodes[pc]!;
    let target: Action | { readonly label: string } | undefined;
    if (n.op === "ret") return ret(n.action);
    if (n.op === "goto") target = n.target;
    else if (n.op === "cmp") {
      const o = operands[pc]!;
      if (compare(n.cmp, BigInt.asUintN(o.width, args[o.arg] ?? 0n), o.k)) target = n.target;
    }
    if (target === undefined) pc++;
    else if ("label" in target) pc = labels.get(target.label)!;
    else return ret(target);
  }
  return undefined;
}

/** The return value the rules give this call (with `magic` as the exec magic). */
export function decide(intent: Intent, nr: number, arch: number, args: readonly bigint[], magic: bigint): number {
  const a = intent.arch;
  if (arch >>> 0 !== a.audit) return intent.violation(REASON.ARCH);
  const n = nr >>> 0;
  if (a.x32Bit && n >= a.x32Bit && n !== NO_SYSCALL_NR) return intent.violation(REASON.X32);
  if (n === a.syscalls.execveat && BigInt.asUintN(64, args[5] ?? 0n) === magic) return intent.exec;
  for (const rule of intent.rules.get(n) ?? []) {
    const r = rule.kind === "action" ? intent.ret(rule.action) : runFragment(rule.nodes, args, intent.ret);
    if (r !== undefined) return r;
  }
  return intent.ret(intent.defaultAction);
}

// ---- the inputs worth trying ----

const HIGH_GARBAGE = 0xdead_beef_0000_0000n;
/** Equal to no compared value (in practice): every list of equalities falls through with it. */
const NONE_OF_THEM = 0xa5a5_a5a5_a5a5_a5a5n;

/**
 * The values that tell a compare's outcomes apart: the value itself (and,
 * at 64 bits, one that differs only in the high half), the neighbours of an
 * ordering bound, a mask's bits in either half; for a 32-bit compare, each
 * with garbage in the high half too, which it must ignore. Unequal to every
 * value: NONE_OF_THEM, and 0, which every argument gets.
 */
function valuesFor(cmp: Compare, { width, k }: Operand): bigint[] {
  const at = (v: bigint) => BigInt.asUintN(width, v);
  const vs =
    cmp === "jeq" || cmp === "jne" ? (width === 64 ? [k, k ^ (1n << 32n)] : [k])
    : cmp === "jset" ? [k, k & 0xffff_ffffn, k & ~0xffff_ffffn]
    : [at(k - 1n), k, at(k + 1n)];
  return width === 32 ? [...vs, ...vs.map((v) => v | HIGH_GARBAGE)] : vs;
}

/** For each argument, the values its compares make interesting (with 0, and NONE_OF_THEM where it is compared). */
function argumentValues(rules: readonly Rule[], execveat: boolean, magic: bigint): bigint[][] {
  const values: Set<bigint>[] = Array.from({ length: 6 }, () => new Set([0n]));
  for (const rule of rules) {
    if (rule.kind !== "fragment") continue;
    const { operands } = reading(rule.nodes);
    rule.nodes.forEach((n, i) => {
      const o = operands[i];
      if (n.op === "cmp" && o) for (const v of valuesFor(n.cmp, o)) values[o.arg]!.add(v).add(NONE_OF_THEM);
    });
  }
  if (execveat) for (const v of [magic, magic ^ 1n, magic ^ (1n << 32n)]) values[5]!.add(v);
  return values.map((s) => [...s]);
}

/** Beyond this many pairs of values, arguments are combined row by row. */
const MAX_PAIRS = 64;

/**
 * Argument vectors: all zeros; each interesting value of one argument alone;
 * and the values of two arguments together (every pair, or row by row where
 * that would be too many), so that a condition on two arguments (mmap's
 * protection, then its flags; seccomp's mode and flags) is met.
 */
function argumentVectors(values: bigint[][]): bigint[][] {
  const zero = [0n, 0n, 0n, 0n, 0n, 0n];
  const out = [zero];
  const put = (base: readonly bigint[], arg: number, x: bigint) => {
    const v = base.slice();
    v[arg] = x;
    return v;
  };
  const used: number[] = [];
  values.forEach((vs, arg) => {
    if (vs.length > 1) used.push(arg);
    for (const v of vs) if (v !== 0n) out.push(put(zero, arg, v));
  });
  let pairs = 0;
  for (let i = 0; i < used.length; i++) for (let j = i + 1; j < used.length; j++) pairs += values[used[i]!]!.length * values[used[j]!]!.length;
  if (pairs <= MAX_PAIRS) {
    for (let i = 0; i < used.length; i++) {
      for (let j = i + 1; j < used.length; j++) {
        const [a, b] = [used[i]!, used[j]!];
        for (const va of values[a]!) for (const vb of values[b]!) out.push(put(put(zero, a, va), b, vb));
      }
    }
  } else {
    const rows = Math.max(...values.map((vs) => vs.length));
    for (let i = 0; i < rows; i++) out.push(values.map((vs) => vs[i % vs.length]!));
  }
  return out;
}

/** The numbers worth naming: the arch's syscalls, each rule's number and its neighbours, and the odd ones. */
function numbersToTry(intent: Intent): number[] {
  const nrs = new Set<number>([0, NO_SYSCALL_NR, 0xfffffffe, 0x7fffffff, 0x80000000]);
  for (const nr of Object.values(intent.arch.syscalls)) nrs.add(nr).add(nr + 1);
  for (const nr of intent.rules.keys()) nrs.add(nr).add(nr + 1).add(nr === 0 ? 0 : nr - 1);
  const x32 = intent.arch.x32Bit;
  if (x32) nrs.add(x32).add(x32 - 1).add(x32 | 1);
  return [...nrs].sort((a, b) => a - b);
}

// ---- the program, read for every number at once ----

const MAX_NR = 0xffffffff;
type Range = readonly [lo: number, hi: number];

/** Numbers lo..hi (unsigned, inclusive): the program returns `ret` for all of them, whatever the arguments, or (ret undefined) reads an argument. */
interface Span {
  lo: number;
  hi: number;
  ret?: number;
}

/** The ranges for which `nr OP k` is true, and those for which it is false. */
function split(ranges: readonly Range[], op: number, k: number): [Range[], Range[]] {
  const [from, to] = op === BPF.JEQ ? [k, k] : op === BPF.JGT ? [k + 1, MAX_NR] : [k, MAX_NR];
  const yes: Range[] = [];
  const no: Range[] = [];
  const add = (out: Range[], lo: number, hi: number) => lo <= hi && out.push([lo, hi]);
  for (const [lo, hi] of ranges) {
    add(yes, Math.max(lo, from), Math.min(hi, to));
    add(no, lo, Math.min(hi, from - 1));
    add(no, Math.max(lo, to + 1), hi);
  }
  return [yes, no];
}

/**
 * Walks the program once with the syscall number as ranges, not a value
 * (the arch taken to be `audit`; a foreign one is tried on its own): a
 * compare on the number splits the ranges, a constant return ends them with
 * its value, and a load of an argument ends them undecided (the arguments
 * decide). So is anything else bunbox's compiler never emits: those numbers
 * are then run one by one. The spans cover every 32-bit number.
 */
function spans(prog: readonly Insn[], audit: number): Span[] {
  const out: Span[] = [];
  const end = (ranges: readonly Range[], ret?: number) => {
    for (const [lo, hi] of ranges) out.push(ret === undefined ? { lo, hi } : { lo, hi, ret });
  };
  // A: the number ("nr"), a known value, or unknown.
  const walk = (pc: number, ranges: Range[], a: "nr" | number | undefined): void => {
    for (;;) {
      const i = prog[pc];
      if (i === undefined) return end(ranges);
      if (i.code === (BPF.RET | BPF.K)) return end(ranges, i.k >>> 0);
      if (i.code === (BPF.LD | BPF.W | BPF.ABS) && (i.k === SECCOMP_DATA.nr || i.k === SECCOMP_DATA.arch)) {
        a = i.k === SECCOMP_DATA.nr ? "nr" : audit >>> 0;
        pc++;
        continue;
      }
      if (i.code === (BPF.JMP | BPF.JA)) {
        pc += 1 + i.k;
        continue;
      }
      const op = i.code & 0xf0;
      const k = i.k >>> 0;
      if ((i.code & 0x07) !== BPF.JMP || (i.code & BPF.X) || a === undefined) return end(ranges);
      if (typeof a === "number") {
        const t = op === BPF.JEQ ? a === k : op === BPF.JGT ? a > k : op === BPF.JGE ? a >= k : (a & k) !== 0;
        pc += 1 + (t ? i.jt : i.jf);
        continue;
      }
      if (op === BPF.JSET) return end(ranges);
      const [yes, no] = split(ranges, op, k);
      if (yes.length) walk(pc + 1 + i.jt, yes, a);
      if (!no.length) return;
      ranges = no;
      pc += 1 + i.jf;
    }
  };
  walk(0, [[0, MAX_NR]], undefined);
  return out.sort((x, y) => x.lo - y.lo);
}

/** A magic no call in the checks uses by chance, patched in like the per-spawn one. */
const CHECK_MAGIC = 0x0123_4567_89ab_cdefn;

/**
 * Checks `insns` (its exec magic at `magicAt`, still unpatched) against
 * `intent`; throws FilterInternalError naming the first disagreement.
 */
export function verifyFilter(insns: readonly Insn[], magicAt: readonly [number, number], intent: Intent): void {
  const prog = insns.map((i) => ({ ...i }));
  prog[magicAt[0]]!.k = Number(CHECK_MAGIC & 0xffffffffn);
  prog[magicAt[1]]!.k = Number(CHECK_MAGIC >> 32n);
  const { arch } = intent;
  const fail = (nr: number, args: readonly bigint[], what: string) => {
    const name = syscallName(arch.audit, nr) ?? "syscall";
    throw new FilterInternalError(
      `the compiled ${arch.name} filter disagrees with its rules for ${name} (${nr >>> 0})` +
        `${args.some((a) => a !== 0n) ? ` with arguments [${args.map((a) => `0x${a.toString(16)}`).join(", ")}]` : ""}: ${what}`,
    );
  };
  const differ = (nr: number, args: readonly bigint[], got: number) => {
    const want = decide(intent, nr, arch.audit, args, CHECK_MAGIC) >>> 0;
    if (got >>> 0 !== want) fail(nr, args, `the filter returns ${describeReturn(got >>> 0)}, the rules say ${describeReturn(want)}`);
  };
  const zeros = [0n, 0n, 0n, 0n, 0n, 0n];
  const foreign = evaluate(prog, { nr: 0, arch: arch.audit ^ 1, args: zeros }).ret;
  if (foreign >>> 0 !== intent.violation(REASON.ARCH)) fail(0, zeros, `a foreign arch gets ${describeReturn(foreign >>> 0)}`);

  const tried = numbersToTry(intent);
  let next = 0;
  for (const span of spans(prog, arch.audit)) {
    // The numbers worth naming in this span, and its ends.
    const nrs = new Set([span.lo, span.hi]);
    while (next < tried.length && tried[next]! <= span.hi) nrs.add(tried[next++]!);
    for (const nr of nrs) {
      const execveat = nr === arch.syscalls.execveat;
      const own = (intent.rules.get(nr) ?? []).filter((r) => r.kind === "fragment");
      const vectors = execveat || own.length ? argumentVectors(argumentValues(own, execveat, CHECK_MAGIC)) : [zeros];
      if (span.ret !== undefined) {
        // Decided without the arguments: so must the rules be, for every value they compare.
        for (const args of vectors) differ(nr, args, span.ret);
        continue;
      }
      if (!own.length && !execveat) fail(nr, zeros, "the filter reads arguments its rules never look at");
      for (const args of vectors) differ(nr, args, evaluate(prog, { nr, arch: arch.audit, args }).ret);
    }
  }
}
