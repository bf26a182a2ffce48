#!/usr/bin/env bun
/**
 * `bun run build`: the shim, then dist/bunbox, one self-contained executable
 * (the shim and init are embedded), and its man page dist/bunbox.1. A compiled bunbox must not read a .env or
 * bunfig.toml from whatever directory it is started in: a sandbox's own
 * configuration cannot come from the directory of the code it sandboxes.
 * Usage: bun scripts/build.ts
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildShim } from "./build-shim.ts";
import { ARCHES, type ArchName } from "../src/policy/arch.ts";
import { encode } from "../src/policy/bpf.ts";
import type { PrecompiledTable } from "../src/policy/precompiled.ts";
import { applyProfileRules, PROFILE_NAMES, profileOnRefusal } from "../src/policy/profiles.ts";
import { PolicyBuilder } from "../src/policy/builder.ts";

/** Every built-in profile's notify filter, for src/policy/precompiled.ts. */
function precompile(): PrecompiledTable {
  const table: PrecompiledTable = {};
  for (const name of PROFILE_NAMES) {
    table[name] = {};
    for (const arch of Object.keys(ARCHES) as ArchName[]) {
      // The rules and what a refusal does: the two parts of a profile its filter holds.
      const f = applyProfileRules(new PolicyBuilder({ arch }), name).setOnRefusal(profileOnRefusal(name)).build().filter(true);
      table[name]![arch] = [Buffer.from(encode(f.insns)).toString("base64"), f.magic[0], f.magic[1]];
    }
  }
  return table;
}

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
  `--define=BUNBOX_PRECOMPILED=${JSON.stringify(precompile())}`,
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
// The man page, from the same option table as --help (src/cli/complete.ts).
const man = Bun.spawnSync([out, "man"], { stdout: "pipe", stderr: "inherit" });
if (man.exitCode !== 0) {
  console.error("bunbox: dist/bunbox man failed");
  process.exit(1);
}
writeFileSync(join(root, "dist", "bunbox.1"), man.stdout);
console.log(`built ${out.replace(root + "/", "")} and dist/bunbox.1`);
