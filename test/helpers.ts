/**
 * Shared by the tests: where the executable and fixtures are (test/setup.ts),
 * skips that say why, the two monitor modes the core cases run under, and
 * runners for `bunbox run` (as root and as user nobody) and for the library.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createReadStream } from "node:fs";
import { ARCHES } from "../src/policy/arch.ts";
import { PolicyBuilder } from "../src/policy/builder.ts";
import { applyProfile } from "../src/policy/profiles.ts";
import type { Policy } from "../src/policy/policy.ts";
import { Executor, type ExecutorOptions } from "../src/sandbox/executor.ts";
import { Sandbox, type SandboxHooks } from "../src/sandbox/sandbox.ts";
import type { Result } from "../src/sandbox/result.ts";
import { _setDefaultRuntime, Runtime } from "../src/sandbox/runtime.ts";

export const DIR = process.env.BUNBOX_TEST_DIR!;
export const BUNBOX = `${DIR}/bunbox`;
/** Where the fixtures appear inside a sandbox (mounted by the helpers). */
export const FX = "/fx";
export const PROBE = `${FX}/probe`;
export const PROBE_STATIC = `${FX}/probe-static`;
export const IS_ROOT = process.geteuid?.() === 0;
export const HOST_ARCH = process.arch === "arm64" ? ARCHES.aarch64 : ARCHES.x86_64;
/** As root: a world-readable copy of examples/, src/ and what they need (test/setup.ts), for runs as user nobody. */
export const TREE = `${DIR}/tree`;

/** Why a test cannot run here; undefined when it can. */
export type SkipReason = string | undefined;

export const NEEDS_ROOT: SkipReason = IS_ROOT ? undefined : "needs root (runs bunbox as root, or as user nobody through setpriv)";

/**
 * `test`, or, when there is a reason, a skipped test that says why: bun
 * prints only "(skip) NAME"; this logs "SKIP NAME: REASON" too, as
 * bubblewrap's TAP "# SKIP" does (.ci/run repeats those lines).
 */
export function testUnless(reason: SkipReason): typeof test {
  if (reason === undefined) return test;
  const skip = (name: string, ...rest: unknown[]) => {
    console.log(`SKIP ${name}: ${reason}`);
    return (test.skip as (...args: unknown[]) => void)(name, ...rest);
  };
  return skip as unknown as typeof test;
}

/** `describe`, or, when there is a reason, a skipped one that says why (see testUnless). */
export function describeUnless(reason: SkipReason): typeof describe {
  if (reason === undefined) return describe;
  const skip = (name: string, ...rest: unknown[]) => {
    console.log(`SKIP ${name}: ${reason}`);
    return (describe.skip as (...args: unknown[]) => void)(name, ...rest);
  };
  return skip as unknown as typeof describe;
}

/**
 * The two ways a violation reaches bunbox, and the core cases run under
 * both, as Sandbox2 runs its tests under both monitors: seccomp user
 * notification (the default), and the fallback for kernels without it, which
 * BUNBOX_NOTIFY=off forces: the filter kills the process (SIGSYS) and the
 * Result says which details are missing, and why.
 */
export const MODES = [
  { name: "user notification", notify: true },
  { name: "kill-process fallback", notify: false },
] as const;
export type Mode = (typeof MODES)[number];

/**
 * `describe(name, body)` once per mode ("name [mode]"); in the fallback's
 * block BUNBOX_NOTIFY=off is set for the library runs in this process and
 * passed to the bunbox runs (bunbox()). With a reason, both are skipped
 * and say why (describeUnless).
 */
export function describeModes(name: string, body: (mode: Mode) => void, skip?: SkipReason): void {
  for (const mode of MODES) {
    describeUnless(skip)(`${name} [${mode.name}]`, () => {
      const saved = process.env.BUNBOX_NOTIFY;
      beforeAll(() => {
        if (mode.notify) delete process.env.BUNBOX_NOTIFY;
        else process.env.BUNBOX_NOTIFY = "off";
        // The default runtime read BUNBOX_NOTIFY once: this block's library runs get one of their own.
        _setDefaultRuntime(new Runtime({ notifyFallback: !mode.notify }));
      });
      afterAll(() => {
        if (saved === undefined) delete process.env.BUNBOX_NOTIFY;
        else process.env.BUNBOX_NOTIFY = saved;
        _setDefaultRuntime(undefined);
      });
      body(mode);
    });
  }
}

/** A violation as a Result or its JSON (args as numbers or hex strings). */
interface ViolationLike {
  status: string;
  signal?: number;
  violation?: { kind: string; syscall: string; detailMissing?: string };
}

/**
 * A VIOLATION of `syscall` as `mode` can report it: with user notification,
 * the syscall and kind (the caller checks the rest of the details); with the
 * fallback, death by SIGSYS and a Result that says the details are missing
 * and why. Returns whether the details are there to check.
 */
