/**
 * What a policy says about one syscall: an action, or a small argument-checking
 * program written with helpers that read like Sandbox2's BPF macros:
 *
 *   addPolicyOnSyscall("write", [arg(0), jeq(1, ALLOW), jeq(2, ALLOW), KILL])
 *   addPolicyOnSyscall("mprotect", [arg32(2), jset(PROT_EXEC, KILL), ALLOW])
 *
 * `arg(n)` selects the full 64-bit argument n, `arg32(n)` its low 32 bits; the
 * compares that follow use that width. A compare jumps to its target (an
 * action or a label) when true and falls through otherwise. A program that
 * falls off its end continues with the next rule for the same syscall, and
 * finally with the policy's default action.
 */
import { UsageError } from "../errors.ts";

/** A policy that cannot be compiled (a label never placed, an argument out of range…): its problem, in words. */
export class CompileError extends Error {}

export type Action =
  | { readonly kind: "allow" }
  | { readonly kind: "errno"; readonly errno: number }
  | { readonly kind: "kill"; /** internal: why, in the filter's return data */ readonly reason?: number }
  | { readonly kind: "trace" }
  | { readonly kind: "refuse"; /** internal: why, in the filter's return data (default: the policy's refusal) */ readonly reason?: number };

export const ALLOW: Action = Object.freeze({ kind: "allow" });
/** A violation: the sandbox is killed and the Result says which syscall. */
export const KILL: Action = Object.freeze({ kind: "kill" });
/**
 * The default action of a policy with `"onRefusal": "errno"`: the call fails
 * with EPERM (ENOSYS for a number the arch does not name, so that libc falls
 * back) and the Result lists it; the run goes on.
 */
export const REFUSE: Action = Object.freeze({ kind: "refuse" });
/** Ask the monitor's onSyscall hook (allow, deny or an errno). */
export const TRACE: Action = Object.freeze({ kind: "trace" });
/** Same as TRACE: the filter notifies the monitor, which decides. */
export const USER_NOTIF: Action = TRACE;

/** Fail the syscall with this errno (1..4095). */
export function errno(n: number): Action {
  return Object.freeze({ kind: "errno", errno: n });
}

export type Compare = "jeq" | "jne" | "jset" | "jge" | "jgt" | "jle" | "jlt";
export type Target = Action | { readonly label: string };

export type Node =
  | { readonly op: "load"; readonly arg: number; readonly width: 32 | 64 }
  | { readonly op: "cmp"; readonly cmp: Compare; readonly value: bigint; readonly target: Target }
  | { readonly op: "label"; readonly name: string }
  | { readonly op: "goto"; readonly target: Target }
  | { readonly op: "ret"; readonly action: Action };

/** A rule program: nodes, or bare actions (a return). */
export type Fragment = readonly (Node | Action)[];

export function arg(n: number): Node {
  return { op: "load", arg: n, width: 64 };
}
export function arg32(n: number): Node {
  return { op: "load", arg: n, width: 32 };
}

/** An exact compare value: a bigint, or a number that is a safe integer (never rounded or cut). */
function big(c: Compare, v: number | bigint): bigint {
  if (typeof v === "bigint") return v;
  if (!Number.isSafeInteger(v)) {
    throw new UsageError(`${c}(${v})`, Number.isInteger(v) ? "beyond ±2^53 a number is not exact: pass a bigint (like 0xffff_ffff_ffff_ffffn)" : "not an integer");
  }
  return BigInt(v);
}
const cmp =
  (c: Compare) =>
  (value: number | bigint, target: Target | string): Node => ({
    op: "cmp",
    cmp: c,
    value: big(c, value),
    target: typeof target === "string" ? { label: target } : target,
  });

/** Jump to target when the selected argument equals value. */
export const jeq = cmp("jeq");
export const jne = cmp("jne");
/** Jump when any bit of mask is set in the argument. */
export const jset = cmp("jset");
export const jge = cmp("jge");
export const jgt = cmp("jgt");
export const jle = cmp("jle");
export const jlt = cmp("jlt");

export function label(name: string): Node {
  return { op: "label", name };
}
export function goto(target: Target | string): Node {
  return { op: "goto", target: typeof target === "string" ? { label: target } : target };
}

export function isAction(x: unknown): x is Action {
  return (
    typeof x === "object" &&
    x !== null &&
    "kind" in x &&
    ["allow", "errno", "kill", "trace", "refuse"].includes((x as Action).kind)
  );
}

export function sameAction(a: Action, b: Action): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === "errno") return a.errno === (b as typeof a).errno;
  if (a.kind === "kill" || a.kind === "refuse") return a.reason === (b as typeof a).reason;
  return true;
}

export function describeAction(a: Action): string {
  return a.kind === "errno" ? `errno(${a.errno})` : a.kind.toUpperCase();
}

/** Normalises a fragment to nodes (bare actions become returns). */
export function nodes(f: Fragment): Node[] {
  return f.map((x) => (isAction(x) ? { op: "ret", action: x } : x));
}

/** One rule of a syscall: a whole-syscall action, or an argument program. */
export type Rule =
  | { readonly kind: "action"; readonly action: Action }
  | { readonly kind: "fragment"; readonly nodes: readonly Node[] };
