#!/usr/bin/env bun
/**
 * `bun run build`: the shim, then dist/bunbox, one self-contained executable
 * (the shim and init are embedded). A compiled bunbox must not read a .env or
 * bunfig.toml from whatever directory it is started in: a sandbox's own
 * configuration cannot come from the directory of the code it sandboxes.
 * Usage: bun scripts/build.ts
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildShim } from "./build-shim.ts";

const root = resolve(import.meta.dir, "..");
const out = join(root, "dist", "bunbox");

buildShim();
mkdirSync(join(root, "dist"), { recursive: true });
const args = [
  "build",
  "--compile",
  "--minify",
  "--sourcemap=none",
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
  "--no-compile-autoload-tsconfig",
  "--no-compile-autoload-package-json",
  "--bytecode",
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
console.log(`built ${out.replace(root + "/", "")}`);
