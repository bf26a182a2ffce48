/**
 * sandboxlib's call for build tools (Baserock's sandboxlib: run_sandbox,
 * maximum_possible_isolation, degrade_config_for_capabilities), typed, on
 * bunbox:
 *
 *   const { result, stdout } = await runSandbox(["make", "-j4"], {
 *     filesystemRoot: "/srv/stage", filesystemWritablePaths: ["/build"],
 *     extraMounts: [{ source: "/usr", target: "/usr", type: "bind", options: "ro" }],
 *     network: "isolated", cwd: "/build", env: { PATH: "/usr/bin:/bin" },
 *   });
 *
 * sandboxlib's words, and what bunbox makes of them:
 *   filesystemRoot           "/" the host's default view (README.md); a host
 *                            directory: --root DIR
 *   filesystemWritablePaths  "none" (the root read-only; /tmp is a private
 *                            tmpfs all the same), "all" (--root-rw), or the
 *                            paths inside the root that stay writable (each
 *                            bound writable from the root's own directory)
 *   discardWrites            (bunbox's) a writable root whose writes vanish
 *                            with the run: --overlay
 *   mounts                   "isolated" or "undefined": a sandbox always has
 *                            its own mount namespace
 *   extraMounts              { source, target, type, options }: proc, tmpfs
 *                            (size=), bind (ro, rw); target inside the root
 *   network                  "isolated" (its own network namespace) or
 *                            "undefined" (the host's: a relaxation, reported)
 *   cwd, env                 inside the sandbox (env: only what is given)
 *   stdout, stderr           "capture" (returned), "inherit", "devnull", an
 *                            fd; stderr also "stdout" (merged into it)
 *
 * `degrade(config)` weakens a config to what this host can enforce
 * (capabilities(), src/sandbox/capabilities.ts), one warning per guarantee
 * it drops.
 */
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { BunboxError, UsageError } from "../errors.ts";
import { applyMount, type MountEntry } from "../policy/filesystem.ts";
import { PolicyBuilder } from "../policy/builder.ts";
import { applyProfile, type ProfileName } from "../policy/profiles.ts";
import { closeFd } from "../native/sys.ts";
import { type Capabilities, capabilities } from "./capabilities.ts";
import { DEFAULT_PATH, Executor } from "./executor.ts";
import type { LimitsInit } from "./limits.ts";
import type { Result } from "./result.ts";
import { Sandbox } from "./sandbox.ts";

export interface ExtraMount {
  /** A host path (bind), or ignored (proc, tmpfs). */
  source?: string | null;
  /** Where, inside the sandbox's root. */
  target: string;
  /** "proc", "tmpfs", "bind"; none: a bind. */
  type?: "proc" | "tmpfs" | "bind" | null;
  /** Comma-separated: "ro", "rw", "bind", "size=64M". */
  options?: string | null;
}

export type Output = "capture" | "inherit" | "devnull" | number;

export interface SandboxlibConfig {
  filesystemRoot?: string;
  filesystemWritablePaths?: "all" | "none" | readonly string[];
  discardWrites?: boolean;
  mounts?: "isolated" | "undefined";
  extraMounts?: readonly ExtraMount[];
  network?: "isolated" | "undefined";
  cwd?: string;
  env?: Readonly<Record<string, string>>;
  stdout?: Output;
  stderr?: Output | "stdout";
  /** The syscall profile (default: "default"). */
  profile?: ProfileName;
  limits?: Partial<LimitsInit>;
}

export interface SandboxlibResult {
  result: Result;
  /** The command's exit code, when it exited (sandboxlib's first value). */
  exitCode: number | undefined;
  /** What it wrote, where captured. */
  stdout?: Uint8Array;
  stderr?: Uint8Array;
  /** The relaxations it ran under (Policy.relaxations). */
  relaxations: readonly string[];
}

/** sandboxlib's maximum_possible_isolation: the strictest config there is. */
export const MAXIMUM_ISOLATION: Readonly<SandboxlibConfig> = Object.freeze({
  mounts: "isolated",
  network: "isolated",
  filesystemWritablePaths: "none",
});

const KEYS = new Set<string>([
  "filesystemRoot", "filesystemWritablePaths", "discardWrites", "mounts", "extraMounts", "network", "cwd", "env",
  "stdout", "stderr", "profile", "limits",
]);

/** One extra mount as a policy-file mount entry (src/policy/filesystem.ts). */
function extraEntry(m: ExtraMount, i: number): MountEntry {
  const subject = `extraMounts.${i}`;
  const options = (m.options ?? "").split(",").map((o) => o.trim()).filter(Boolean);
  const type = m.type ?? (options.includes("bind") ? "bind" : undefined);
  if (type === "proc") return { proc: m.target };
  if (type === "tmpfs") {
    const size = options.find((o) => o.startsWith("size="))?.slice(5);
    return { tmpfs: m.target, ...(size !== undefined ? { size } : {}) };
  }
  if (type === "bind" || type === undefined) {
    if (!m.source) throw new UsageError(subject, "a bind needs a source");
    return { bind: m.source, at: m.target, writable: options.includes("rw") };
  }
  throw new UsageError(`${subject}.type`, `${JSON.stringify(m.type)}: proc, tmpfs or bind`);
}

