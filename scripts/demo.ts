#!/usr/bin/env bun
/**
 * `bun run demo`: builds dist/bunbox and runs it on a few commands, to show
 * what a sandboxee sees and how bunbox reports a forbidden syscall.
 */
import { resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
const build = Bun.spawnSync([process.execPath, "scripts/build.ts"], { cwd: root, stdio: ["inherit", "inherit", "inherit"] });
if (build.exitCode !== 0) process.exit(build.exitCode ?? 1);
const bunbox = resolve(root, "dist/bunbox");

function show(title: string, args: string[]): void {
  console.log(`\n$ bunbox ${args.map((a) => (/\s|'/.test(a) ? `'${a.replaceAll("'", "'\\''")}'` : a)).join(" ")}   # ${title}`);
  const p = Bun.spawnSync([bunbox, ...args], { cwd: "/", stdio: ["ignore", "inherit", "inherit"] });
  console.log(`[exit ${p.exitCode}]`);
}

show("who and where am I?", ["run", "--", "/bin/sh", "-c", "echo \"uid $(id -u), pid $$, host $(hostname)\"; ls /; cat /proc/net/dev | cut -d: -f1 | tail -n +3"]);
show("the filesystem is read-only but /tmp", ["run", "--", "/bin/sh", "-c", "touch /usr/x; touch /tmp/x && echo /tmp is writable"]);
show("a forbidden syscall is named, with its arguments", ["run", "--", "/usr/bin/unshare", "--user", "true"]);
show("limits: wall time", ["run", "--time-limit", "0.5", "--", "/bin/sleep", "10"]);
