/**
 * An OCI seccomp profile (config.json's linux.seccomp, or a Docker/Podman
 * profile file such as containers-common's /usr/share/containers/seccomp.json)
 * compiled by bunbox's own compiler: its rules become PolicyBuilder rules, so
 * bunbox's safety rules still come first and its self-check still runs.
 *
 *   defaultAction, defaultErrnoRet   the builder's default action
 *   syscalls[].names, action,        one argument program per syscall: its
 *     errnoRet, args[].index, op,    rules, the most restrictive action
 *     value, valueTwo                first (kill, then errno, then allow:
 *                                    where two rules match a call, the
 *                                    stricter wins), each rule's compares
 *                                    ANDed, falling through to the next
 *   architectures, archMap           the filter is this host's architecture;
 *                                    every other, listed or not, is refused
 *                                    (bunbox never lets a foreign ABI through)
 *   includes/excludes (Docker)       caps: bunbox grants none, so a rule that
 *                                    needs one is dropped and one that is
 *                                    excluded by one is kept; arches: this
 *                                    host's; minKernel: this kernel's
 *
 * Names this architecture does not have are skipped (libseccomp resolves
 * them per architecture too); a name no architecture has, in a rule that
 * denies under a default that allows, is an error: skipping it would allow
 * what the profile denies. Actions bunbox cannot honour (SCMP_ACT_TRAP,
 * SCMP_ACT_TRACE, SCMP_ACT_LOG, SCMP_ACT_NOTIFY), flags that weaken the
 * filter and a listener are errors naming the field.
 */
import { release } from "node:os";
import * as v from "valibot";
import { errnoNumber } from "../native/errno.ts";
import { ARCHES, archByName, hostArch } from "../policy/arch.ts";
import type { PolicyBuilder } from "../policy/builder.ts";
import { type Action, ALLOW, arg, errno, goto, jeq, jge, jgt, jle, jlt, jne, jset, KILL, label, type Node } from "../policy/rules.ts";
import { I386 } from "../policy/syscalls/i386.ts";

const U64 = v.union([
  v.pipe(v.number(), v.integer(), v.minValue(0)),
  v.pipe(v.bigint(), v.minValue(0n), v.maxValue(0xffff_ffff_ffff_ffffn)),
]);
const Filter = v.strictObject({
  caps: v.optional(v.nullable(v.array(v.string()))),
  arches: v.optional(v.nullable(v.array(v.string()))),
  minKernel: v.optional(v.nullable(v.string())),
});
const Arg = v.strictObject({
  index: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(5)),
  value: U64,
  valueTwo: v.optional(U64),
  op: v.picklist(["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"]),
});
const ACTIONS = [
  "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
  "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
] as const;
const ActionName = v.picklist(ACTIONS);
const Errno = v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(4095)));

export const SeccompSchema = v.strictObject({
  defaultAction: ActionName,
  defaultErrnoRet: Errno,
  /** Docker's profiles: the default errno by name. */
  defaultErrno: v.optional(v.string()),
  architectures: v.optional(v.nullable(v.array(v.string()))),
  archMap: v.optional(v.nullable(v.array(v.strictObject({ architecture: v.string(), subArchitectures: v.optional(v.nullable(v.array(v.string()))) })))),
  flags: v.optional(v.nullable(v.array(v.string()))),
  listenerPath: v.optional(v.string()),
  listenerMetadata: v.optional(v.string()),
  syscalls: v.optional(v.nullable(v.array(v.strictObject({
    names: v.optional(v.array(v.string())),
    /** Docker's old spelling of a single name. */
    name: v.optional(v.string()),
    action: ActionName,
    errnoRet: Errno,
    errno: v.optional(v.string()),
    args: v.optional(v.nullable(v.array(Arg))),
    comment: v.optional(v.string()),
    includes: v.optional(Filter),
    excludes: v.optional(Filter),
  })))),
});
export type SeccompProfile = v.InferOutput<typeof SeccompSchema>;
type SyscallRule = NonNullable<SeccompProfile["syscalls"]>[number];

