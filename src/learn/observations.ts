/**
 * What learning runs saw, in the form a learned policy keeps it (its
 * `"notes"`): every syscall with its count, the runs it appeared in, where
 * it was first made and, for the arguments a policy constrains, each
 * combination of values by name; every path with what was done to it; the
 * safety-list calls the runs tried. A learned policy is a function of these
 * (derive.ts), so `--merge` adds a run's observations to a file's and
 * derives again.
 *
 * Names only, no numbers: the notes, like the policy, read the same on any
 * arch. No dates: regenerating a profile from the same runs gives the same
 * file.
 */
import * as v from "valibot";
import { UsageError } from "../errors.ts";

/** What was done to a path: read, written (in place), exec'd, stat'ed (or access'ed, readlink'ed), listed, or changed (an entry made, removed or renamed in its directory). */
export type PathOp = "read" | "write" | "exec" | "stat" | "list" | "change";
export const PATH_OPS: readonly PathOp[] = ["read", "write", "exec", "stat", "list", "change"];

export interface Variant {
  /** The constrained arguments' values, by name (argspec.ts `learn`). */
  args: Record<string, string | number>;
  count: number;
}

export interface SyscallNote {
  count: number;
  /** Run numbers (1-based) it appeared in. */
  runs: number[];
  /** Where the first one came from ("libc.so.6+0x11c8f0"). */
  first?: string;
  variants?: Variant[];
}

export interface PathNote {
  ops: PathOp[];
  count: number;
  runs: number[];
}

export interface SafetyNote {
  run: number;
  /** The call, decoded. */
  call: string;
  rule: string;
  /** The relaxation that would let it through. */
  relax?: string;
}

export interface RunNote {
  command: string[];
  /** How it ended (Result.toString()). */
  result: string;
}

export interface Observations {
  learnedBy: "bunbox learn";
  version: 1;
  /** The arch the runs were on (the values' names were read with its tables). */
  arch: string;
  runs: RunNote[];
  syscalls: Record<string, SyscallNote>;
  paths: Record<string, PathNote>;
  safety: SafetyNote[];
}

export function emptyObservations(arch: string): Observations {
  return { learnedBy: "bunbox learn", version: 1, arch, runs: [], syscalls: {}, paths: {}, safety: [] };
}

/** Object.fromEntries-style maps without a prototype: a syscall or path named "__proto__" is a key like any other. */
export function record<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

const Count = v.pipe(v.number(), v.integer(), v.minValue(0));
const Runs = v.array(v.pipe(v.number(), v.integer(), v.minValue(1)));
const NotesSchema = v.object({
  learnedBy: v.literal("bunbox learn"),
  version: v.literal(1),
  arch: v.string(),
  runs: v.array(v.object({ command: v.array(v.string()), result: v.string() })),
  syscalls: v.record(
    v.string(),
    v.object({
      count: Count,
      runs: Runs,
      first: v.optional(v.string()),
      variants: v.optional(v.array(v.object({ args: v.record(v.string(), v.union([v.string(), v.number()])), count: Count }))),
    }),
  ),
  paths: v.record(v.string(), v.object({ ops: v.array(v.picklist(PATH_OPS)), count: Count, runs: Runs })),
  safety: v.array(v.object({ run: v.number(), call: v.string(), rule: v.string(), relax: v.optional(v.string()) })),
});

/** A learned policy file's notes, checked (`source` names the file); a policy not written by `bunbox learn` is a usage error. */
export function readObservations(file: unknown, source: string): Observations {
  const notes = typeof file === "object" && file !== null ? (file as { notes?: unknown }).notes : undefined;
  const r = v.safeParse(NotesSchema, notes);
  if (!r.success) {
    const where = v.getDotPath(r.issues[0]);
    throw new UsageError("--merge", `${source}: not a policy bunbox learn wrote (notes${where ? `.${where}` : ""}: ${r.issues[0].message})`);
  }
  const o = r.output;
  // Rebuilt without prototypes (valibot's records are plain objects).
  const syscalls = record<SyscallNote>();
  for (const [k, s] of Object.entries(o.syscalls)) syscalls[k] = { ...s, ...(s.variants ? { variants: s.variants.map((x) => ({ args: { ...x.args }, count: x.count })) } : {}) };
  const paths = record<PathNote>();
  for (const [k, p] of Object.entries(o.paths)) paths[k] = { ...p };
  return { ...o, syscalls, paths };
}

const union = (a: readonly number[], b: readonly number[]) => [...new Set([...a, ...b])].sort((x, y) => x - y);

/** `b` added to `a` (a's runs first, b's renumbered after them): a new object. */
export function mergeObservations(a: Observations, b: Observations): Observations {
  const shift = a.runs.length;
  const renumber = (runs: readonly number[]) => runs.map((r) => r + shift);
  const syscalls = record<SyscallNote>();
  for (const [k, s] of Object.entries(a.syscalls)) syscalls[k] = { ...s, runs: [...s.runs], ...(s.variants ? { variants: s.variants.map((x) => ({ ...x })) } : {}) };
  for (const [k, s] of Object.entries(b.syscalls)) {
    const had = syscalls[k];
    if (!had) {
      syscalls[k] = { ...s, runs: renumber(s.runs), ...(s.variants ? { variants: s.variants.map((x) => ({ ...x })) } : {}) };
      continue;
    }
    had.count += s.count;
    had.runs = union(had.runs, renumber(s.runs));
    had.first ??= s.first;
    if (s.variants) {
      const vs = had.variants ?? [];
      for (const x of s.variants) {
        const key = JSON.stringify(x.args);
        const same = vs.find((y) => JSON.stringify(y.args) === key);
        if (same) same.count += x.count;
        else vs.push({ ...x });
      }
      had.variants = vs;
    }
  }
  const paths = record<PathNote>();
  for (const [k, p] of Object.entries(a.paths)) paths[k] = { ...p, ops: [...p.ops], runs: [...p.runs] };
  for (const [k, p] of Object.entries(b.paths)) {
    const had = paths[k];
    if (!had) paths[k] = { ...p, ops: [...p.ops], runs: renumber(p.runs) };
    else {
      had.ops = PATH_OPS.filter((op) => had.ops.includes(op) || p.ops.includes(op));
      had.count += p.count;
      had.runs = union(had.runs, renumber(p.runs));
    }
  }
  return {
    learnedBy: "bunbox learn",
    version: 1,
    arch: a.arch,
    runs: [...a.runs, ...b.runs],
    syscalls,
    paths,
    safety: [...a.safety, ...b.safety.map((s) => ({ ...s, run: s.run + shift }))],
  };
}

/** A stable form for writing: keys sorted, variants by count (then by name). */
export function sortedObservations(o: Observations): Observations {
  const syscalls = record<SyscallNote>();
  for (const k of Object.keys(o.syscalls).sort()) {
    const s = o.syscalls[k]!;
    syscalls[k] = {
      count: s.count,
      runs: s.runs,
      ...(s.first !== undefined ? { first: s.first } : {}),
      ...(s.variants ? { variants: [...s.variants].sort((x, y) => y.count - x.count || JSON.stringify(x.args).localeCompare(JSON.stringify(y.args))) } : {}),
    };
  }
  const paths = record<PathNote>();
  for (const k of Object.keys(o.paths).sort()) paths[k] = o.paths[k]!;
  return { ...o, syscalls, paths };
}
