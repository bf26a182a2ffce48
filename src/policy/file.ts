/**
 * Policy files for `--policy FILE`: JSON validated with valibot strictObject
 * (a typo in a key is an error naming its dotted path, as is an unknown
 * syscall name), or a .ts/.js module exporting a Policy, a PolicyBuilder, or a
 * function returning one.
 *
 *   {
 *     "profile": "static",
 *     "allow": ["getppid"],
 *     "families": ["time", "sleep"],
 *     "block": { "open": "ENOENT" },
 *     "rules": [{ "syscalls": ["write"], "program": [{ "arg": 0 }, { "jeq": 1, "then": "allow" }, "kill"] }],
 *     "filesystem": { "base": "default", "mounts": [{ "bind": "/data", "writable": true }, { "tmpfs": "/scratch", "size": "16M" }] },
 *       (every key of "filesystem": src/policy/filesystem.ts)
 *     "network": "none", "hostname": "box", "uid": 1000
 *   }
 *
 * "network" may also be { "mode": "proxy", "allow": [...], "deny": [...],
 * "addHosts": {...} } (src/net/schema.ts).
 */
import { extname, resolve } from "node:path";
import * as v from "valibot";
import { BunboxError, UsageError } from "../errors.ts";
import { errnoNumber } from "../native/errno.ts";
import { ARCHES, type ArchName, hostArch } from "./arch.ts";
import { applyMount, rootOp } from "./filesystem.ts";
import { FilesystemSchema } from "./filesystem-schema.ts";
import { PolicyBuilder, PolicyError } from "./builder.ts";
import { FAMILIES, type FamilyName } from "./families.ts";
import { DANGEROUS_USES, isDangerName } from "./safety.ts";
import { NetworkSchema } from "../net/schema.ts";
import { Policy } from "./policy.ts";
import type { Alternative } from "./allowif.ts";
import { applyProfile, PROFILE_NAMES } from "./profiles.ts";
import { type Action, ALLOW, errno as errnoAction, KILL, type Node, TRACE } from "./rules.ts";
import { quote } from "../names.ts";
import { nearest } from "../near.ts";
import { describeIssue } from "./file-issues.ts";
import { jsonErrorAt } from "./json-position.ts";
import { MAX_INPUT, readFileAtMost } from "../read-text.ts";

const ErrnoSchema = v.union([
  v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(4095)),
  v.pipe(v.string(), v.check((s) => errnoNumber(s) !== undefined, "not an errno name (like EPERM)")),
]);
const ActionSchema = v.union([
  v.picklist(["allow", "kill", "trace", "user_notif"]),
  v.strictObject({ errno: ErrnoSchema }),
]);
const Value = v.union([
  // Beyond 2^53 a JSON number has already lost digits when it is parsed.
  v.pipe(v.number(), v.integer(), v.check((x: number) => Number.isSafeInteger(x), "beyond ±2^53 a number is not exact: write it as a string")),
  v.pipe(v.string(), v.regex(/^-?(0x[0-9a-fA-F]+|\d+)$/, "not an integer (decimal or 0x hex)")),
]);
const Target = v.union([ActionSchema, v.strictObject({ label: v.string() })]);
const cmpEntry = (op: string) => v.strictObject({ [op]: Value, then: Target });
const NodeSchema = v.union([
  ActionSchema,
  v.strictObject({ arg: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(5)) }),
  v.strictObject({ arg32: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(5)) }),
  ...["jeq", "jne", "jset", "jge", "jgt", "jle", "jlt"].map(cmpEntry),
  v.strictObject({ label: v.string() }),
  v.strictObject({ goto: v.string() }),
]);
const NOT_A_SAFETY_RULE = `not a safety rule (a dangerous syscall like "ptrace", or one of ${Object.keys(DANGEROUS_USES).join(", ")})`;
const SyscallRef = v.union([v.string(), v.pipe(v.number(), v.integer(), v.minValue(0))]);
/**
 * An object of name: value as its [name, value] entries. Not v.record(),
 * which drops the keys "__proto__", "constructor" and "prototype" without a
 * word: a syscall the file blocks, or an argument condition, must never
 * vanish. Every own key is kept (JSON.parse makes "__proto__" an own key
 * too) and its name checked like any other, where it is used.
 */
