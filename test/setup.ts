/**
 * Preloaded once by `bun test` (bunfig.toml): builds the shim, the executable
 * and the C fixtures, and puts the executable and fixtures in a fresh
 * world-readable directory, so that runs as user nobody can reach them
 * (a checkout under /root is not). As root it also copies there what the
 * examples need to run as nobody (test/helpers.ts TREE).
 */
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll } from "bun:test";
import { buildShim } from "../scripts/build-shim.ts";

const root = resolve(import.meta.dir, "..");

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

function run(cmd: string[], what: string): void {
  const p = Bun.spawnSync(cmd, { cwd: root, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) {
    throw new Error(`test setup: ${what} failed:\n${p.stdout.toString()}${p.stderr.toString()}`);
  }
}

buildShim();
const dist = join(root, "dist", "bunbox");
const sources = Math.max(newest(join(root, "src")), newest(join(root, "csrc")), statSync(join(root, "build", "libbunbox.so")).mtimeMs);
if (!existsSync(dist) || statSync(dist).mtimeMs < sources) run([process.execPath, "scripts/build.ts"], "bun run build");

const dir = mkdtempSync(join(tmpdir(), "bunbox-test-"));
chmodSync(dir, 0o755);
copyFileSync(dist, join(dir, "bunbox"));
chmodSync(join(dir, "bunbox"), 0o755);
const fixtures = join(root, "test", "fixtures");
// Each fixture is built dynamic and static, unless its first line says
// "// build: FLAGS" (then once, with those flags).
for (const f of readdirSync(fixtures).filter((f) => f.endsWith(".c"))) {
  const name = f.slice(0, -2);
  const src = join(fixtures, f);
  const flags = /^\/\/ build: (.*)$/m.exec(readFileSync(src, "utf8").split("\n")[0]!)?.[1];
  if (flags) {
    run(["gcc", ...flags.split(" "), "-o", join(dir, name), src], `gcc ${f}`);
    continue;
  }
  run(["gcc", "-O1", "-o", join(dir, name), src, "-lpthread"], `gcc ${f}`);
  run(["gcc", "-O1", "-static", "-o", join(dir, `${name}-static`), src, "-lpthread"], `gcc -static ${f}`);
}
/** Makes a copied tree readable by everyone (a checkout made under umask 077 is not). */
function openUp(path: string): void {
  const st = statSync(path);
  chmodSync(path, st.mode | (st.isDirectory() || st.mode & 0o100 ? 0o555 : 0o444));
  if (st.isDirectory()) for (const e of readdirSync(path)) openUp(join(path, e));
}

// The examples import ../../src and build csrc/client; src needs the shim
// and its runtime dependencies.
if (process.geteuid?.() === 0) {
  const tree = join(dir, "tree");
  for (const part of ["examples", "src", "csrc/client", "build/libbunbox.so", "package.json"]) {
    cpSync(join(root, part), join(tree, part), { recursive: true });
  }
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { dependencies: Record<string, string> };
  for (const dep of Object.keys(pkg.dependencies)) {
    cpSync(join(root, "node_modules", dep), join(tree, "node_modules", dep), { recursive: true, dereference: true });
  }
  openUp(tree);
}
mkdirSync(join(dir, "work"), { mode: 0o777 });
chmodSync(join(dir, "work"), 0o777);
process.env.BUNBOX_TEST_DIR = dir;
// Leave nothing behind in /tmp (work/ holds files sandboxees wrote): a
// global hook, registered from the preload, runs after every test file.
afterAll(() => rmSync(dir, { recursive: true, force: true }));
