/**
 * `bunbox policy check FILE` — validate a policy file, listing every problem.
 * `bunbox policy explain FILE|--profile NAME [--arch A] [--all] [--json]` —
 * what each syscall gets, the compiled program disassembled, and the cost in
 * BPF instructions per syscall.
 */
import { UsageError } from "../errors.ts";
import type { ArchName } from "../policy/arch.ts";
import { retValue } from "../policy/compiler.ts";
import { readFileSync } from "node:fs";
import { coverageReport } from "../learn/format.ts";
import { type Observations, readObservations } from "../learn/observations.ts";
import { allowedCount, describeReturn, disassemble, summarize } from "../policy/explain.ts";
import { evaluate } from "../policy/interpreter.ts";
import type { Policy } from "../policy/policy.ts";
import { profilePolicy } from "../policy/precompiled.ts";
import { jsonText, visible } from "../sandbox/visible.ts";
import { defineCommand } from "./args.ts";
import { writeAll } from "./log.ts";
import { ARCH_ARG } from "./syscalls.ts";

/** FILE, or --profile NAME [--arch A] (a policy file names its own arch). */
async function load(file: string | undefined, profile: string | undefined, arch: string | undefined): Promise<Policy> {
  if (file !== undefined && profile !== undefined) throw new UsageError("--profile", "give a policy FILE or --profile, not both");
  if (profile !== undefined) return profilePolicy(profile, process.cwd(), arch as ArchName | undefined);
  if (file === undefined) throw new UsageError("bunbox policy explain", "name a policy FILE or --profile NAME (see bunbox policy explain --help)");
  if (arch !== undefined) throw new UsageError("--arch", "goes with --profile; a policy file names its own arch (\"arch\")");
  const { loadPolicyFile } = await import("../policy/file.ts");
  return loadPolicyFile(file);
}

/** The notes of a policy `bunbox learn` wrote (what its runs did), if FILE is one. */
async function learnedNotes(file: string): Promise<Observations | undefined> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return undefined; // a module, or read already by load() with its own error
  }
  const notes = (json as { notes?: { learnedBy?: unknown } } | null)?.notes;
  return notes?.learnedBy === "bunbox learn" ? readObservations(json, file) : undefined;
}

/** Instructions executed per syscall of the arch: max and mean (interpreter). */
export function cost(policy: Policy): { max: number; mean: number; worst: string } {
  const prog = policy.filter(true).insns;
  let max = 0;
  let sum = 0;
  let worst = "";
  const entries = Object.entries(policy.arch.syscalls);
  for (const [name, nr] of entries) {
    const { steps } = evaluate(prog, { nr, arch: policy.arch.audit, args: [0n, 0n, 0n, 0n, 0n, 0n] });
    sum += steps;
    if (steps > max) {
      max = steps;
      worst = name;
    }
  }
  return { max, mean: sum / entries.length, worst };
}

const check = defineCommand({
  meta: { name: "check", description: "Validate a policy file; list every problem (exit 2 if any)" },
  args: {
    file: { type: "positional", description: "Policy file (JSON or .ts)", required: true },
  },
  async run({ positionals }) {
    const policy = await load(positionals.file, undefined, undefined);
    const f = policy.filter(true);
    const c = cost(policy);
    // The file's name, and texts from it, are the caller's: made visible.
    writeAll(
      1,
      `${visible(positionals.file)}: valid (${visible(policy.origin)}; ${policy.arch.name}; ${policy.rules.size} syscalls with rules, ` +
        `default ${policy.defaultAction.kind}; ${f.insns.length} BPF instructions, ` +
        `${c.max} at most per syscall)\n` +
        policy.relaxations.map((r) => `relaxation: ${visible(r)}\n`).join(""),
    );
  },
});

const explain = defineCommand({
  meta: { name: "explain", description: "Show what each syscall gets and the compiled BPF program" },
  args: {
    file: { type: "positional", description: "Policy file (JSON or .ts)", required: false },
    profile: { type: "string", description: "A built-in profile instead of a file", valueHint: "NAME" },
    arch: { ...ARCH_ARG, description: "Target architecture of --profile (default: this machine's)" },
    all: { type: "boolean", description: "List every syscall, not only those the default does not decide" },
    json: { type: "boolean", description: "Machine-readable output" },
  },
  async run({ positionals, strings, flags }) {
    const policy = await load(positionals.file, strings.profile, strings.arch);
    const prog = policy.filter(true).insns;
    const rows = summarize(prog, policy.arch);
    const c = cost(policy);
    const allowed = allowedCount(prog, policy.arch);
    const notes = positionals.file !== undefined ? await learnedNotes(positionals.file) : undefined;
    if (flags.json) {
      const out = { origin: policy.origin, arch: policy.arch.name, instructions: prog.length, maxPerSyscall: c.max, meanPerSyscall: c.mean, allowed, syscalls: rows, ...(notes ? { notes } : {}) };
      writeAll(1, `${jsonText(out, 2)}\n`);
      return;
    }
    // Listed: every syscall whose fate is not simply the default action's.
    const common = describeReturn(retValue(policy.defaultAction, true));
    const others = rows.filter((r) => r.results.join(" | ") === common).length;
    const out: string[] = [
      `policy: ${visible(policy.origin)} (${policy.arch.name}); default action ${policy.defaultAction.kind}${policy.onRefusal === "errno" ? " (onRefusal errno: a call outside the policy fails with EPERM, ENOSYS for an unnamed number, and is listed in the Result)" : ""}`,
      `filter: ${prog.length} instructions; per syscall ${c.max} at most (${c.worst}), ${c.mean.toFixed(1)} on average`,
      `allows ${allowed} of the ${Object.keys(policy.arch.syscalls).length} syscalls (some by arguments)`,
      ...(policy.relaxations.length ? policy.relaxations.map((r) => `relaxation: ${visible(r)}`) : ["relaxations: none"]),
      "",
      "syscalls:",
    ];
    for (const r of rows) {
      const res = r.results.join(" | ");
      if (!flags.all && res === common) continue;
      out.push(`  ${`${r.syscall} (${r.nr})`.padEnd(28)} ${res}${r.results.length > 1 ? "   (by arguments)" : ""}`);
    }
    if (!flags.all) out.push(`  ${`${others} others`.padEnd(28)} ${common} (the default action)`);
    if (notes) out.push("", ...coverageReport(notes));
    out.push("", "program:", ...disassemble(prog, policy.arch));
    writeAll(1, `${out.join("\n")}\n`);
  },
});

export const policyCommand = defineCommand({
  meta: { name: "policy", description: "Check or explain a policy" },
  subCommands: { check, explain },
});
