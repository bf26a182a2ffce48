/**
 * An OCI runtime bundle (a directory with config.json and a root
 * filesystem) as a bunbox policy and executor: `bunbox oci run BUNDLE` and
 * `runBundle()` in the library.
 *
 * Everything the bundle asks for is carried out or refused: every problem is
 * collected and reported at once (BundleError, exit 2), each naming its
 * field (`linux.sysctl: not supported`), and spec.ts OCI_FIELDS lists what
 * bunbox does with each field. The filesystem is the bundle's alone (its
 * root and its mounts, nothing of bunbox's default view); the syscalls are
 * linux.seccomp's, or bunbox's `default` profile when it has none (bunbox
 * never runs without a filter).
 */
import { readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import * as v from "valibot";
import { ProblemsError, UsageError } from "../errors.ts";
import { PolicyBuilder } from "../policy/builder.ts";
import type { Policy } from "../policy/policy.ts";
import { applyProfile, type ProfileName } from "../policy/profiles.ts";
import { Executor, type TerminalOptions } from "../sandbox/executor.ts";
import { checkAddressSpace, checkOpenFiles, Limits, type LimitsInit } from "../sandbox/limits.ts";
import { parseSize } from "../sandbox/units.ts";
import { collect, resourceLimits } from "./resources.ts";
import { applySeccompProfile, SeccompProfileError } from "./seccomp.ts";
import { type Config, ConfigSchema, MountSchema, OCI_FIELDS } from "./spec.ts";

export class BundleError extends ProblemsError {
  override readonly name = "BundleError";
  constructor(readonly bundle: string, problems: readonly string[]) {
    super("oci", `${bundle}: the bundle cannot run as written`, problems);
  }
}

export interface BundleOptions {
  /** The terminal when the bundle asks for one (process.terminal): its std fds, and a size unless consoleSize gives one. */
  tty?: TerminalOptions;
  /** The syscall profile when the bundle has no linux.seccomp (default: "default"). */
  profile?: ProfileName;
  /** Limits beyond the bundle's rlimits (wall time: none unless given). */
  limits?: Partial<LimitsInit>;
}

export interface Bundle {
  config: Config;
  policy: Policy;
  executor: Executor;
}

/** Numbers past 2^53 (seccomp values, rlimits) kept exact, as bigints. */
function parseExact(text: string): unknown {
  return JSON.parse(text, (_key, value, context?: { source?: string }) => {
    if (typeof value === "number" && !Number.isSafeInteger(value) && context?.source && /^\d+$/.test(context.source)) {
      return BigInt(context.source);
    }
    return value;
  });
}

/** Whether the config sets the field at `path` ("linux.sysctl", "mounts[].uidMappings"). */
function present(config: unknown, path: string): boolean {
  const walk = (node: unknown, parts: string[]): boolean => {
    if (parts.length === 0) return node !== undefined && node !== null;
    if (typeof node !== "object" || node === null) return false;
    const [head, ...rest] = parts;
    if (head!.endsWith("[]")) {
      const list = (node as Record<string, unknown>)[head!.slice(0, -2)];
      return Array.isArray(list) && list.some((item) => walk(item, rest));
    }
    return walk((node as Record<string, unknown>)[head!], rest);
  };
  return walk(config, path.split("."));
}

const RLIMITS: Record<string, keyof LimitsInit> = {
  RLIMIT_AS: "addressSpace",
  RLIMIT_CPU: "cpuSeconds",
  RLIMIT_FSIZE: "fileSize",
  RLIMIT_NOFILE: "openFiles",
  RLIMIT_NPROC: "processes",
  RLIMIT_CORE: "core",
};
/** The Executor's subjects, as the bundle's fields. */
const EXECUTOR_FIELDS: Record<string, string> = { command: "process.args.0", argv: "process.args", env: "process.env", cwd: "process.cwd" };
const DEFAULT_DEVICES = new Set(["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"]);
/** Mount options bunbox carries out, or that change nothing it relies on (atime, propagation it keeps private). */
const HARMLESS_OPTIONS = new Set([
  "bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec", "private", "rprivate", "relatime", "norelatime", "noatime",
  "strictatime", "nodiratime", "newinstance", "defaults",
]);

/** Reads and checks BUNDLE/config.json, and makes the policy and executor it describes. */
export function loadBundle(dir: string, opts: BundleOptions = {}): Bundle {
  const bundle = resolve(dir);
  const problems: string[] = [];
  let raw: unknown;
  try {
    raw = parseExact(readFileSync(join(bundle, "config.json"), "utf8"));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new BundleError(dir, [code ? `config.json: cannot be read (${code})` : `config.json: not valid JSON: ${(e as Error).message}`]);
  }
  const parsed = v.safeParse(ConfigSchema, raw);
  if (!parsed.success) {
    throw new BundleError(dir, parsed.issues.map((i) => {
      const path = v.getDotPath(i);
      return i.type === "strict_object" && path ? `${path}: not a field of the OCI runtime spec` : `${path ?? "(top level)"}: ${i.message}`;
    }));
  }
  const c = parsed.output;
  for (const [field, [supported, why]] of Object.entries(OCI_FIELDS)) {
    if (!supported && present(c, field)) problems.push(`${field}: not supported by bunbox (${why})`);
  }
  if (!/^1\.[0-2]\.\d+(-[\w.]+)?$/.test(c.ociVersion)) problems.push(`ociVersion: ${c.ociVersion}: bunbox runs 1.0.0 to 1.2.x`);

  const b = new PolicyBuilder().setOrigin(`OCI bundle ${dir}`).emptyFilesystem();
  const inBundle = (p: string) => (isAbsolute(p) ? p : join(bundle, p));
  // A problem found by the code the bundle is handed to, named for the bundle's field where `fields` knows it.
  const before = (fn: () => void, fields: Record<string, string> = {}) => {
    try {
      fn();
    } catch (e) {
      const field = e instanceof UsageError && Object.hasOwn(fields, e.subject) ? fields[e.subject]! : undefined;
      problems.push(field ? `${field}${(e as Error).message.slice((e as UsageError).subject.length)}` : (e as Error).message);
    }
  };

  // root and mounts
  // The builder's problems name the bundle's field (b.at), not the builder's method.
  if (!c.root) problems.push("root: missing (the bundle's root filesystem)");
  else b.at("root.path", () => b.setRoot(inBundle(c.root!.path), { writable: c.root!.readonly === false }));
  c.mounts?.forEach((m, i) => b.at(`mounts.${i}`, () => mount(b, m, `mounts.${i}`, inBundle, problems)));
  c.linux?.maskedPaths?.forEach((p, i) => b.at(`linux.maskedPaths.${i}`, () => b.maskPath(p)));
  c.linux?.readonlyPaths?.forEach((p, i) => b.at(`linux.readonlyPaths.${i}`, () => b.readonlyPath(p)));
  if (c.hostname !== undefined) b.at("hostname", () => b.setHostname(c.hostname!));

  linux(b, c, problems);
  const seccomp = c.linux?.seccomp;
  if (seccomp) {
    before(() => {
      try {
        applySeccompProfile(b, seccomp, "linux.seccomp");
      } catch (e) {
        if (e instanceof SeccompProfileError) problems.push(...e.problems);
        else throw e;
      }
    });
  } else {
    b.asBase((base) => applyProfile(base, opts.profile ?? "default", { cwd: "/" }));
  }

  // process
  const p = c.process;
  if (!p) problems.push("process: missing (what to run)");
  const args = p?.args ?? [];
  if (p && args.length === 0) problems.push("process.args: empty (what to run)");
  for (const [set, caps] of Object.entries(p?.capabilities ?? {})) {
    if (caps?.length) problems.push(`process.capabilities.${set}: bunbox grants no capabilities (${caps.join(", ")})`);
  }
  if (p?.user?.additionalGids?.length) problems.push("process.user.additionalGids: the sandbox maps one gid");
  if (p?.user?.uid !== undefined) b.at("process.user.uid", () => b.setUid(p.user!.uid!));
  if (p?.user?.gid !== undefined) b.at("process.user.gid", () => b.setGid(p.user!.gid!));
  const limits: Partial<LimitsInit> = { wallTimeMs: 0, ...opts.limits, ...resourceLimits(c.linux?.resources, problems) };
  const pidsLimit = limits.processes;
  p?.rlimits?.forEach((r, i) => {
    const key = RLIMITS[r.type];
    if (!key) return problems.push(`process.rlimits.${i}.type: ${r.type} is not supported (${Object.keys(RLIMITS).join(", ")})`);
    if (BigInt(r.soft) > BigInt(r.hard)) return problems.push(`process.rlimits.${i}: soft ${r.soft} is above hard ${r.hard}`);
    // One value for both: the soft one (the sandboxee cannot raise a limit anyway).
    const n = BigInt(r.soft) >= 0xffff_ffff_ffff_ffffn ? Infinity : Number(r.soft);
    // The floors bunbox run has (--max-files, --address-space-limit): below them the run cannot start.
    const field = `process.rlimits.${i} (${r.type})`;
    if (key === "openFiles") collect(problems, () => checkOpenFiles(n, field));
    if (key === "addressSpace") collect(problems, () => checkAddressSpace(n, field));
    limits[key] = n;
  });
  // RLIMIT_NPROC and pids.limit are one limit in bunbox (the cgroup's
  // pids.max, RLIMIT_NPROC beside it): the smaller honours both.
  if (pidsLimit !== undefined) limits.processes = Math.min(pidsLimit, limits.processes ?? Infinity);
  const env: Record<string, string> = Object.create(null);
  p?.env?.forEach((kv, i) => {
    const eq = kv.indexOf("=");
    if (eq <= 0) problems.push(`process.env.${i}: "${kv}" is not NAME=VALUE`);
    else env[kv.slice(0, eq)] = kv.slice(eq + 1);
  });

  const built = b.tryBuild();
  if (built.problems) problems.push(...built.problems);
  let executor: Executor | undefined;
  if (problems.length === 0 && p) {
    before(() => {
      const size = p.consoleSize ? { rows: p.consoleSize.height, cols: p.consoleSize.width } : {};
      const tty = p.terminal ? { stdio: [0, 1, 2] as const, ...opts.tty, ...size } : undefined;
      executor = new Executor(args[0]!, args, { env, cwd: p.cwd, limits: new Limits(limits), ...(tty ? { tty } : {}) });
    }, EXECUTOR_FIELDS);
  }
  if (problems.length) throw new BundleError(dir, problems);
  return { config: c, policy: built.policy!, executor: executor! };
}

function mount(b: PolicyBuilder, m: v.InferOutput<typeof MountSchema>, field: string, inBundle: (p: string) => string, problems: string[]): void {
  const options = m.options ?? [];
  let size: number | undefined;
  let mode: number | undefined;
  for (const [j, o] of options.entries()) {
    if (o.startsWith("size=")) size = parseSize(o.slice(5), `${field}.options.${j}`);
    else if (o.startsWith("mode=")) {
      // parseInt would read "mode=99" as NaN and "mode=7x" as 7: the mode was dropped or cut, unsaid.
      if (/^[0-7]{1,4}$/.test(o.slice(5))) mode = parseInt(o.slice(5), 8);
      else problems.push(`${field}.options.${j}: ${o} is not an octal mode (0 to 7777)`);
    }
    else if (o === "shared" || o === "rshared" || o === "slave" || o === "rslave") {
      problems.push(`${field}.options.${j}: ${o}: bunbox's mounts are always private`);
    } else if (!HARMLESS_OPTIONS.has(o) && !/^(gid|uid|ptmxmode)=\d+$/.test(o)) {
      problems.push(`${field}.options.${j}: ${o} is not supported`);
    }
  }
  const bind = m.type === "bind" || options.includes("bind") || options.includes("rbind");
  const writable = !options.includes("ro");
  if (bind) {
    if (m.source === undefined) return void problems.push(`${field}.source: a bind needs one`);
    b.addPathAt(inBundle(m.source), m.destination, { writable });
  } else if (m.type === "proc") {
    b.addProc(m.destination);
  } else if (m.type === "tmpfs" && m.destination === "/dev") {
    b.addDev("/dev"); // the runtime's default devices: bunbox's minimal /dev
  } else if (m.type === "tmpfs") {
    b.addTmpfs(m.destination, { ...(size !== undefined ? { size } : {}), ...(mode !== undefined ? { mode } : {}) });
  } else {
    problems.push(`${field}.type: ${m.type ?? "(none)"} is not supported (proc, tmpfs, bind)`);
  }
}

function linux(b: PolicyBuilder, c: Config, problems: string[]): void {
  const l = c.linux;
  const types = new Set<string>();
  l?.namespaces?.forEach((ns, i) => {
    if (ns.path !== undefined) problems.push(`linux.namespaces.${i}.path: joining a namespace is not supported`);
    if (!["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"].includes(ns.type)) {
      problems.push(`linux.namespaces.${i}.type: ${ns.type} is not a namespace`);
    }
    if (ns.type === "time") problems.push(`linux.namespaces.${i}: a time namespace is not supported`);
    if (types.has(ns.type)) problems.push(`linux.namespaces.${i}: ${ns.type} is listed twice`);
    types.add(ns.type);
  });
  if (!types.has("pid")) problems.push("linux.namespaces: no pid namespace: sharing the host's pids is refused");
  if (!types.has("mount")) problems.push("linux.namespaces: no mount namespace: sharing the host's mounts is refused");
  b.setNetwork(types.has("network") ? "none" : "host");

  const euid = process.geteuid?.() ?? 0;
  const egid = process.getegid?.() ?? 0;
  const inside = (id: number | undefined, fallback: number) => id ?? fallback;
  // As root, the host's id is the sandbox's own, allocated per run (README "Containment"): any hostID names it.
  const mapping = (list: readonly { containerID: number; hostID: number; size: number }[], field: string, id: number, host: number | undefined) => {
    const ok = list.length === 1 && list[0]!.size === 1 && list[0]!.containerID === id && (host === undefined || list[0]!.hostID === host);
    if (!ok) problems.push(`${field}: bunbox maps one id, ${id} inside to ${host ?? "a uid of the sandbox's own when it runs as root"}${host === undefined ? "" : " (yours)"}; not ${JSON.stringify(list)}`);
  };
  const hostUid = euid === 0 ? undefined : euid;
  const hostGid = euid === 0 ? undefined : egid;
  if (l?.uidMappings) mapping(l.uidMappings, "linux.uidMappings", inside(c.process?.user?.uid, hostUid ?? 65534), hostUid);
  if (l?.gidMappings) mapping(l.gidMappings, "linux.gidMappings", inside(c.process?.user?.gid, hostGid ?? 65534), hostGid);

  l?.devices?.forEach((d, i) => {
    if (!DEFAULT_DEVICES.has(d.path)) problems.push(`linux.devices.${i}: ${d.path}: only the default devices are supported`);
  });
  l?.resources?.devices?.forEach((d, i) => {
    if (d.allow) problems.push(`linux.resources.devices.${i}: an allow rule is not supported (bunbox's /dev holds the default devices only)`);
  });
  if (l?.rootfsPropagation !== undefined && !["private", "rprivate"].includes(l.rootfsPropagation)) {
    problems.push(`linux.rootfsPropagation: ${l.rootfsPropagation}: bunbox's mounts are always private`);
  }
}
