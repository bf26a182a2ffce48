/**
 * A staged root for the tests of --root, overlays and builds: Debian's
 * busybox-static with every applet linked in bin/, an etc/ with a marker,
 * usr/ as the mount point for the host's /usr (a C build binds it: gcc,
 * make, binutils and libc6-dev from the host) and lib, lib64 linking into
 * it, srv/ writable by anyone (run as nobody, the sandboxee is uid 65534). No
 * proc, dev or tmp: bunbox makes their mount points on overlay points.
 *
 * Built once per test run in the suite's directory (removed at the end),
 * copies made by `stageCopy` for tests that change or subvert it.
 */
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DIR, IS_ROOT } from "../helpers.ts";

const BUSYBOX = ["/bin/busybox", "/usr/bin/busybox"].find((p) => existsSync(p));

/** Why the staged-root tests cannot run here, if they cannot. */
export const NO_STAGE = BUSYBOX ? undefined : "busybox is not installed (apt-get install busybox-static)";

function chmodTree(dir: string): void {
  chmodSync(dir, 0o755);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) chmodTree(join(dir, e.name));
  }
}

function build(at: string): void {
  for (const d of ["bin", "etc", "usr", "srv"]) mkdirSync(join(at, d), { recursive: true });
  cpSync(BUSYBOX!, join(at, "bin", "busybox"));
  chmodSync(join(at, "bin", "busybox"), 0o755);
  const list = Bun.spawnSync([BUSYBOX!, "--list"]).stdout.toString().split("\n").filter(Boolean);
  for (const applet of list) if (applet !== "busybox") symlinkSync("busybox", join(at, "bin", applet));
  symlinkSync("usr/lib", join(at, "lib"));
  symlinkSync("usr/lib64", join(at, "lib64"));
  writeFileSync(join(at, "etc", "stage-marker"), "staged root\n");
  chmodTree(at);
  chmodSync(join(at, "srv"), 0o777);
}

/** The shared staged root (read-only use). */
export function stage(): string {
  const at = join(DIR, "stage");
  if (!existsSync(join(at, "etc", "stage-marker"))) build(at);
  return at;
}

/** A private copy of the staged root, world-readable, to change or subvert; owned by `owner` if given (as root). */
export function stageCopy(owner?: number): string {
  const base = mkdtempSync(join(DIR, "stage-"));
  chmodSync(base, 0o755);
  const at = join(base, "root");
  cpSync(stage(), at, { recursive: true, verbatimSymlinks: true });
  if (owner !== undefined && IS_ROOT) Bun.spawnSync(["chown", "-hR", `${owner}:${owner}`, at]);
  return at;
}

/** A fresh directory anyone may write (run as nobody, the sandboxee is uid 65534). */
export function scratchDir(name = "d"): string {
  const base = mkdtempSync(join(DIR, `${name}-`));
  chmodSync(base, 0o777);
  return base;
}

/** PATH inside the staged root. */
export const STAGE_PATH = "PATH=/bin:/usr/bin";
