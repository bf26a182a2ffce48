#!/usr/bin/env bun
/**
 * Mutation testing by hand-picked mutants: each one flips a check in the
 * code (a text replacement that must match exactly once), runs the tests
 * that should notice, and puts the file back. A mutant the tests survive is
 * a property nothing pins down.
 *
 *   bun scripts/mutate.ts [--only ID,ID…] [MUTANTS.json]   (default scripts/mutants.json)
 *
 * Each mutant: { "id", "file", "from", "to", "tests": [files], "filter"?: "-t pattern" }.
 * C mutants rebuild the shim and the executable through test/setup.ts
 * (it rebuilds whatever is older than its sources). Prints one line per
 * mutant and a Markdown table; exits 1 if any mutant survived.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";

interface Mutant {
  id: string;
  file: string;
  from: string;
  to: string;
  tests: string[];
  filter?: string;
}

const root = resolve(import.meta.dir, "..");
const args = process.argv.slice(2);
const onlyAt = args.indexOf("--only");
const only = onlyAt >= 0 ? new Set(args.splice(onlyAt, 2)[1]!.split(",")) : undefined;
const list = resolve(root, args[0] ?? "scripts/mutants.json");
const mutants = (JSON.parse(readFileSync(list, "utf8")) as Mutant[]).filter((m) => !only || only.has(m.id));
/** A mutant that hangs the tests counts as killed after this long. */
const LIMIT_MS = 300_000;

let restore: (() => void) | undefined;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    restore?.();
    process.exit(130);
  });
}

const rows: string[] = [];
let survived = 0;
for (const m of mutants) {
  const path = resolve(root, m.file);
  const original = readFileSync(path, "utf8");
  const hits = original.split(m.from).length - 1;
  if (hits !== 1) {
    console.error(`${m.id}: "${m.from}" occurs ${hits} times in ${m.file} (must be once)`);
    process.exit(2);
  }
  restore = () => writeFileSync(path, original);
  let outcome: string;
  try {
    writeFileSync(path, original.replace(m.from, m.to));
    const cmd = [process.execPath, "test", "--timeout", "60000", ...m.tests, ...(m.filter ? ["-t", m.filter] : [])];
    const proc = Bun.spawn(cmd, { cwd: root, stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => proc.kill("SIGKILL"), LIMIT_MS);
    const out = (await Promise.all([new Response(proc.stderr).text(), new Response(proc.stdout).text()])).join("\n");
    const code = await proc.exited;
    clearTimeout(timer);
    const failed = [...new Set([...out.matchAll(/^\(fail\) (.*?)(?: \[[\d.]+m?s\])?$/gm)].map((x) => x[1]!))];
    if (code === 0) {
      outcome = "SURVIVED";
      survived++;
    } else if (failed.length) {
      outcome = `killed by: ${failed.join("; ")}`;
    } else {
      outcome = proc.signalCode ? "killed (the tests hung)" : `killed (bun test exited ${code}: ${out.trim().split("\n").slice(-3).join(" / ")})`;
    }
  } finally {
    restore();
    restore = undefined;
  }
  console.log(`${m.id}: ${outcome}`);
  rows.push(`| ${m.id} | \`${m.file}\` | ${outcome.replaceAll("|", "\\|")} |`);
}
console.log(["", "| mutant | file | outcome |", "|---|---|---|", ...rows].join("\n"));
process.exit(survived ? 1 : 0);