export function expectViolation(mode: Mode, res: ViolationLike, syscall: string, kind = "SYSCALL"): boolean {
  expect(res.status).toBe("VIOLATION");
  const v = res.violation!;
  if (mode.notify) {
    expect(v.kind).toBe(kind);
    expect(v.syscall).toBe(syscall);
    expect(v.detailMissing).toBeUndefined();
    return true;
  }
  expect(res.signal).toBe(31);
  expect(v.syscall).toBe("unknown syscall");
  expect(v.detailMissing).toBe(
    "killed by SIGSYS; which syscall is unknown because seccomp user notification is not in use (unavailable on this kernel, or turned off)",
  );
  return false;
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Run bunbox as user nobody (through setpriv). */
  nobody?: boolean;
  stdin?: string | Uint8Array;
  env?: Record<string, string>;
  /** Extra fds for bunbox itself (index 3…). */
  extraFds?: number[];
  /** Do not mount the fixtures at /fx. */
  bare?: boolean;
  /** bunbox's own working directory (default /). */
  cwd?: string;
}

/** `bunbox ARGS` (the fixtures mounted at /fx unless bare). */
export async function bunbox(args: string[], opts: CliOptions = {}): Promise<Run> {
  const sep = args.indexOf("--");
  const full = opts.bare || sep < 0 ? args : [...args.slice(0, sep), "--ro", `${DIR}:${FX}`, ...args.slice(sep)];
  const cmd = opts.nobody ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", BUNBOX, ...full] : [BUNBOX, ...full];
  const stdin = opts.stdin === undefined ? "ignore" : new Blob([opts.stdin]);
  const proc = Bun.spawn(cmd, {
    cwd: opts.cwd ?? "/",
    // BUNBOX_NOTIFY passes on: describeModes() sets it.
    env: { PATH: "/usr/bin:/bin", ...(process.env.BUNBOX_NOTIFY ? { BUNBOX_NOTIFY: process.env.BUNBOX_NOTIFY } : {}), ...opts.env },
    stdio: [stdin, "pipe", "pipe", ...(opts.extraFds ?? [])],
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

/** `bunbox run [OPTS] -- /fx/probe MODE ARGS…` */
export function probe(mode: string[], runOpts: string[] = [], opts: CliOptions = {}): Promise<Run> {
  return bunbox(["run", ...runOpts, "--", PROBE, ...mode], opts);
}

/**
 * A profile's policy with the fixtures mounted read-only at /fx; `edit`'s
 * rules come first, the profile is the base beneath them.
 */
export function testPolicy(profile = "default", edit?: (b: PolicyBuilder) => void): Policy {
  const b = new PolicyBuilder();
  edit?.(b);
  b.asBase((base) => applyProfile(base, profile, { cwd: `${DIR}/work` }));
  const p = b.build();
  const plan = p.mountPlan();
  plan.add({ kind: "bind", src: DIR, dst: FX, rw: false });
  return p.derive({ mounts: plan });
}

export interface ProbeOptions {
  policy?: Policy;
  executor?: ExecutorOptions;
  hooks?: SandboxHooks;
  static?: boolean;
}

function probeSandbox(mode: string[], opts: ProbeOptions): Sandbox {
  const path = opts.static ? PROBE_STATIC : PROBE;
  const ex = new Executor(path, [path, ...mode], opts.executor);
  return new Sandbox(ex, opts.policy ?? testPolicy(), opts.hooks);
}

/** In-process run of the probe through the library. */
export function runProbe(mode: string[], opts: ProbeOptions = {}): Promise<Result> {
  return probeSandbox(mode, opts).run();
}

/** runProbe, with what the probe wrote to its stdout (read while it runs). */
export async function runProbeOutput(mode: string[], opts: ProbeOptions = {}): Promise<{ result: Result; stdout: string }> {
  const s = probeSandbox(mode, opts);
  const out = s.executor.ipc.receiveFd(1);
  const [result, stdout] = await Promise.all([s.run(), readToEnd(out)]);
  return { result, stdout };
}

/** Reads a socket or pipe to EOF without blocking the event loop, and closes it. */
export async function readToEnd(fd: number): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of createReadStream("", { fd })) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

/**
 * Waits until `done()` holds, checking every 20 ms; fails naming `what` if it
 * still does not after `limitMs`. For states the kernel reaches a moment
 * after the event the test waited for (a reaped child, a killed namespace):
 * the limit is there only so that a broken property fails instead of hanging.
 */
export async function eventually(what: string, done: () => boolean, limitMs = 10_000): Promise<void> {
  const t0 = performance.now();
  while (!done()) {
    if (performance.now() - t0 > limitMs) throw new Error(`${what}: still not so after ${limitMs / 1000} s`);
    await Bun.sleep(20);
  }
}

/** Reads `stream` until `text` has come (the rest stays unread); fails if it ends first. */
export async function readUntil(stream: ReadableStream<Uint8Array>, text: string): Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let got = "";
  try {
    while (!got.includes(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended before ${JSON.stringify(text)}; it said ${JSON.stringify(got)}`);
      got += decoder.decode(value, { stream: true });
    }
  } finally {
    reader.releaseLock();
  }
  return got;
}

/** Pids of host processes whose comm or cmdline contains `needle` (no pgrep needed). */
export function processesMatching(needle: string): number[] {
  const { readdirSync, readFileSync } = require("node:fs") as typeof import("node:fs");
  const found: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const comm = readFileSync(`/proc/${e}/comm`, "utf8").trim();
      const cmd = readFileSync(`/proc/${e}/cmdline`, "utf8").replaceAll("\0", " ");
      if (comm === needle || cmd.includes(needle)) found.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** The last JSON line bunbox printed on stderr (--json's Result). */
export const json = (stderr: string) => JSON.parse(stderr.trim().split("\n").filter((l) => l.startsWith("{")).pop()!);
