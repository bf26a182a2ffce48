#!/usr/bin/env bun
/**
 * `bun run build`: the shim, then dist/bunbox, one self-contained executable
 * (the shim and init are embedded), and its man page dist/bunbox.1. A compiled bunbox must not read a .env or
 * bunfig.toml from whatever directory it is started in: a sandbox's own
 * configuration cannot come from the directory of the code it sandboxes.
 *
 * Built for start-up (README.md, "Start-up"): bytecode; ES modules split
 * into chunks, so that a start reads only the chunks its command needs
 * (--help's citty, the messages' consola, policy files' valibot, the
 * completions are each read when used, and checked to be: scripts/chunks.ts,
 * from the bundler's metafile, build/bunbox.meta.json, which also says which
 * of the runtime's modules a start evaluates: START_BUILTINS); and JavaScriptCore's
 * JIT held back (JIT_POLICY) while the run is set up, code that runs once,
 * until the sandboxee runs (src/cli/run.ts).
 * Usage: bun scripts/build.ts [--target=bun-linux-arm64]
 * (--target cross-compiles, without the man page, which the built executable
 * writes; build/libbunbox.so must then be of that target's arch:
 * scripts/vm/build.ts stages such a tree for the VM test rig)
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildShim } from "./build-shim.ts";
import { builtinsAtStart, lazyOnlyProblems } from "./chunks.ts";

/**
 * JavaScriptCore's tier-up thresholds, multiplied (--compile-jit-policy):
 * the set-up of a run is code that runs once, and compiling it on the JIT
 * threads cost ~4 ms of CPU per `bunbox run -- /bin/true` here.
 */
const JIT_POLICY = 100;
/** Loaded only when used: a build in which a start of START_ENTRIES reads them fails. */
const LAZY_PACKAGES = ["citty", "consola", "valibot"];
/**
 * The runtime's modules every start of START_ENTRIES may evaluate: a build
 * in which one imports another (node:fs, node:url, node:os, …) statically
 * fails. A run's files are read through src/native/fs.ts: evaluating
 * node:fs cost every start ~1.2 ms of CPU (README.md, "Start-up").
 */
const START_BUILTINS = ["bun:ffi"];
/** The executable's entry point, and the module `bunbox run` imports. */
const START_ENTRIES = ["src/cli/main.ts", "src/cli/run.ts"];

const root = resolve(import.meta.dir, "..");
const out = join(root, "dist", "bunbox");
const metafile = join(root, "build", "bunbox.meta.json");

buildShim();
// precompile.ts reaches src/native/library.ts, which imports build/libbunbox.so as
// a file: imported statically, a fresh checkout (no build/ yet) fails before
// buildShim() above has written it.
const { precompile } = await import("./precompile.ts");
mkdirSync(join(root, "dist"), { recursive: true });
const target = process.argv.find((a) => a.startsWith("--target="));
/** The arch the executable runs on: its precompiled filters are for that arch only. */
const targetArch = target?.includes("arm64") ? "aarch64" : target?.includes("x64") ? "x86_64" : undefined;
const args = [
  "build",
  "--compile",
  ...(target ? [target] : []),
  "--minify",
  "--sourcemap=none",
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
  "--no-compile-autoload-tsconfig",
  "--no-compile-autoload-package-json",
  "--bytecode",
  "--format=esm",
  "--splitting",
  `--compile-jit-policy=${JIT_POLICY}`,
  `--metafile=${metafile}`,
  `--define=BUNBOX_PRECOMPILED=${JSON.stringify(precompile(targetArch && [targetArch]))}`,
  join(root, "src/cli/main.ts"),
  "--outfile",
  out,
];
const proc = Bun.spawnSync([process.execPath, ...args], { cwd: root, stdout: "pipe", stderr: "pipe" });
if (proc.exitCode !== 0) {
  process.stderr.write(proc.stdout.toString() + proc.stderr.toString());
  console.error("bunbox: bun build --compile failed");
  process.exit(1);
}
const meta = JSON.parse(readFileSync(metafile, "utf8"));
const eager = [
  ...lazyOnlyProblems(meta, START_ENTRIES, LAZY_PACKAGES),
  ...builtinsAtStart(meta, START_ENTRIES).filter((b) => !START_BUILTINS.includes(b)).map((b) => `the runtime's ${b} module is imported statically`),
];
if (eager.length > 0) {
  console.error(`bunbox: every start would load what only some need:\n  ${eager.join("\n  ")}`);
  process.exit(1);
}
if (target) {
  console.log(`built ${out.replace(root + "/", "")} (${target.slice("--target=".length)})`);
  process.exit(0);
}
// The man page, from the same option table as --help (src/cli/complete.ts).
const man = Bun.spawnSync([out, "man"], { stdout: "pipe", stderr: "inherit" });
if (man.exitCode !== 0) {
  console.error("bunbox: dist/bunbox man failed");
  process.exit(1);
}
writeFileSync(join(root, "dist", "bunbox.1"), man.stdout);
console.log(`built ${out.replace(root + "/", "")} and dist/bunbox.1`);
