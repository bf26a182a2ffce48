/**
 * The tightest policy file that lets the observed runs pass (observations.ts
 * in, a policy file's JSON out), written by name only so that it reads, and
 * loads, the same on x86_64 and aarch64 (src/policy/allowif.ts):
 *
 *   - every syscall seen, in "allow"; one whose arguments a policy
 *     constrains (src/policy/argspec.ts `learn`) in "allowIf" instead, with
 *     the values seen: each combination of the exact ones (socket's family
 *     and type), and for flags every bit seen and no other (open's flags);
 *   - the calls every run may need that one run may not show (ESSENTIAL);
 *   - the safety rules stay: nothing is learned past them unless the
 *     learning run's own policy relaxed them, and then the learned policy
 *     says so too ("dangerAllowUnsafe");
 *   - the filesystem the runs used, on an empty root (filesystem.ts);
 *   - the observations themselves, in "notes".
 */
import type { ArchName } from "../policy/arch.ts";
import type { Alternative, Condition } from "../policy/allowif.ts";
import { knownAnywhere } from "../policy/allowif.ts";
import { argSpecs, nameValue, parseValue } from "../policy/argspec.ts";
import type { Policy } from "../policy/policy.ts";
import type { MountEntry } from "../policy/filesystem.ts";
import { learnedMounts, type View } from "./filesystem.ts";
import { type Observations, sortedObservations, type Variant } from "./observations.ts";

/**
 * Allowed in every learned policy, seen or not: the vDSO's calls fall back
 * to these syscalls where the vDSO cannot serve them (no usable clock
 * source, a VM), restart_syscall comes after a stop, rt_sigreturn after any
 * signal handler, and a program must be able to exit. clone3 stays the
 * safety rule's ENOSYS (libc falls back to clone on ENOSYS only).
 */
export const ESSENTIAL = [
  "clock_gettime", "clock_getres", "gettimeofday", "time", "getcpu", "restart_syscall", "rt_sigreturn", "exit", "exit_group",
  // Contention decides whether a run yields: a spinning thread (node's) calls it in one run, not in the next.
  "sched_yield",
] as const;

/**
 * Values a call takes depending on timing, not on what the program does:
 * whether a lock was contended (FUTEX_WAIT) or a condition variable had
 * waiters (FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP) differs from run to run. A
 * program seen using futex gets the operations locks and condition
 * variables use (the futex family's, src/policy/families.ts), in every
 * variant of the private and clock flags; the PI operations only if seen.
 */
const TIMING = {
  futex: {
    op: ["FUTEX_WAIT", "FUTEX_WAKE", "FUTEX_REQUEUE", "FUTEX_CMP_REQUEUE", "FUTEX_WAKE_OP", "FUTEX_WAIT_BITSET", "FUTEX_WAKE_BITSET"].flatMap((op) => [
      op,
      `${op}|FUTEX_PRIVATE_FLAG`,
      `${op}|FUTEX_CLOCK_REALTIME`,
      `${op}|FUTEX_PRIVATE_FLAG|FUTEX_CLOCK_REALTIME`,
    ]),
  },
} as Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>;

export interface DeriveOptions {
  /** What a call outside the learned policy gets (default "kill": Sandbox2's model). */
  onRefusal?: "errno" | "kill";
  /** The learning run's view of the filesystem; without it, the policy keeps the default view. */
  view?: View;
  /** The learning run's policy, for the settings kept (network, hostname, ids, relaxations). */
  base?: Policy;
}

/** A learned policy file, as JSON. */
export type LearnedFile = Record<string, unknown> & { notes: Observations };

/** The allowIf alternatives for a syscall's variants (undefined: allowed whole). */
function alternatives(arch: ArchName, name: string, variants: readonly Variant[]): Alternative[] | undefined {
  const specs = argSpecs(arch, name).filter((s) => s.learn);
  if (specs.length === 0 || variants.length === 0) return undefined;
  const exact = specs.filter((s) => s.learn === "exact");
  const subset = specs.filter((s) => s.learn === "subset");
  // Variants alike in their exact arguments are one alternative; flags are the union of theirs.
  const groups = new Map<string, { exact: Record<string, string | number>; masks: Map<string, bigint> }>();
  for (const v of variants) {
    const e = Object.fromEntries(exact.map((s) => [s.name, v.args[s.name] ?? 0]));
    const key = JSON.stringify(e);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { exact: e, masks: new Map() }));
    for (const s of subset) {
      const parsed = parseValue(s, v.args[s.name] ?? 0);
      const bits = typeof parsed === "bigint" ? BigInt.asUintN(32, parsed) : 0n;
      g.masks.set(s.name, (g.masks.get(s.name) ?? 0n) | bits);
    }
  }
  const named = (s: (typeof specs)[number], bits: bigint): string | number => nameValue(s, bits) ?? Number(bits);
  const alts: Record<string, Condition>[] = [...groups.values()].map((g) => ({
    ...g.exact,
    ...Object.fromEntries(subset.map((s) => [s.name, { subsetOf: named(s, g.masks.get(s.name) ?? 0n) }])),
  }));
  // One exact argument and nothing else: one alternative listing its values.
  if (exact.length === 1 && subset.length === 0) {
    const arg = exact[0]!.name;
    const values = alts.map((a) => a[arg] as string | number);
    const timing = Object.hasOwn(TIMING, name) && Object.hasOwn(TIMING[name]!, arg) ? TIMING[name]![arg]! : [];
    return [{ [arg]: sortValues([...values, ...timing]) }];
  }
  return alts.sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
}

function sortValues(values: (string | number)[]): (string | number)[] {
  return [...new Set(values)].sort((a, b) => String(a).localeCompare(String(b), "en", { numeric: true }));
}

/** The policy file for `notes`. */
export function derivePolicyFile(notes: Observations, opts: DeriveOptions = {}): LearnedFile {
  const arch = notes.arch as ArchName;
  const allow = new Set<string>(ESSENTIAL);
  const allowIf: Record<string, Alternative[]> = {};
  const names = Object.keys(notes.syscalls).filter(knownAnywhere).sort();
  for (const name of names) {
    const alts = alternatives(arch, name, notes.syscalls[name]!.variants ?? []);
    if (alts) allowIf[name] = alts;
    else allow.add(name);
  }
  for (const name of Object.keys(allowIf)) allow.delete(name);
  const base = opts.base;
  const danger = base ? [...base.dangerAllowed].sort() : [];
  const mounts: MountEntry[] | undefined = opts.view ? learnedMounts(opts.view, notes.paths) : undefined;
  const commands = notes.runs.map((r) => r.command.join(" "));
  const description = `Learned by bunbox learn from ${notes.runs.length} run${notes.runs.length === 1 ? "" : "s"}: ${commands.slice(0, 3).join("; ")}${commands.length > 3 ? "; …" : ""}`;
  return {
    description,
    onRefusal: opts.onRefusal ?? "kill",
    ...(danger.length ? { dangerAllowUnsafe: danger } : {}),
    allow: [...allow].sort(),
    ...(Object.keys(allowIf).length ? { allowIf } : {}),
    ...(mounts ? { filesystem: { base: "empty", mounts } } : {}),
    ...(base && base.net !== "none" ? { network: base.net } : {}),
    ...(base && base.hostname !== "bunbox" ? { hostname: base.hostname } : {}),
    ...(base?.uid !== undefined ? { uid: base.uid } : {}),
    ...(base?.gid !== undefined ? { gid: base.gid } : {}),
    notes: sortedObservations(notes),
  };
}
