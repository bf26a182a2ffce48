/**
 * Shared by the examples: builds an example's C program, linked with bunbox's
 * C client library (csrc/client/*.c), where a sandboxee can read it, and
 * stages data files the same way.
 *
 * Why not build beside the source: when root starts a sandbox, the sandboxee
 * runs as uid 65534, and a checkout often sits under a 0700 home directory.
 * The binary goes to $TMPDIR/bunbox-examples-UID/ (0755, the binary 0755),
 * named by a hash of its sources and flags, so a second run skips gcc. That
 * directory has a predictable name, so it is used only if it is a real
 * directory owned by us that nobody else can write to (otherwise another user
 * could have planted a binary there); if not, a fresh private-named one is
 * made for this run and removed at exit.
 */
import { createHash } from "node:crypto";
import {
  chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");
const CLIENT = join(ROOT, "csrc", "client");
const CLIENT_SOURCES = ["bunbox_client.c", "bunbox_sandbox.c"].map((f) => join(CLIENT, f));

export interface CProgram {
  /** A name for the binary (the hash is appended). */
  name: string;
  /** The example's own C files. */
  sources: string[];
  /** Link statically: the program then needs no ld.so, /lib or open() to start. */
  static?: boolean;
}

/** A thrown Error with this class means "the example could not even start"; main.ts prints it and exits 1. */
export class ExampleError extends Error {}

let fresh: string | undefined;

/** A directory for this run only, world-readable, removed when the process exits. */
function runDir(): string {
  if (!fresh) {
    const dir = mkdtempSync(join(tmpdir(), "bunbox-example-"));
    chmodSync(dir, 0o755);
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    fresh = dir;
  }
  return fresh;
}

/** The per-user cache, if it is safe to use; else this run's own directory. */
function cacheDir(): string {
  const uid = process.getuid!();
  const dir = join(tmpdir(), `bunbox-examples-${uid}`);
  try {
    mkdirSync(dir, { mode: 0o755 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") return runDir();
  }
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0) return runDir();
  // Our umask may have made it 0700; the sandboxee (uid 65534 under root) must traverse it.
  if ((st.mode & 0o755) !== 0o755) chmodSync(dir, 0o755);
  return dir;
}

/** The path of the built binary (built now unless an identical build is cached). */
export function compileC(program: CProgram): string {
  const cc = process.env.CC ?? "gcc";
  const sources = [...program.sources, ...CLIENT_SOURCES];
  const flags = ["-O2", "-Wall", "-Wextra", `-I${CLIENT}`, ...(program.static ? ["-static"] : [])];
  const hash = createHash("sha256").update(`${cc} ${flags.join(" ")}\n`);
  for (const f of [...sources, join(CLIENT, "bunbox_client.h")]) hash.update(`${f}\n`).update(readFileSync(f));
  const dir = cacheDir();
  const out = join(dir, `${program.name}-${hash.digest("hex").slice(0, 16)}`);
  if (existsSync(out)) return out;
  // Build under a temporary name and rename: a concurrent run never sees half a binary.
  const tmp = `${out}.${process.pid}.tmp`;
  const p = Bun.spawnSync([cc, ...flags, "-o", tmp, ...sources], { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) {
    rmSync(tmp, { force: true });
    const hint = program.static ? " (a static build needs libc.a: apt-get install libc6-dev)" : "";
    throw new ExampleError(`${cc} failed to build ${program.name}${hint}:\n${p.stderr.toString()}`);
  }
  chmodSync(tmp, 0o755);
  renameSync(tmp, out);
  return out;
}

/**
 * A world-readable copy of a data file in this run's directory, for mounting
 * into a sandbox (the original may be unreadable to uid 65534).
 */
export function stageFile(path: string): string {
  const copy = join(runDir(), basename(path));
  copyFileSync(path, copy);
  chmodSync(copy, 0o644);
  return copy;
}

/** Runs an example's main(): an ExampleError is printed alone, anything else with its stack. */
export function runMain(name: string, main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      const text = e instanceof ExampleError ? e.message : ((e as Error)?.stack ?? String(e));
      process.stderr.write(`${name}: ${text}\n`);
      process.exit(1);
    },
  );
}
