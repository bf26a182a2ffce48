/**
 * Benchmark 1: start-to-exit of /bin/true from the command line, bunbox
 * (default profile: every namespace, the default view, seccomp) against
 * bubblewrap with the same view, and /bin/true alone.
 *
 * The commands run in interleaved rounds (each round runs every command once,
 * in a rotated order), so a noisy second on the machine lands on all of them
 * alike instead of on whichever ran then. Two reference commands split
 * bunbox's time: a Bun executable that does nothing (the floor of any program
 * built with `bun build --compile`) and `bunbox --version` (bunbox's own
 * start-up, before any sandbox work). Each command's CPU time (user + system,
 * its children included) is recorded too: on a busy machine it, more than
 * the wall time, says what a start costs.
 */
import { bwrapArgv } from "./bwrap.ts";
import { goal, type Benchmark } from "./report.ts";
import { BUNBOX } from "./setup.ts";
import { timeProcess } from "./spawn-timer.ts";
import { summarize } from "./stats.ts";

export interface CliStartupOptions {
  bwrap: string;
  hello: string;
  /** scripts/bench/floor.ts: the sandbox of `bunbox run -- /bin/true`, with none of bunbox's own work. */
  floor: string;
  rounds: number;
  warmup: number;
  log: (s: string) => void;
}

interface Command {
  key: string;
  label: string;
  argv: string[];
}

export async function benchCliStartup(o: CliStartupOptions): Promise<Benchmark> {
  const commands: Command[] = [
    { key: "bunbox", label: "bunbox run -- /bin/true", argv: [BUNBOX, "run", "--", "/bin/true"] },
    { key: "bwrap", label: "bwrap (same view) /bin/true", argv: bwrapArgv(o.bwrap, ["/bin/true"]) },
    { key: "true", label: "/bin/true, no sandbox", argv: ["/bin/true"] },
    { key: "hello", label: "ref: empty Bun executable", argv: [o.hello] },
    { key: "version", label: "ref: bunbox --version", argv: [BUNBOX, "--version"] },
    { key: "floor", label: "ref: the floor (Bun, the shim, the same sandbox)", argv: [o.floor] },
  ];
  const samples = new Map<string, number[]>(commands.map((c) => [c.key, []]));
  const cpu = new Map<string, number[]>(commands.map((c) => [c.key, []]));
  o.log(`cli: ${o.rounds} rounds of ${commands.length} commands (+${o.warmup} warm-up)`);
  for (let round = -o.warmup; round < o.rounds; round++) {
    const shift = ((round % commands.length) + commands.length) % commands.length;
    const order = [...commands.slice(shift), ...commands.slice(0, shift)];
    for (const c of order) {
      const t = await timeProcess(c.argv);
      if (round >= 0) {
        samples.get(c.key)!.push(t.wallMs);
        cpu.get(c.key)!.push(t.cpuMs);
      }
    }
  }
  const stat = (key: string) => summarize(samples.get(key)!);
  const s = Object.fromEntries(commands.map((c) => [c.key, stat(c.key)]));
  const c = Object.fromEntries(commands.map((cmd) => [cmd.key, summarize(cpu.get(cmd.key)!)]));
  const ratio = s.bunbox!.median / s.bwrap!.median;
  return {
    id: "cli.true",
    title: "CLI start-to-exit of /bin/true (Bun.spawn → exit)",
    measurements: [
      ...commands.map((c) => ({ label: c.label, unit: "ms", stat: s[c.key]! })),
      ...commands.map((cmd) => ({
        label: `CPU: ${cmd.label}`,
        unit: "ms",
        stat: c[cmd.key]!,
        note: "user + system CPU of the process and every child it reaped (wait4 rusage)",
      })),
    ],
    derived: [
      { label: "ratio bwrap / plain /bin/true", value: s.bwrap!.median / s.true!.median },
      { label: "ratio bunbox / plain /bin/true", value: s.bunbox!.median / s.true!.median },
      // On a busy machine the wall time follows the CPU time each process needs: this ratio says why.
      { label: "CPU ratio bunbox / bwrap (medians)", value: c.bunbox!.median / c.bwrap!.median },
      { label: "CPU ratio empty Bun executable / bwrap (medians): the floor of any Bun program", value: c.hello!.median / c.bwrap!.median },
      // The goal cannot be below this: a Bun program that only spawns the same sandbox (scripts/bench/floor.ts).
      { label: "ratio floor / bwrap (medians): the floor of this design", value: s.floor!.median / s.bwrap!.median },
      { label: "ratio bunbox / floor (medians): bunbox's own work", value: s.bunbox!.median / s.floor!.median },
    ],
    goal: goal("bunbox ≤ 1.6 × bwrap (issue #12 §5)", "bunbox / bwrap (medians)", ratio, "<=", 1.6),
    notes: [
      `of bunbox's ${s.bunbox!.median.toFixed(1)} ms median: ${s.hello!.median.toFixed(1)} ms is any Bun executable's start-up, ` +
        `${(s.version!.median - s.hello!.median).toFixed(1)} ms more is bunbox's own start-up (--version), ` +
        `${(s.bunbox!.median - s.version!.median).toFixed(1)} ms more is the run (policy, spawn, sandboxee, Result)`,
      `the floor (${s.floor!.median.toFixed(1)} ms): a Bun executable that loads the shim and spawns the sandbox bunbox run would ` +
        "(same request: default profile, filter, mounts; no path checks, cgroup, uid or Result): " +
        `${(s.floor!.median - s.hello!.median).toFixed(1)} ms over the empty Bun executable`,
      `of bunbox's ${c.bunbox!.median.toFixed(1)} ms of CPU: ${c.hello!.median.toFixed(1)} ms any Bun executable's, ` +
        `${(c.version!.median - c.hello!.median).toFixed(1)} ms bunbox's own start-up, ${(c.bunbox!.median - c.version!.median).toFixed(1)} ms the run ` +
        `(bwrap, sandbox included: ${c.bwrap!.median.toFixed(1)} ms)`,
      "bwrap here installs no seccomp filter, sets no rlimits and keeps its default capability handling: it does less than bunbox",
      `bwrap command: ${commands[1]!.argv.join(" ")}`,
    ],
  };
}
