/**
 * The compiler checks its own output before anyone may load it. The rule
 * list is evaluated directly (first rule that decides wins, then the default
 * action: what Sandbox2's linear layout would decide), the compiled program
 * through the BPF interpreter, and the two must agree for every syscall
 * number of the arch, the numbers around every rule (the edges of the
 * dispatch tree's ranges), -1, the x32 range and a foreign arch; with
 * arguments at, just below and just above every value the argument rules of
 * the number and of its neighbours compare (a number sent one range too far
 * lands in its neighbour's rules). A number whose rules never look at the
 * arguments must be decided without reading them. A disagreement is a bug in
 * bunbox, never the user's: an internal error naming the syscall, and no
 * filter.
 *
 * The cost is a few thousand interpreted instructions per compile (measured
 * in test/policy/verify.test.ts); the built-in profiles of the executable are
 * compiled, and so checked, when it is built (scripts/build.ts).
 */
import { BunboxError } from "../errors.ts";
import { type Arch, MAX_SYSCALL_NR, NO_SYSCALL_NR, syscallName } from "./arch.ts";
import type { Insn } from "./bpf.ts";
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

/**
 * One argument program on `args`: the return value it decides, or undefined
 * when it falls off its end. A compare uses the selection (arg or arg32)
 * written before it, whatever path led there, as the compiled code does.
 */
function runFragment(nodes: readonly Node[], args: readonly bigint[], ret: (a: Action) => number): number | undefined {
  const labels = new Map<string, number>();
  const selection: ({ arg: number; width: 32 | 64 } | undefined)[] = [];
  let sel: { arg: number; width: 32 | 64 } | undefined;
  nodes.forEach((n, i) => {
    if (n.op === "load") sel = { arg: n.arg, width: n.width };
    if (n.op === "label") labels.set(n.name, i);
    selection.push(sel);
  });
  const jump = (t: Action | { readonly label: string }): number | { to: number } =>
    "label" in t ? { to: labels.get(t.label)! } : ret(t);
  let pc = 0;
  while (pc < nodes.length) {
    const n = nodes[pc]!;
    let next: number | { to: number } = { to: pc + 1 };
    if (n.op === "ret") next = ret(n.action);
    else if (n.op === "goto") next = jump(n.target);
    else if (n.op === "cmp") {
      const s = selection[pc]!;
      const v = BigInt.asUintN(s.width, args[s.arg] ?? 0n);
      if (compare(n.cmp, v, BigInt.asUintN(s.width, n.value))) next = jump(n.target);
    }
    if (typeof next === "number") return next;
    pc = next.to;
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

const U64 = (v: bigint) => BigInt.asUintN(64, v);

/** For each argument, the values its compares make interesting (and 0). */
function argumentValues(rules: readonly Rule[], execveat: boolean, magic: bigint): bigint[][] {
  const values: Set<bigint>[] = Array.from({ length: 6 }, () => new Set([0n]));
  for (const rule of rules) {
    if (rule.kind !== "fragment") continue;
    let sel: { arg: number; width: 32 | 64 } | undefined;
    for (const n of rule.nodes) {
      if (n.op === "load") sel = { arg: n.arg, width: n.width };
      if (n.op !== "cmp" || !sel) continue;
      const k = BigInt.asUintN(sel.width, n.value);
      const set = values[sel.arg]!;
      for (const v of [k, k + 1n, k - 1n]) {
        set.add(U64(v));
        // A 32-bit compare must ignore the high half.
        if (sel.width === 32) set.add(U64(v) | 0xdead_beef_0000_0000n);
      }
    }
  }
  if (execveat) for (const v of [magic, magic ^ 1n, magic ^ (1n << 32n)]) values[5]!.add(v);
  return values.map((s) => [...s]);
}

/**
 * Argument vectors: all zeros; each interesting value of one argument alone;
 * and rows that combine the arguments' values (the i-th of each), so that
 * conditions on two arguments (seccomp's mode and flags) are met together.
 */
function argumentVectors(values: bigint[][]): bigint[][] {
  const zero = [0n, 0n, 0n, 0n, 0n, 0n];
  const out = [zero];
  values.forEach((vs, arg) => {
    for (const v of vs) if (v !== 0n) out.push(zero.map((z, i) => (i === arg ? v : z)));
  });
  const rows = Math.max(...values.map((vs) => vs.length));
  if (values.filter((vs) => vs.length > 1).length > 1) {
    for (let i = 0; i < rows; i++) out.push(values.map((vs) => vs[i % vs.length]!));
  }
  return out;
}

/** The numbers to try: the arch's syscalls, each rule's number and its neighbours, and the odd ones. */
function numbersToTry(intent: Intent): number[] {
  const nrs = new Set<number>([0, NO_SYSCALL_NR, 0xfffffffe, 0x7fffffff, 0x80000000]);
  for (const nr of Object.values(intent.arch.syscalls)) nrs.add(nr).add(nr + 1);
  for (const nr of intent.rules.keys()) nrs.add(nr).add(nr + 1).add(nr === 0 ? 0 : nr - 1);
  const x32 = intent.arch.x32Bit;
  if (x32) nrs.add(x32).add(x32 - 1).add(x32 | 1);
  return [...nrs];
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
  /** Checks one call; `argsUnread`: its rules never look at the arguments. */
  const check = (nr: number, audit: number, args: bigint[], argsUnread: boolean) => {
    const { ret, readArgs } = evaluate(prog, { nr, arch: audit, args });
    const want = decide(intent, nr, audit, args, CHECK_MAGIC) >>> 0;
    if (ret >>> 0 !== want) fail(nr, args, `the filter returns ${describeReturn(ret >>> 0)}, the rules say ${describeReturn(want)}`);
    if (argsUnread && readArgs) fail(nr, args, "the filter reads arguments its rules never look at");
  };
  const fragments = (nr: number) => (intent.rules.get(nr) ?? []).filter((r) => r.kind === "fragment");
  const zeros = [0n, 0n, 0n, 0n, 0n, 0n];
  check(0, arch.audit ^ 0x1, zeros, true);
  for (const nr of numbersToTry(intent)) {
    const execveat = nr === arch.syscalls.execveat;
    const own = fragments(nr);
    // A number whose rules (or whose neighbours' rules) read arguments is
    // tried with the values those rules compare.
    const near = [...own, ...fragments(nr - 1), ...fragments(nr + 1)];
    const vectors = execveat || near.length ? argumentVectors(argumentValues(near, execveat, CHECK_MAGIC)) : [zeros];
    for (const args of vectors) check(nr, arch.audit, args, own.length === 0 && !execveat);
  }
}