function entriesSchema<S extends v.GenericSchema>(value: S, expected: string) {
  return v.pipe(
    v.custom<Record<string, unknown>>((x) => typeof x === "object" && x !== null && !Array.isArray(x), `Invalid type: Expected ${expected}`),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const entries: [string, v.InferOutput<S>][] = [];
      for (const [name, item] of Object.entries(dataset.value)) {
        const r = v.safeParse(value, item);
        if (r.success) entries.push([name, r.output]);
        else {
          for (const issue of r.issues) {
            const inner = (issue.path ?? []).map((p) => ({ ...p }));
            addIssue({ message: issue.message, path: [{ type: "object", origin: "value", input: dataset.value, key: name, value: item }, ...inner] as never });
          }
        }
      }
      return entries.length === Object.keys(dataset.value).length ? entries : NEVER;
    }),
  );
}
/** `block`: { syscall: errno }. */
const BlockSchema = entriesSchema(ErrnoSchema, "an object of syscall name: errno");
const ValueText = v.union([
  v.pipe(v.number(), v.integer(), v.check((x: number) => Number.isSafeInteger(x), "beyond ±2^53 a number is not exact: write it as a string")),
  v.string(),
]);
const ConditionSchema = v.union([ValueText, v.array(ValueText), v.strictObject({ subsetOf: ValueText })]);
/** One alternative of `allowIf`: { argument: condition }, as an object again (own keys only, "__proto__" included). */
const AlternativeSchema = v.pipe(
  entriesSchema(ConditionSchema, "an object of argument name: condition"),
  v.transform((entries) => Object.fromEntries(entries) as Alternative),
);
/** `allowIf`: { syscall: [alternative…] } (src/policy/allowif.ts). */
const AllowIfSchema = entriesSchema(v.union([AlternativeSchema, v.array(AlternativeSchema)]), "an object of syscall name: conditions");

export const PolicyFileSchema = v.strictObject({
  $schema: v.optional(v.string()),
  description: v.optional(v.string()),
  profile: v.optional(v.picklist(PROFILE_NAMES)),
  arch: v.optional(v.picklist(Object.keys(ARCHES) as ArchName[])),
  defaultAction: v.optional(ActionSchema),
  dangerDefaultAllowAll: v.optional(v.boolean()),
  dangerAllowUnsafe: v.optional(v.array(v.pipe(v.string(), v.check((s: string) => isDangerName(s), NOT_A_SAFETY_RULE)))),
  families: v.optional(v.array(v.picklist(Object.keys(FAMILIES) as FamilyName[]))),
  allow: v.optional(v.array(SyscallRef)),
  allowIf: v.optional(AllowIfSchema),
  onRefusal: v.optional(v.picklist(["errno", "kill"])),
  audit: v.optional(v.boolean()),
  /** Free-form: what `bunbox learn` observed (src/learn/), or the author's own. Never read to build the policy. */
  notes: v.optional(v.unknown()),
  block: v.optional(BlockSchema),
  rules: v.optional(v.array(v.strictObject({ syscalls: v.array(SyscallRef), program: v.array(NodeSchema) }))),
  filesystem: v.optional(FilesystemSchema),
  hostname: v.optional(v.string()),
  network: v.optional(NetworkSchema),
  uid: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  gid: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
});
export type PolicyFile = v.InferOutput<typeof PolicyFileSchema>;

function toAction(a: v.InferOutput<typeof ActionSchema>): Action {
  if (typeof a === "object") return errnoAction(typeof a.errno === "number" ? a.errno : errnoNumber(a.errno)!);
  return a === "allow" ? ALLOW : a === "kill" ? KILL : TRACE;
}

const COMPARES = ["jeq", "jne", "jset", "jge", "jgt", "jle", "jlt"] as const;

