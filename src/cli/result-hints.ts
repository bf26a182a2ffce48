/**
 * What `bunbox run` says after its one line about how the command ended:
 * the policy change that would allow a violation, and the calls the policy
 * refused without ending the run (`"onRefusal": "errno"`) or let through
 * (`--audit`). Every string the sandboxee chose (a path in a decoded call,
 * a mapping's name) is made visible.
 */
import type { Suggestion } from "../monitor/suggest.ts";
import type { RefusedCall, Result } from "../sandbox/result.ts";
import { visible } from "../sandbox/visible.ts";

/** The suggestions' text, and the tables behind it, read only when there is one to print (README.md, "Start-up"). */
const suggestionText = (s: Suggestion): string => (require("../monitor/suggest.ts") as typeof import("../monitor/suggest.ts")).suggestionText(s);

/** Where the policy came from, to say where a change goes. */
export type PolicySource = { file: string } | { profile: string };

/** The change, in words that say where it goes: a file's own keys, or a new file on the profile. */
export function whereToAdd(s: Suggestion, source: PolicySource): string {
  if ("file" in source) return `to allow it, add to ${visible(source.file)}: ${suggestionText(s)}`;
  const file = JSON.stringify({ profile: source.profile, ...s.policy });
  return `to allow it, use a policy file: ${file}${s.safety ? ` (${s.safety})` : ""}`;
}

function refusedLine(r: RefusedCall): string {
  const at = r.ipMapping ? ` at ${visible(r.ipMapping)}` : "";
  const count = r.count > 1 ? ` ×${r.count}` : "";
  const fix = r.suggestion ? `; to allow: ${suggestionText(r.suggestion)}` : "";
  return `${visible(r.decoded)}${count} → ${r.answer}${at}${fix}`;
}

/**
 * The lines after the run's own, unindented: the change a violation needs,
 * audit findings in full (they are why one audits), errno refusals as one
 * summary line unless `verbose`.
 */
export function resultHints(result: Result, source: PolicySource, verbose: boolean): string[] {
  const lines: string[] = [];
  const s = result.violation?.suggestion;
  if (result.status === "VIOLATION" && s) lines.push(whereToAdd(s, source));
  const refused = result.refused;
  if (refused.length === 0) return lines;
  const total = refused.reduce((n, r) => n + r.count, 0) + result.refusedOmitted;
  const audit = refused.some((r) => r.answer.startsWith("allowed"));
  const more = result.refusedOmitted ? ` (and ${result.refusedOmitted} more calls not listed)` : "";
  if (audit || verbose) {
    const what = audit ? "audit: calls the policy would refuse, let through" : "calls the policy refused";
    lines.push(`${what}: ${total}${more}`, ...refused.map((r) => `  ${refusedLine(r)}`));
  } else {
    // A safety rule's refusals (set-user-ID bits) apart: no "allow" changes them.
    const safety = refused.filter((r) => r.suggestion?.safety);
    const policy = refused.filter((r) => !r.suggestion?.safety);
    if (policy.length) {
      const n = policy.reduce((k, r) => k + r.count, 0) + result.refusedOmitted;
      lines.push(`refused ${n} call${n > 1 ? "s" : ""} outside the policy (EPERM or ENOSYS), the run went on: ${names(policy)}${more}; -v or --json lists them`);
    }
    if (safety.length) {
      const n = safety.reduce((k, r) => k + r.count, 0);
      const rules = [...new Set(safety.flatMap((r) => (r.suggestion!.policy.dangerAllowUnsafe as string[] | undefined) ?? []))];
      lines.push(
        `a safety rule refused ${n} call${n > 1 ? "s" : ""} (EPERM), the run went on: ${names(safety)} ` +
          `(${rules.map((x) => JSON.stringify(x)).join(", ")}: a policy file's "dangerAllowUnsafe" turns it off, a relaxation)`,
      );
    }
  }
  return lines;
}

/** "chmod ×2, openat": the calls by name, counted, the first eight. */
function names(calls: readonly RefusedCall[]): string {
  const bySyscall = new Map<string, number>();
  for (const r of calls) bySyscall.set(r.syscall, (bySyscall.get(r.syscall) ?? 0) + r.count);
  const all = [...bySyscall].map(([name, n]) => `${visible(name)}${n > 1 ? ` ×${n}` : ""}`);
  return (all.length > 8 ? [...all.slice(0, 8), "…"] : all).join(", ");
}
