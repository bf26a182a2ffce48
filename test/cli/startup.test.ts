/**
 * Start-up: what a plain `bunbox run` loads. citty (--help) and consola
 * (bunbox's messages) are the design's, and loaded only when used: a run
 * that prints nothing loads neither, nor valibot (policy files), the
 * syscall tables (a precompiled profile needs none) or the network proxy
 * (--net proxy). Checked twice: from
 * source, by the modules the process has loaded when it exits
 * (require.cache, listed by a preload), and in the executable's build, by
 * the chunks every start reads (scripts/chunks.ts on the bundler's
 * metafile; scripts/build.ts refuses a build that fails it).
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { builtinsAtStart, lazyOnlyProblems, type Metafile } from "../../scripts/chunks.ts";
import { precompile } from "../../scripts/precompile.ts";

const ROOT = resolve(import.meta.dir, "../..");
const LAZY = ["citty", "consola", "valibot"];
/** What is looked for among the modules loaded: LAZY's packages, and the syscall tables. */
const WATCHED: [string, string][] = [
  ...LAZY.map((p): [string, string] => [p, `/node_modules/${p}/`]),
  ["syscall tables", "/src/policy/syscalls/"],
  ["the proxy", "/src/net/proxy.ts"],
  ["the special ranges", "/src/net/special.ts"],
  ["the filter compiler", "/src/policy/compiler.ts"],
  ["the interpreter", "/src/policy/interpreter.ts"],
  ["comms", "/src/comms/"],
];

/**
 * What (of WATCHED) `bun src/cli/main.ts ARGS` loaded, and its exit code;
 * with the precompiled filters, as the executable runs.
 */