function toNode(input: v.InferOutput<typeof NodeSchema>): Node | Action {
  if (typeof input === "string") return toAction(input);
  const n = input as Record<string, unknown>;
  if ("errno" in n) return toAction(n as { errno: string | number });
  if ("arg" in n) return { op: "load", arg: n.arg as number, width: 64 };
  if ("arg32" in n) return { op: "load", arg: n.arg32 as number, width: 32 };
  if ("label" in n) return { op: "label", name: n.label as string };
  if ("goto" in n) return { op: "goto", target: { label: n.goto as string } };
  const cmp = COMPARES.find((c) => c in n)!;
  const raw = n[cmp] as number | string;
  const value = typeof raw === "number" ? BigInt(raw) : raw.startsWith("-") ? -BigInt(raw.slice(1)) : BigInt(raw);
  const then = n.then as v.InferOutput<typeof Target>;
  const target = typeof then === "object" && "label" in then ? { label: then.label } : toAction(then);
  return { op: "cmp", cmp, value, target };
}

/** Builds a policy from parsed JSON; `source` names the file in messages. */
export function policyFromJson(json: unknown, source: string, cwd = process.cwd()): Policy {
  // valibot's objects take an array (as an object with keys "0", "1"…): `[]` would be `{}`, an empty policy.
  if (Array.isArray(json)) throw new PolicyError([`${source}: (top level): a policy is a JSON object ({ "profile": …, "allow": [...] }), not an array`]);
  // The same for the filesystem section: `"filesystem": []` would be the default filesystem, unsaid
  // (block and allowIf refuse arrays in their schema; network's is a union of a string and an object).
  if (Array.isArray((json as Record<string, unknown> | null)?.filesystem)) throw new PolicyError([`${source}: filesystem: a JSON object, not an array`]);
  const parsed = v.safeParse(PolicyFileSchema, json);
  if (!parsed.success) throw new PolicyError(parsed.issues.map((i) => `${source}: ${describeIssue(i, PolicyFileSchema)}`));
  const f = parsed.output;
  const arch = f.arch ?? hostArch().name;
  const b = new PolicyBuilder({ arch }).setOrigin(`${source}${f.profile ? ` (profile ${f.profile})` : ""}`);
  const table = ARCHES[arch].syscalls;
  const known = (ref: string | number, path: string) => {
    if (typeof ref === "number" || table[ref] !== undefined) return true;
    const near = nearest(ref, Object.keys(table));
    b.problem(`${source}: ${path}: unknown syscall ${quote(ref)} on ${arch}${near.length ? ` (did you mean ${near.join(", ")}?)` : ""}`);
    return false;
  };
  // Each builder call's problems are named by the file's key, not the method.
  const at = (key: string, fn: () => void) => b.at(`${source}: ${key}`, fn);
  if (f.dangerDefaultAllowAll) at("dangerDefaultAllowAll", () => b.dangerDefaultAllowAll());
  if (f.defaultAction !== undefined) at("defaultAction", () => b.defaultAction(toAction(f.defaultAction!)));
  f.dangerAllowUnsafe?.forEach((name, i) => at(`dangerAllowUnsafe.${i}`, () => b.dangerAllowUnsafe(name)));
  f.families?.forEach((fam, i) => at(`families.${i}`, () => b.allowFamily(fam)));
  if (f.arch) {
    f.allow?.forEach((s, i) => known(s, `allow.${i}`) && at(`allow.${i}`, () => b.allowSyscall(s)));
    for (const [name, alts] of f.allowIf ?? []) if (known(name, `allowIf.${name}`)) b.allowIf(name, alts, `${source}: allowIf.${name}`);
  } else {
    // A file without "arch" serves any (README.md "Writing a policy"): x86_64's
    // open is openat on aarch64, and arch_prctl is not there at all.
    const numbers = (f.allow ?? []).filter((s): s is number => typeof s === "number");
    at("allow", () => b.allowSyscalls(numbers));
    const names = (f.allow ?? []).filter((s): s is string => typeof s === "string");
    b.allowPortable(names, Object.fromEntries(f.allowIf ?? []), source);
  }
  for (const [name, err] of f.block ?? []) {
    if (known(name, `block.${name}`)) at(`block.${name}`, () => b.blockSyscallWithErrno(name, err));
  }
  f.rules?.forEach((r, i) => {
    const names = r.syscalls.filter((s, j) => known(s, `rules.${i}.syscalls.${j}`));
    at(`rules.${i}`, () => b.addPolicyOnSyscalls(names, r.program.map(toNode)));
  });
  // The file's own rules come first; its profile is the base beneath them.
  if (f.profile) b.asBase((base) => applyProfile(base, f.profile!, { cwd }));
  if (f.onRefusal !== undefined) at("onRefusal", () => b.setOnRefusal(f.onRefusal!));
  if (f.audit !== undefined) at("audit", () => b.setAudit(f.audit!));
  const fs = f.filesystem;
  if (fs?.base === "empty") b.emptyFilesystem();
  // Subjects name the file and the key: a mount's own errors say which entry.
  if (fs?.root !== undefined) b.editFilesystem((p) => p.setRoot(rootOp(fs.root!, `${source}: filesystem.root`), `${source}: filesystem.root`));
  fs?.mounts?.forEach((m, i) => b.editFilesystem((p) => applyMount(p, m, `${source}: filesystem.mounts.${i}`)));
  fs?.dangerAllowHostMounts?.forEach((k, i) => at(`filesystem.dangerAllowHostMounts.${i}`, () => b.dangerAllowHostMount(k)));
  if (f.hostname !== undefined) at("hostname", () => b.setHostname(f.hostname!));
  const net = f.network;
  if (typeof net === "string") at("network", () => b.setNetwork(net));
  else if (net !== undefined) {
    at("network", () => {
      b.setNetwork(net.mode).allowHosts(...(net.allow ?? [])).denyHosts(...(net.deny ?? []));
      for (const [name, ip] of Object.entries(net.addHosts ?? {})) b.addHost(name, ip);
    });
  }
  if (f.uid !== undefined) at("uid", () => b.setUid(f.uid!));
  if (f.gid !== undefined) at("gid", () => b.setGid(f.gid!));
  return b.build();
}

