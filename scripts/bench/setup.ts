/**
 * What the benchmark needs before it measures anything: bwrap and gcc on the
 * PATH, an up-to-date dist/bunbox, and a scratch directory holding the C
 * programs it runs inside sandboxes. The directory is world-readable because
 * a sandboxee started by root runs as uid 65534 and must reach them.
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");
export const BUNBOX = join(ROOT, "dist", "bunbox");

/** A failure the user can fix; the entry point prints the message alone and exits 1. */
export class BenchError extends Error {}

/** The tool's path, or a BenchError saying how to install it. */
export function requireTool(name: string, install: string): string {
  const path = Bun.which(name);
  if (!path) throw new BenchError(`${name} is not installed; the benchmark needs it (${install})`);
  return path;
}

/** First line of `argv`'s stdout ("bubblewrap 0.8.0"). */
export function versionOf(argv: string[]): string {
  const p = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  return p.stdout.toString().split("\n")[0]!.trim() || "unknown";
}

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Builds dist/bunbox when it is missing or older than src/ or csrc/: a stale binary would measure old code. */
export function ensureBunbox(log: (s: string) => void): void {
  const sources = Math.max(newest(join(ROOT, "src")), newest(join(ROOT, "csrc")));
  if (existsSync(BUNBOX) && statSync(BUNBOX).mtimeMs >= sources) return;
  log("building dist/bunbox (missing or older than src/)");
  run([process.execPath, join(ROOT, "scripts", "build.ts")], "bun scripts/build.ts");
}

function run(argv: string[], what: string): void {
  const p = Bun.spawnSync(argv, { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new BenchError(`${what} failed:\n${p.stdout.toString()}${p.stderr.toString()}`);
}

export interface Workdir {
  dir: string;
  /** The C probe of the tests (test/fixtures/probe.c), -O2. */
  probe: string;
  /** scripts/bench/syscall-loop.c, -O2. */
  syscallLoop: string;
  /** A one-line Bun program compiled like bunbox: the start-up floor of any Bun executable. */
  hello: string;
  remove(): void;
}

export function makeWorkdir(): Workdir {
  const dir = mkdtempSync(join(tmpdir(), "bunbox-bench-"));
  chmodSync(dir, 0o755);
  const probe = join(dir, "probe");
  const syscallLoop = join(dir, "syscall-loop");
  const hello = join(dir, "hello");
  const cc = process.env.CC ?? "gcc";
  run([cc, "-O2", "-o", probe, join(ROOT, "test", "fixtures", "probe.c"), "-lpthread"], `${cc} probe.c`);
  run([cc, "-O2", "-Wall", "-o", syscallLoop, join(import.meta.dir, "syscall-loop.c")], `${cc} syscall-loop.c`);
  const helloSrc = join(dir, "hello.ts");
  // Does nothing, not even touch process.stdout: creating that stream costs a
  // compiled Bun ~20 ms, which bunbox avoids too (it writes with fs calls).
  writeFileSync(helloSrc, "void 0;\n");
  // The flags of scripts/build.ts that change start-up time.
  run(
    [process.execPath, "build", "--compile", "--minify", "--bytecode", "--no-compile-autoload-dotenv",
      "--no-compile-autoload-bunfig", helloSrc, "--outfile", hello],
    "bun build --compile (hello)",
  );
  return { dir, probe, syscallLoop, hello, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