/** The policy a config describes. */
function policyFor(config: SandboxlibConfig) {
  for (const k of Object.keys(config)) if (!KEYS.has(k)) throw new UsageError(k, "not a sandboxlib setting");
  const root = config.filesystemRoot ?? "/";
  const writable = config.filesystemWritablePaths ?? "none";
  const b = new PolicyBuilder().setOrigin("runSandbox");
  b.asBase((base) => applyProfile(base, config.profile ?? "default", { cwd: config.cwd ?? "/" }));
  if (root !== "/") {
    b.setRoot(root, { writable: writable === "all", ...(config.discardWrites ? { overlay: true } : {}) });
  } else if (writable === "all") {
    throw new UsageError("filesystemWritablePaths", '"all" with the host\'s "/" as the root: bunbox gives no sandbox the host\'s whole filesystem writable; list the paths');
  } else if (config.discardWrites) {
    throw new UsageError("discardWrites", "needs a filesystemRoot to lay the discarded writes over");
  }
  if (Array.isArray(writable)) {
    for (const path of writable) {
      // The path inside the root stays writable: bound from the root's own directory.
      const src = root === "/" ? path : join(root, path);
      b.addPathAt(src, path, { writable: true });
    }
  }
  config.extraMounts?.forEach((m, i) => b.editFilesystem((p) => applyMount(p, extraEntry(m, i), `extraMounts.${i}`)));
  b.setNetwork((config.network ?? "isolated") === "isolated" ? "none" : "host");
  return b.build();
}

/** The fd an output goes to, and the socket end to read when captured. */
function output(ex: Executor, fd: 1 | 2, how: Output, opened: number[]): number | undefined {
  if (how === "capture") return ex.ipc.receiveFd(fd);
  if (how === "inherit") ex.ipc.mapFd(fd, fd);
  else if (how === "devnull") {
    const n = openSync("/dev/null", "w");
    opened.push(n);
    ex.ipc.mapFd(n, fd);
  } else ex.ipc.mapFd(how, fd);
  return undefined;
}

async function drain(fd: number | undefined): Promise<Uint8Array | undefined> {
  if (fd === undefined) return undefined;
  try {
    return new Uint8Array(await new Response(Bun.file(fd).stream()).arrayBuffer());
  } finally {
    closeFd(fd);
  }
}

/** sandboxlib's run_sandbox: runs `command` in the sandbox the config describes. */
export async function runSandbox(command: readonly string[], config: SandboxlibConfig = {}): Promise<SandboxlibResult> {
  if (!Array.isArray(command) || command.length === 0) throw new UsageError("command", "empty");
  const policy = policyFor(config);
  const ex = new Executor(command[0]!, command, {
    env: config.env ? { ...config.env } : { PATH: DEFAULT_PATH },
    cwd: config.cwd ?? "/",
    ...(config.limits ? { limits: config.limits } : {}),
  });
  const opened: number[] = [];
  try {
    const out = output(ex, 1, config.stdout ?? "capture", opened);
    let err: number | undefined;
    if (config.stderr === "stdout") {
      // The same open file as stdout (a captured one's socket end included).
      ex.ipc.mapFd(ex.ipc.fds.find((f) => f.targetFd === 1)!.hostFd, 2);
    } else {
      err = output(ex, 2, config.stderr ?? "capture", opened);
    }
    const [result, stdout, stderr] = await Promise.all([new Sandbox(ex, policy).run(), drain(out), drain(err)]);
    return {
      result,
      exitCode: result.exitCode,
      ...(stdout ? { stdout } : {}),
      ...(stderr ? { stderr } : {}),
      relaxations: policy.relaxations,
    };
  } finally {
    for (const fd of opened) closeSync(fd);
  }
}

export interface Degraded {
  config: SandboxlibConfig;
  /** One per guarantee dropped. */
  warnings: string[];
}

/**
 * sandboxlib's degrade_config_for_capabilities: `config` weakened to what
 * this host can enforce, with a warning per guarantee dropped. Without user
 * namespaces there is no sandbox to weaken: that is an error.
 */
export async function degrade(config: SandboxlibConfig, caps?: Capabilities): Promise<Degraded> {
  const c = caps ?? (await capabilities());
  if (!c.userNamespaces) {
    throw new BunboxError("capabilities", `bunbox cannot make a sandbox on this host: ${c.why.userNamespaces ?? "no user namespaces"}`);
  }
  const out: SandboxlibConfig = { ...config };
  const warnings: string[] = [];
  if (config.discardWrites && !c.overlayInUserNamespace) {
    delete out.discardWrites;
    warnings.push(
      `discardWrites: writes outside the writable paths now fail instead of vanishing with the run (${c.why.overlayInUserNamespace ?? "no overlayfs in user namespaces"}; Linux 5.11+)`,
    );
  }
  if (!c.seccompNotify) {
    warnings.push("violations: reported without the syscall and its arguments (no seccomp user notification, Linux 5.0+); still refused");
  }
  return { config: out, warnings };
}
