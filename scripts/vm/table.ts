/**
 * The support table README.md shows: one row per kernel, arch and cgroup
 * set-up, the cases as root and as the unprivileged user counted apart
 * (each result line starts with its label, STAGE/USER: rootfs/root, ...).
 */
import type { Outcome } from "./qemu.ts";

export interface Row {
  kernel: string;
  arch: string;
  cgroup: string;
  /** The Debian kernel package and version. */
  release: string;
  outcome: Outcome;
  /** When it ran (ISO); absent for this run's rows. */
  date?: string;
}

function count(lines: string[] | undefined, who: string): number {
  return (lines ?? []).filter((l) => l.split(" ")[0]?.endsWith(`/${who}`)).length;
}

function cell(o: Outcome, who: string): string {
  const passed = count(o.passed, who);
  const failed = count(o.failed, who);
  const skipped = count(o.skipped, who);
  const crashes = count(o.crashes, who);
  const text = `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}${crashes ? ` (${crashes} Bun crash${crashes > 1 ? "es" : ""}, run again)` : ""}`;
  return failed ? `**${text}**` : text;
}

export function supportTable(rows: Row[]): string {
  const today = new Date().toISOString().slice(0, 10);
  const lines = [
    "| kernel | arch | cgroups | as root | as an unprivileged user | Debian kernel | run |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of rows) {
    const boot = r.outcome.done ? "" : " (boot did not finish)";
    const cg = r.cgroup === "cgroup2" ? "v2 only" : "v1";
    const date = r.date?.slice(0, 10) ?? today;
    lines.push(`| ${r.kernel} | ${r.arch} | ${cg} | ${cell(r.outcome, "root")}${boot} | ${cell(r.outcome, "user")} | ${r.release} | ${date} |`);
  }
  return lines.join("\n");
}
