/**
 * What the benchmark produces: one Benchmark per figure with a goal (or an
 * informational one without), printed as a table and written as
 * bench/results.json. The JSON keeps every figure the table shows, so a later
 * run can be compared field by field.
 */
import type { Stat } from "./stats.ts";
import { BUSY, type MachineFacts } from "./machine.ts";

export interface Measurement {
  label: string;
  unit: string;
  stat: Stat;
  /** What the figure includes, when the label alone does not say it. */
  note?: string;
}

export interface Goal {
  /** The goal in words, as the issue states it ("bunbox ≤ bwrap"). */
  text: string;
  /** Which ratio the goal is judged on ("bunbox / bwrap, medians"). */
  ratio: string;
  value: number;
  op: "<=" | ">=";
  target: number;
  met: boolean;
}

export interface Benchmark {
  id: string;
  title: string;
  measurements: Measurement[];
  /** Figures computed from the measurements (ratios, differences), shown under them. */
  derived: { label: string; value: number; unit?: string }[];
  /** Which statistics the table shows (default median, p10, p90); the JSON has all. */
  columns?: (keyof Stat)[];
  goal?: Goal;
  notes: string[];
}

export interface Results {
  machine: MachineFacts;
  /** Repetition counts and sizes the run used. */
  settings: Record<string, number | number[]>;
  durationS: number;
  benchmarks: Benchmark[];
}

export function goal(text: string, ratio: string, value: number, op: "<=" | ">=", target: number): Goal {
  return { text, ratio, value, op, target, met: op === "<=" ? value <= target : value >= target };
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 100) return v.toFixed(1);
  if (a >= 10) return v.toFixed(2);
  return v.toFixed(3);
}

function pad(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "));
}

function verdict(g: Goal): string {
  return `${g.met ? "MET" : "NOT MET"}: ${g.ratio} = ${fmt(g.value)} (goal ${g.op} ${g.target}; ${g.text})`;
}

/** results.json: every number to 4 significant digits (more would be noise). */
export function toJson(results: Results): string {
  const round = (_key: string, v: unknown) => (typeof v === "number" && !Number.isInteger(v) ? Number(v.toPrecision(4)) : v);
  return `${JSON.stringify(results, round, 2)}\n`;
}

/** The human-readable report: one block per benchmark, then a summary of goals. */
export function formatTable(results: Results): string {
  const m = results.machine;
  const out: string[] = [
    `bunbox benchmarks: ${m.date}`,
    `kernel ${m.kernel}, ${m.cpus} CPUs (${m.cpuModel}${m.virtualized ? ", virtual machine" : ""}; meltdown: ${m.meltdown}), ` +
      `${m.memoryGiB} GiB RAM, load average ${m.loadAverageAtStart.join(" ")} at start`,
    `bunbox ${m.bunbox}, bun ${m.bun}, ${m.bwrap}, as ${m.user}, ${m.hostSeccompFilters} seccomp filters on the host process`,
  ];
  if (m.busyBeforeStart >= BUSY) {
    out.push(
      `WARNING: other processes kept ${Math.round(m.busyBeforeStart * 100)}% of the CPUs busy when the run began; ` +
        "every figure is skewed (throughput most): run again on an idle machine",
    );
  }
  out.push("");
  for (const b of results.benchmarks) {
    out.push(`## ${b.title}`);
    const cols = b.columns ?? ["median", "p10", "p90"];
    const rows = [["", ...cols, "unit", "n"]];
    for (const x of b.measurements) {
      rows.push([x.label, ...cols.map((c) => fmt(x.stat[c])), x.unit, String(x.stat.n)]);
    }
    out.push(...pad(rows).map((l) => `  ${l}`));
    for (const d of b.derived) out.push(`  ${d.label}: ${fmt(d.value)}${d.unit ? ` ${d.unit}` : ""}`);
    if (b.goal) out.push(`  ${verdict(b.goal)}`);
    for (const n of b.notes) out.push(`  note: ${n}`);
    out.push("");
  }
  out.push("## Goals");
  const rows = [["benchmark", "ratio", "goal", "result"]];
  for (const b of results.benchmarks) {
    if (!b.goal) continue;
    rows.push([b.id, `${b.goal.ratio} = ${fmt(b.goal.value)}`, `${b.goal.op} ${b.goal.target}`, b.goal.met ? "met" : "NOT MET"]);
  }
  out.push(...pad(rows).map((l) => `  ${l}`));
  out.push(`\n(${results.durationS.toFixed(0)} s in all)`);
  return out.join("\n");
}