/** An OCI profile that bunbox cannot compile as written: every problem, each naming its field. */
export class SeccompProfileError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join("\n"));
  }
}

const EPERM = 1;
/** Flags that change nothing bunbox relies on (it installs the filter before exec, on one thread). */
const HARMLESS_FLAGS = new Set(["SECCOMP_FILTER_FLAG_TSYNC"]);
/** Docker's architecture names, by bunbox's. */
const DOCKER_ARCH: Record<string, string> = { x86_64: "amd64", aarch64: "arm64" };

/** Rank of an action: where rules overlap, the lower rank wins. */
const rank = (a: Action) => (a.kind === "kill" ? 0 : a.kind === "errno" ? 1 : 2);

function kernelAtLeast(min: string): boolean {
  const have = release().split(/[.-]/).map(Number);
  const want = min.split(".").map(Number);
  for (let i = 0; i < want.length; i++) {
    if ((have[i] ?? 0) !== want[i]) return (have[i] ?? 0) > (want[i] ?? 0);
  }
  return true;
}

/** Whether a Docker rule applies here: no capabilities, this arch, this kernel. */
function applies(rule: SyscallRule, archName: string): boolean {
  const arch = DOCKER_ARCH[archName] ?? archName;
  const inc = rule.includes;
  const exc = rule.excludes;
  if (inc?.caps?.length) return false;
  if (inc?.arches?.length && !inc.arches.includes(arch)) return false;
  if (inc?.minKernel && !kernelAtLeast(inc.minKernel)) return false;
  if (exc?.arches?.includes(arch)) return false;
  return true;
}

/**
 * The compares of one rule's args, ANDed: each jumps to `miss` when its
 * condition fails. undefined when the rule can never match (a masked value
 * with bits outside its mask). MASKED_EQ, (arg & value) == valueTwo, is
 * tested bit by bit with jset: the mask's bits that must be clear in one
 * compare, each bit that must be set in one.
 */
function conditions(args: readonly v.InferOutput<typeof Arg>[], miss: string, uniq: () => string): Node[] | undefined {
  const out: Node[] = [];
  for (const a of args) {
    const value = BigInt(a.value);
    out.push(arg(a.index));
    switch (a.op) {
      case "SCMP_CMP_EQ": out.push(jne(value, miss)); break;
      case "SCMP_CMP_NE": out.push(jeq(value, miss)); break;
      case "SCMP_CMP_LT": out.push(jge(value, miss)); break;
      case "SCMP_CMP_LE": out.push(jgt(value, miss)); break;
      case "SCMP_CMP_GT": out.push(jle(value, miss)); break;
      case "SCMP_CMP_GE": out.push(jlt(value, miss)); break;
      case "SCMP_CMP_MASKED_EQ": {
        const want = BigInt(a.valueTwo ?? 0);
        if (want & ~value) return undefined;
        const clear = value & ~want;
        if (clear) out.push(jset(clear, miss));
        for (let bit = 1n; bit <= want; bit <<= 1n) {
          if (!(want & bit)) continue;
          const ok = uniq();
          out.push(jset(bit, ok), goto(miss), label(ok));
        }
        break;
      }
    }
  }
  return out;
}

/**
 * Adds the profile's rules and default action to `b` (a builder for this
 * host's architecture); `where` names the profile in messages
 * ("linux.seccomp"). Throws SeccompProfileError listing every problem.
 */
