/**
 * The smallest policy change that would allow a refused call, as a piece of
 * a policy file (README.md "Writing a policy"):
 *
 *   gettid()                       → "allow": ["gettid"]
 *   socket(AF_INET, SOCK_STREAM, 0) → "allowIf": {"socket": [{"family": "AF_INET", "type": "SOCK_STREAM", "protocol": 0}]}
 *   ptrace(…)                      → "dangerAllowUnsafe": ["ptrace"] (a safety rule: said so)
 *
 * A syscall whose arguments `bunbox learn` would constrain (argspec.ts
 * `learn`) is allowed for exactly the values of this call, by name; any
 * other whole. Merging the piece into the policy file (`applySuggestion`)
 * allows the call on the next run; the tests check that it does.
 */
import { type ArchName, NO_SYSCALL } from "../policy/arch.ts";
import { argSpecs, nameValue } from "../policy/argspec.ts";
import { DANGEROUS_SYSCALLS, DANGEROUS_USES, MODE_SETTERS } from "../policy/safety.ts";

export interface Suggestion {
  /** The piece of a policy file to merge ("allow", "allowIf" or "dangerAllowUnsafe"). */
  readonly policy: Readonly<Record<string, unknown>>;
  /** Set when the change turns a safety rule off (said so wherever it is shown). */
  readonly safety?: string;
}

/** The safety rule that refused `syscall`: its own name, or the name of the dangerous use. */
function safetyRuleName(syscall: string): string | undefined {
  if ((DANGEROUS_SYSCALLS as readonly string[]).includes(syscall)) return syscall;
  if (MODE_SETTERS.some((m) => m.name === syscall)) return "setid-bits";
  return Object.entries(DANGEROUS_USES).find(([, sys]) => sys === syscall)?.[0];
}

/** The conditions that would allow exactly this call's constrained arguments (none: allow it whole). */
export function exactConditions(arch: ArchName, syscall: string, args: readonly bigint[]): Record<string, string | number> | undefined {
  const specs = argSpecs(arch, syscall).filter((s) => s.learn);
  if (specs.length === 0) return undefined;
  const out: Record<string, string | number> = {};
  for (const s of specs) {
    const v = BigInt.asUintN(32, args[s.index] ?? 0n);
    out[s.name] = nameValue(s, v) ?? Number(v);
  }
  return out;
}

/**
 * What to add for a call the policy (`rule` "policy" or "refused") or a
 * safety rule refused; undefined for calls no policy change allows (a
 * foreign architecture, x32) or that a trace hook denied.
 */
export function suggest(arch: ArchName | undefined, syscall: string, nr: number, args: readonly bigint[], rule: string): Suggestion | undefined {
  if (rule === "safety rule") {
    const name = safetyRuleName(syscall);
    if (!name) return undefined;
    return { policy: { dangerAllowUnsafe: [name] }, safety: `dangerAllowUnsafe("${name}") turns a safety rule off` };
  }
  if (rule !== "policy" && rule !== "refused") return undefined;
  if (!arch || syscall === NO_SYSCALL) return undefined;
  // A number this arch's table does not name (describeViolation calls it "syscall N").
  if (/^syscall \d+$/.test(syscall)) return { policy: { allow: [nr] } };
  const conditions = exactConditions(arch, syscall, args);
  return conditions ? { policy: { allowIf: { [syscall]: [conditions] } } } : { policy: { allow: [syscall] } };
}

/** The suggestion as one line: `"allow": ["gettid"]`. */
export function suggestionText(s: Suggestion): string {
  const body = Object.entries(s.policy).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(", ");
  return s.safety ? `${body} (${s.safety})` : body;
}

/**
 * A policy file (parsed JSON) with the suggestion merged in: lists
 * appended to, "allowIf" alternatives added per syscall. The input is not
 * changed.
 */
export function applySuggestion(file: Readonly<Record<string, unknown>>, s: Suggestion): Record<string, unknown> {
  const out: Record<string, unknown> = { ...file };
  for (const [key, value] of Object.entries(s.policy)) {
    if (Array.isArray(value)) {
      const had = Array.isArray(out[key]) ? (out[key] as unknown[]) : [];
      out[key] = [...had, ...value.filter((v) => !had.includes(v))];
    } else {
      const had = { ...((out[key] as Record<string, unknown[]>) ?? {}) };
      for (const [sys, alts] of Object.entries(value as Record<string, unknown[]>)) had[sys] = [...(had[sys] ?? []), ...alts];
      out[key] = had;
    }
  }
  return out;
}
