/**
 * A learned policy in the two other forms `bunbox learn` writes: a
 * PolicyBuilder module (`--format ts`), and the coverage report (each
 * syscall and path with its count, the runs it was seen in and where it was
 * first made: `bunbox learn -v`, `bunbox policy explain` of a learned file).
 */
import { visible } from "../sandbox/visible.ts";
import type { LearnedFile } from "./derive.ts";
import type { MountEntry } from "../policy/filesystem.ts";
import type { Observations } from "./observations.ts";

const js = (v: unknown) => JSON.stringify(v);

/**
 * The policy as a module for `--policy FILE.ts`: a function of the builder
 * bunbox hands it (a type import only, so that the module loads wherever
 * bunbox runs from), and the observations as `notes` for `--merge`.
 */
export function policyModule(file: LearnedFile): string {
  const lines: string[] = [];
  const call = (text: string) => lines.push(`  .${text}`);
  call(`setOnRefusal(${js(file.onRefusal)})`);
  for (const d of (file.dangerAllowUnsafe as string[] | undefined) ?? []) call(`dangerAllowUnsafe(${js(d)})`);
  call(`allowPortable(${js(file.allow)}, ${js(file.allowIf ?? {})})`);
  const fs = file.filesystem as { base: string; mounts: MountEntry[] } | undefined;
  if (fs) {
    call("emptyFilesystem()");
    for (const m of fs.mounts) {
      if ("bind" in m) call(`addPathAt(${js(m.bind)}, ${js(m.at ?? m.bind)}${m.writable ? ", { writable: true }" : ""})`);
      else if ("tmpfs" in m) call(`addTmpfs(${js(m.tmpfs)}, { ${m.size !== undefined ? `size: ${js(m.size)}, ` : ""}mode: 0o${(m.mode ?? 0o755).toString(8)} })`);
      else if ("symlink" in m) call(`addSymlink(${js(m.target)}, ${js(m.symlink)})`);
      else if ("proc" in m) call(`addProc(${js(m.proc)})`);
      else if ("dev" in m) call(`addDev(${js(m.dev)})`);
      else throw new Error(`a learned filesystem has no ${Object.keys(m)[0]} mounts`);
    }
  }
  if (file.network !== undefined) call(`setNetwork(${js(file.network)})`);
  if (file.hostname !== undefined) call(`setHostname(${js(file.hostname)})`);
  if (file.uid !== undefined) call(`setUid(${js(file.uid)})`);
  if (file.gid !== undefined) call(`setGid(${js(file.gid)})`);
  return [
    // Every line terminator JavaScript has, not only \r and \n: the description
    // holds the learned command line, and a U+2028 in it ended this comment,
    // making the rest code that `run --policy` ran in bunbox, unsandboxed.
    `// ${String(file.description).replace(/[\r\n\u2028\u2029]/g, " ")}`,
    "// Written by `bunbox learn --format ts`; use with `bunbox run --policy THIS_FILE`.",
    'import type { PolicyBuilder } from "bunbox";',
    "",
    "export default (b: PolicyBuilder) =>",
    "  b",
    `${lines.join("\n")};`,
    "",
    "/** What the learning runs observed (`bunbox learn --merge THIS_FILE` adds to it). */",
    `export const notes = ${JSON.stringify(file.notes, null, 2)};`,
    "",
  ].join("\n");
}

/** One line per syscall and per path: count, runs, first seen where; strings the sandboxee chose made visible. */
export function coverageReport(notes: Observations): string[] {
  const runs = (r: readonly number[]) => (notes.runs.length > 1 ? ` runs ${r.join(",")}` : "");
  const lines = [`coverage of ${notes.runs.length} run${notes.runs.length === 1 ? "" : "s"} (${notes.arch}):`, "syscalls (calls, first seen at):"];
  const syscalls = Object.entries(notes.syscalls).sort((a, b) => b[1].count - a[1].count || a[0].localeCompare(b[0]));
  for (const [name, s] of syscalls) {
    lines.push(`  ${name.padEnd(20)} ${String(s.count).padStart(7)}${runs(s.runs)}${s.first ? `  ${visible(s.first)}` : ""}`);
    for (const v of s.variants ?? []) {
      const args = Object.entries(v.args).map(([k, x]) => `${k}=${x}`).join(" ");
      lines.push(`    ${args.padEnd(50)} ${String(v.count).padStart(7)}`);
    }
  }
  lines.push("paths (uses, what was done):");
  for (const [path, p] of Object.entries(notes.paths).sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    lines.push(`  ${visible(path)}  ${p.count}× ${p.ops.join(",")}${runs(p.runs)}`);
  }
  if (notes.safety.length) {
    lines.push("refused by a safety rule (not learned):");
    for (const s of notes.safety) lines.push(`  run ${s.run}: ${visible(s.call)}${s.relax ? ` (relaxation: dangerAllowUnsafe ${js(s.relax)})` : ""}`);
  }
  return lines;
}
