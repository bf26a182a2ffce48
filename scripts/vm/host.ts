/**
 * The host's side: running a build step, and installing the host tools the
 * rig needs (QEMU, cross compilers) from the machine's own apt sources when
 * they are missing. Guest packages never come through here: scripts/vm/debian.ts
 * downloads those with a private apt configuration.
 */
import { existsSync } from "node:fs";

export class RigError extends Error {}

/** Runs a command to completion; a failure is a RigError naming `what`, with the command's output. */
export function run(cmd: string[], what: string, opts: { env?: Record<string, string | undefined>; cwd?: string } = {}): string {
  const p = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", env: opts.env ?? process.env, cwd: opts.cwd });
  if (p.exitCode !== 0) {
    throw new RigError(`${what} failed (${cmd.join(" ")}, exit ${p.exitCode}):\n${p.stdout.toString()}${p.stderr.toString()}`);
  }
  return p.stdout.toString();
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? "/usr/bin:/bin").split(":").some((d) => d && existsSync(`${d}/${command}`));
}

function installed(pkg: string): boolean {
  const p = Bun.spawnSync(["dpkg-query", "-W", "-f=${Status}", pkg], { stdout: "pipe", stderr: "ignore" });
  return p.stdout.toString().endsWith(" installed");
}

let updated = false;

/**
 * Each [command, package] whose command is not on PATH (or, with no command,
 * whose package is not installed) gets its package installed (apt-get update
 * once first). Needs root; otherwise the error names what to install.
 */
export function ensureTools(tools: [string | undefined, string][], log: (s: string) => void): void {
  const missing = [...new Set(tools.filter(([cmd, pkg]) => (cmd ? !onPath(cmd) : !installed(pkg))).map(([, pkg]) => pkg))];
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new RigError(`missing host tools: apt-get install --no-install-recommends ${missing.join(" ")}`);
  }
  log(`installing ${missing.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  if (!updated) {
    run(["apt-get", "update", "-qq"], "apt-get update", { env });
    updated = true;
  }
  run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...missing], `apt-get install ${missing.join(" ")}`, { env });
}