async function loaded(args: string[]): Promise<{ packages: string[]; code: number }> {
  const dir = mkdtempSync(join(tmpdir(), "bunbox-modules-"));
  try {
    const out = join(dir, "modules");
    writeFileSync(join(dir, "precompiled.json"), JSON.stringify(precompile()));
    const proc = Bun.spawn([process.execPath, "--preload", join(ROOT, "test/fixtures/modules-at-exit.ts"), join(ROOT, "src/cli/main.ts"), ...args], {
      cwd: ROOT,
      env: { PATH: "/usr/bin:/bin", MODULES_OUT: out, PRECOMPILED_FILE: join(dir, "precompiled.json") },
      stdio: ["ignore", "ignore", "ignore"],
    });
    const code = await proc.exited;
    const modules = readFileSync(out, "utf8").split("\n");
    expect(modules.some((m) => m.endsWith("src/cli/main.ts"))).toBe(true); // the list is the real one
    return { packages: WATCHED.filter(([, dir]) => modules.some((m) => m.includes(dir))).map(([name]) => name), code };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("what a start loads", () => {
  test("bunbox run -- /bin/true loads neither citty nor consola (nor valibot, a syscall table, the proxy, the filter compiler, the interpreter or comms)", async () => {
    expect(await loaded(["run", "--", "/bin/true"])).toEqual({ packages: [], code: 0 });
  });

  test("each is loaded once it is used: citty for --help, consola for a message, valibot for a policy file, the proxy for --net proxy, the interpreter for a violation, the compiler for rules no profile has", async () => {
    expect(await loaded(["run", "--help"])).toEqual({ packages: ["citty"], code: 0 });
    expect(await loaded(["run", "--", "/nonexistent"])).toEqual({ packages: ["consola"], code: 127 });
    expect(await loaded(["run", "--policy", join(ROOT, "package.json"), "--", "/bin/true"])).toEqual({ packages: ["consola", "valibot"], code: 2 });
    expect(await loaded(["run", "--net", "proxy", "--", "/bin/true"])).toEqual({ packages: ["the proxy"], code: 0 });
    // A violation names its syscall: the tables are read then.
    expect(await loaded(["run", "--profile", "minimal", "--", "/bin/true"])).toEqual({ packages: ["consola", "syscall tables", "the interpreter"], code: 159 });
    // Rules that change (connect() sent to the monitor) need the compiler, and its verifier, at the run.
    expect((await loaded(["run", "--net", "proxy-transparent", "--", "/bin/true"])).packages).toContain("the filter compiler");
  });

  test("the executable: citty, consola and valibot are in chunks no start of bunbox run reads before it uses them", () => {
    const meta = JSON.parse(readFileSync(join(ROOT, "build/bunbox.meta.json"), "utf8")) as Metafile;
    const entries = ["src/cli/main.ts", "src/cli/run.ts"];
    expect(lazyOnlyProblems(meta, entries, LAZY)).toEqual([]);
    // The check can fail: the same build, with the run command importing valibot's chunk statically.
    const run = Object.keys(meta.outputs).find((k) => meta.outputs[k]!.entryPoint === "src/cli/run.ts")!;
    const valibot = Object.keys(meta.outputs).find((k) => Object.keys(meta.outputs[k]!.inputs ?? {}).some((i) => i.includes("node_modules/valibot/")))!;
    const eager = structuredClone(meta);
    eager.outputs[run]!.imports = [...(eager.outputs[run]!.imports ?? []), { path: valibot, kind: "import-statement" }];
    expect(lazyOnlyProblems(eager, entries, LAZY)).toEqual([`valibot is in ${valibot}, which every start of src/cli/run.ts reads`]);
  });

  test("the executable: a start of bunbox run evaluates bun:ffi, and no other module of the runtime: not node:fs (src/native/fs.ts), nor node:url (read where a name is IDNA-converted; paths are src/posix-path.ts)", () => {
    const meta = JSON.parse(readFileSync(join(ROOT, "build/bunbox.meta.json"), "utf8")) as Metafile;
    expect(builtinsAtStart(meta, ["src/cli/main.ts", "src/cli/run.ts"])).toEqual(["bun:ffi"]);
    // --version and --help: bun:ffi alone (their messages are written through src/native/fs.ts).
    expect(builtinsAtStart(meta, ["src/cli/main.ts"])).toEqual(["bun:ffi"]);
    // The check can fail: the same build with the run's module importing node:fs again.
    const eager = structuredClone(meta);
    const run = eager.inputs!["src/cli/run.ts"]!;
    run.imports = [...(run.imports ?? []), { path: "fs", kind: "import-statement", external: true }];
    expect(builtinsAtStart(eager, ["src/cli/main.ts", "src/cli/run.ts"])).toEqual(["bun:ffi", "fs"]);
  });
});

/** The relative modules `file` imports statically, transitively (type-only imports excluded). */
function staticClosure(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const t = new Bun.Transpiler({ loader: "ts" });
  for (const i of t.scanImports(readFileSync(file, "utf8").replace(/^#!.*/, ""))) {
    if (i.kind !== "import-statement" || !i.path.startsWith(".")) continue;
    const p = resolve(join(file, ".."), i.path);
    if (p.endsWith(".ts")) staticClosure(p, seen);
    else seen.add(p);
  }
  return seen;
}

describe("bun run build on a fresh checkout", () => {
  // src/native/library.ts imports build/libbunbox.so as a file: a module the
  // build script imports statically is loaded before the script's first line
  // builds that file, so on a checkout with no build/ `bun run build` failed
  // with "Cannot find module '../../build/libbunbox.so'".
  test("scripts/build.ts imports nothing statically that needs build/libbunbox.so", () => {
    const closure = staticClosure(join(ROOT, "scripts/build.ts"));
    expect([...closure].filter((p) => p.endsWith("libbunbox.so") || p.endsWith("src/native/library.ts"))).toEqual([]);
    // The check can fail: the script that loads the shim does reach it.
    expect(staticClosure(join(ROOT, "scripts/precompile.ts")).has(join(ROOT, "src/native/library.ts"))).toBe(true);
  });
});
