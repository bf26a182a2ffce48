/**
 * What the guest runs, built for one architecture from this checkout: the
 * bunbox executable (its shim and init cross-compiled by the project's own
 * scripts/build-shim.ts and embedded by scripts/build.ts), the shim on its
 * own (for the library cases' bundle), the test fixtures, static, and the
 * bundle of scripts/vm/guest/library.ts.
 *
 * Why a staged copy of the tree: scripts/build.ts embeds build/libbunbox.so
 * by a fixed relative import, and the checkout's build/ holds the host's
 * shim, which `bun run test` rebuilds at any time. A copy of src/, csrc/ and
 * the two build scripts, with its own build/, gives an arm64 bunbox without
 * touching the checkout, and the same code path builds the x86_64 one.
 * A stamp (a hash of every input) skips the work when nothing changed.
 */
import { createHash } from "node:crypto";
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ArchInfo, CACHE, ROOT } from "./config.ts";
import { run } from "./host.ts";

export interface Artifacts {
  arch: ArchInfo;
  /** The bunbox executable. */
  bunbox: string;
  /** The shim (libbunbox.so) for the bundle's BUNBOX_SHIM. */
  shim: string;
  /** Directory of built fixtures: NAME (static, or as its "// build:" line says) and probe-dynamic. */
  fixtures: string;
  /** The library cases, bundled (arch-independent JS). */
  library: string;
}

/** Inputs copied into the staged tree, relative to the checkout. */
const TREE = [
  "src", "csrc", "package.json", "tsconfig.json", "scripts/vm/guest",
  ...["build.ts", "build-shim.ts", "check-child.ts", "gen-abi.ts", "chunks.ts", "precompile.ts"].map((f) => `scripts/${f}`),
];
/** Inputs that decide the stamp beyond TREE. */
const EXTRA_INPUTS = ["bun.lock", "test/fixtures", "scripts/vm/fixtures", "scripts/vm/build.ts"];

function hashInputs(arch: ArchInfo): string {
  const h = createHash("sha256").update(`${arch.name} ${Bun.version}\n`);
  const walk = (p: string) => {
    const full = join(ROOT, p);
    if (!existsSync(full)) return;
    if (statSync(full).isDirectory()) {
      for (const e of readdirSync(full).sort()) walk(join(p, e));
    } else {
      h.update(`${p}\n`).update(readFileSync(full));
    }
  };
  for (const p of [...TREE, ...EXTRA_INPUTS]) walk(p);
  return h.digest("hex");
}

function stageTree(tree: string): void {
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  for (const p of TREE) cpSync(join(ROOT, p), join(tree, p), { recursive: true });
  symlinkSync(join(ROOT, "node_modules"), join(tree, "node_modules"));
}

/**
 * Each C fixture of test/fixtures/ and scripts/vm/fixtures/, static unless
 * its first line says "// build: FLAGS" (as test/setup.ts reads it); probe
 * also dynamic, for the guest's glibc.
 */
function buildFixtures(arch: ArchInfo, out: string): void {
  mkdirSync(out, { recursive: true });
  for (const dir of [join(ROOT, "test", "fixtures"), join(ROOT, "scripts", "vm", "fixtures")]) {
    for (const f of readdirSync(dir).filter((f) => f.endsWith(".c"))) {
      const src = join(dir, f);
      const flags = /^\/\/ build: (.*)$/.exec(readFileSync(src, "utf8").split("\n")[0]!)?.[1];
      const args = flags ? flags.split(" ") : ["-O1", "-static"];
      run([arch.cc, ...args, "-o", join(out, f.slice(0, -2)), src, ...(flags ? [] : ["-lpthread"])], `${arch.cc} ${f}`);
    }
  }
  const probe = join(ROOT, "test", "fixtures", "probe.c");
  run([arch.cc, "-O1", "-o", join(out, "probe-dynamic"), probe, "-lpthread"], `${arch.cc} probe.c (dynamic)`);
  // A 32-bit program for the foreign-architecture case (i386 comes from probe's int 0x80 mode).
  if (arch.compat32) {
    const obj = join(out, `${arch.compat32.name}.o`);
    run([arch.compat32.as, "-o", obj, join(ROOT, "scripts", "vm", "fixtures", arch.compat32.source)], arch.compat32.as);
    run([arch.compat32.ld, "-static", "-o", join(out, arch.compat32.name), obj], arch.compat32.ld);
    rmSync(obj);
  }
  for (const f of readdirSync(out)) chmodSync(join(out, f), 0o755);
}

export function build(arch: ArchInfo): Artifacts {
  const base = join(CACHE, "build", arch.name);
  const tree = join(base, "tree");
  const art: Artifacts = {
    arch,
    bunbox: join(tree, "dist", "bunbox"),
    shim: join(tree, "build", "libbunbox.so"),
    fixtures: join(base, "fixtures"),
    library: join(base, "library", "library.js"),
  };
  const stamp = join(base, "stamp");
  const hash = hashInputs(arch);
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === hash && Object.values(art).slice(1).every((p) => existsSync(p as string))) {
    return art;
  }
  rmSync(stamp, { force: true });
  stageTree(tree);
  const env = { ...process.env, CC: arch.cc };
  run([process.execPath, join(tree, "scripts", "build-shim.ts"), "--force"], `the ${arch.name} shim`, { env });
  run([process.execPath, join(tree, "scripts", "build.ts"), `--target=${arch.bunTarget}`], `the ${arch.name} bunbox`, { env });
  rmSync(join(base, "library"), { recursive: true, force: true });
  run(
    [process.execPath, "build", join(tree, "scripts", "vm", "guest", "library.ts"), "--target=bun", "--outdir", join(base, "library")],
    "the library cases' bundle",
  );
  rmSync(art.fixtures, { recursive: true, force: true });
  buildFixtures(arch, art.fixtures);
  writeFileSync(stamp, hash);
  return art;
}