export function applySeccompProfile(b: PolicyBuilder, raw: unknown, where: string, archName = hostArch().name): void {
  const parsed = v.safeParse(SeccompSchema, raw);
  if (!parsed.success) {
    throw new SeccompProfileError(parsed.issues.map((i) => `${where}.${v.getDotPath(i) ?? ""}: ${i.message}`.replace(/\.: /, ": ")));
  }
  const p = parsed.output;
  const problems: string[] = [];
  const table = (archByName(archName) ?? hostArch()).syscalls;
  const known = (n: string) => Object.values(ARCHES).some((a) => a.syscalls[n] !== undefined) || I386[n] !== undefined;
  const defaultErrno = p.defaultErrnoRet ?? (p.defaultErrno !== undefined ? errnoNumber(p.defaultErrno) : undefined) ?? EPERM;

  const action = (name: (typeof ACTIONS)[number], errnoRet: number | undefined, field: string): Action | undefined => {
    switch (name) {
      case "SCMP_ACT_ALLOW":
        return ALLOW;
      case "SCMP_ACT_ERRNO":
        return errno(errnoRet ?? EPERM);
      case "SCMP_ACT_KILL":
      case "SCMP_ACT_KILL_PROCESS":
      case "SCMP_ACT_KILL_THREAD":
        return KILL; // a violation: bunbox ends the whole sandbox, and says which call
      default:
        problems.push(`${field}: ${name} is not supported (bunbox allows, fails with an errno, or ends the sandbox as a violation)`);
        return undefined;
    }
  };

  for (const [i, flag] of (p.flags ?? []).entries()) {
    if (!HARMLESS_FLAGS.has(flag)) problems.push(`${where}.flags.${i}: ${flag} is not supported`);
  }
  if (p.listenerPath !== undefined) problems.push(`${where}.listenerPath: a seccomp agent is not supported (bunbox is the one monitor)`);
  if (p.listenerMetadata !== undefined) problems.push(`${where}.listenerMetadata: a seccomp agent is not supported`);

  const dflt = action(p.defaultAction, defaultErrno, `${where}.defaultAction`);
  const rules = new Map<string, { action: Action; args: v.InferOutput<typeof Arg>[]; order: number }[]>();
  (p.syscalls ?? []).forEach((rule, i) => {
    const field = `${where}.syscalls.${i}`;
    const names = [...(rule.names ?? []), ...(rule.name !== undefined ? [rule.name] : [])];
    if (names.length === 0) problems.push(`${field}.names: no syscall named`);
    if (!applies(rule, archName)) return;
    const errnoRet = rule.errnoRet ?? (rule.errno !== undefined ? errnoNumber(rule.errno) : undefined);
    if (rule.errno !== undefined && errnoRet === undefined) problems.push(`${field}.errno: ${rule.errno} is not an errno name`);
    const act = action(rule.action, errnoRet, `${field}.action`);
    if (!act) return;
    names.forEach((name, j) => {
      if (table[name] === undefined) {
        if (!known(name) && act.kind !== "allow" && dflt?.kind === "allow") {
          problems.push(`${field}.names.${j}: unknown syscall "${name}" (skipping it would allow what this rule denies)`);
        }
        return;
      }
      const list = rules.get(name) ?? [];
      list.push({ action: act, args: rule.args ?? [], order: list.length });
      rules.set(name, list);
    });
  });
  if (problems.length) throw new SeccompProfileError(problems);

  if (dflt!.kind === "allow") b.dangerDefaultAllowAll();
  else b.defaultAction(dflt!.kind === "errno" ? errno(defaultErrno) : dflt!);
  for (const [name, list] of rules) {
    list.sort((a, c) => rank(a.action) - rank(c.action) || a.order - c.order);
    let n = 0;
    const uniq = () => `oci${n++}`;
    const program: (Node | Action)[] = [];
    for (const r of list) {
      const miss = uniq();
      const conds = conditions(r.args, miss, uniq);
      if (conds === undefined) continue;
      program.push(...conds, r.action);
      if (conds.length === 0) break; // unconditional: later rules cannot be reached
      program.push(label(miss));
    }
    if (program.length > 0) b.addPolicyOnSyscall(name, program);
  }
}
