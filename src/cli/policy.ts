/**
 * `bunbox policy check FILE` — validate a policy file, listing every problem.
 * `bunbox policy explain FILE|--profile NAME [--arch A] [--all] [--json]` —
 * what each syscall gets, the compiled program disassembled, and the cost in
 * BPF instructions per syscall.
 */
import { defineCommand } from "citty";
import { UsageError } from "../errors.ts";
import { ARCHES, type ArchName } from "../policy/arch.ts";
import { retValue } from "../policy/compiler.ts";
import { describeReturn, disassemble, summarize } from "../policy/explain.ts";
import { evaluate } from "../policy/interpreter.ts";
import type { Policy } from "../policy/policy.ts";
import { profilePolicy } from "../policy/precompiled.ts";
import { writeAll } from "./log.ts";

async function load(file: string | undefined, profile: string | undefined, arch: string | undefined): Promise<Policy> {
  if (arch !== undefined && !(arch in ARCHES)) throw new UsageError("--arch", `"${arch}" is not x86_64 or aarch64`);
  if (file && profile) throw new UsageError("--profile", "give a policy file or --profile, not both");
  if (profile) return profilePolicy(profile, process.cwd(), arch as ArchName | undefined);
  if (!file) throw new UsageError("policy", "name a policy file (or --profile NAME)");
  const { loadPolicyFile } = await import("../policy/file.ts");
  return loadPolicyFile(file);
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
  async run({ args }) {
    const policy = await load(args.file, undefined, undefined);
    const f = policy.filter(true);
    const c = cost(policy);
    writeAll(
      1,
      `${args.file}: valid (${policy.origin}; ${policy.arch.name}; ${policy.rules.size} syscalls with rules, ` +
        `default ${policy.defaultAction.kind}; ${f.insns.length} BPF instructions, ` +
        `${c.max} at most per syscall)\n` +
        (policy.relaxations.length ? policy.relaxations.map((r) => `relaxation: ${r}\n`).join("") : ""),
    );
  },
});

const explain = defineCommand({
  meta: { name: "explain", description: "Show what each syscall gets and the compiled BPF program" },
  args: {
    file: { type: "positional", description: "Policy file (JSON or .ts)", required: false },
    profile: { type: "string", description: "A built-in profile instead of a file", valueHint: "NAME" },
    arch: { type: "string", description: "x86_64 or aarch64 (default: this machine's)", valueHint: "ARCH" },
    all: { type: "boolean", description: "List every syscall, not only those the default does not decide" },
    json: { type: "boolean", description: "Machine-readable output" },
  },
  async run({ args }) {
    const policy = await load(args.file, args.profile, args.arch);
    const prog = policy.filter(true).insns;
    const rows = summarize(prog, policy.arch);
    const c = cost(policy);
    if (args.json) {
      writeAll(1, `${JSON.stringify({ origin: policy.origin, arch: policy.arch.name, instructions: prog.length, maxPerSyscall: c.max, meanPerSyscall: c.mean, syscalls: rows }, null, 2)}\n`);
      return;
    }
    // Listed: every syscall whose fate is not simply the default action's.
    const common = describeReturn(retValue(policy.defaultAction, true));
    const others = rows.filter((r) => r.results.join(" | ") === common).length;
    const out: string[] = [
      `policy: ${policy.origin} (${policy.arch.name}); default action ${policy.defaultAction.kind}`,
      `filter: ${prog.length} instructions; per syscall ${c.max} at most (${c.worst}), ${c.mean.toFixed(1)} on average`,
      ...(policy.relaxations.length ? policy.relaxations.map((r) => `relaxation: ${r}`) : ["relaxations: none"]),
      "",
      "syscalls:",
    ];
    for (const r of rows) {
      const res = r.results.join(" | ");
      if (!args.all && res === common) continue;
      out.push(`  ${`${r.syscall} (${r.nr})`.padEnd(28)} ${res}${r.results.length > 1 ? "   (by arguments)" : ""}`);
    }
    if (!args.all) out.push(`  ${`${others} others`.padEnd(28)} ${common} (the default action)`);
    out.push("", "program:", ...disassemble(prog, policy.arch));
    writeAll(1, `${out.join("\n")}\n`);
  },
});

export const policyCommand = defineCommand({
  meta: { name: "policy", description: "Check or explain a policy" },
  subCommands: { check, explain },
});