/** Loads `--policy FILE`: JSON, or a module exporting a policy. */
export async function loadPolicyFile(path: string, cwd = process.cwd()): Promise<Policy> {
  const full = resolve(cwd, path);
  const ext = extname(full);
  if ([".ts", ".js", ".mjs", ".mts"].includes(ext)) {
    let mod: Record<string, unknown>;
    const modules = await import("./module.ts");
    try {
      mod = await modules.importPolicyModule(full);
    } catch (e) {
      throw new UsageError("--policy", `${path}: cannot load the module: ${(e as Error).message}`);
    }
    let p = mod.default ?? mod.policy;
    // A function gets a fresh builder (a `bunbox learn --format ts` module needs nothing else from bunbox).
    if (typeof p === "function" && !(p instanceof Policy)) {
      const make = p as (b: PolicyBuilder) => unknown;
      try {
        p = await modules.withoutExit(() => make(new PolicyBuilder().setOrigin(path)));
      } catch (e) {
        if (e instanceof BunboxError) throw e;
        throw new UsageError("--policy", `${path}: its policy function failed: ${(e as Error).message}`);
      }
    }
    if (p instanceof PolicyBuilder) p = p.build();
    if (!(p instanceof Policy)) {
      throw new UsageError("--policy", `${path}: export a Policy, a PolicyBuilder or a function returning one (as default or as "policy")`);
    }
    return p;
  }
  let text: string;
  try {
    const bytes = readFileAtMost(full);
    if (bytes === undefined) throw new UsageError("--policy", `${path}: more than ${MAX_INPUT >> 20}M: not a policy file (a device or a stream without an end?)`);
    text = new TextDecoder().decode(bytes);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError("--policy", `${path}: ${code === "ENOENT" ? "no such file" : `cannot read (${code})`}`);
  }
  let json: unknown;
  let error: Error | undefined;
  try {
    json = JSON.parse(text);
  } catch (e) {
    error = e as Error;
  }
  // Also when JSON.parse took it: a key given twice (src/policy/json-position.ts).
  const at = jsonErrorAt(text);
  if (at) throw new UsageError("--policy", `${path}:${at.line}:${at.column}: ${error ? "not valid JSON" : "a policy file"}: ${at.message}`);
  if (error) throw new UsageError("--policy", `${path}: not valid JSON: ${error.message}`);
  return policyFromJson(json, path, cwd);
}
