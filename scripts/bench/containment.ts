/**
 * Benchmark 7: what a cgroup per sandbox costs (README.md "Containment").
 * The same /bin/true runs with cgroups on (the default runtime) and off
 * (Runtime({ cgroups: false })): one-run latency, one at a time, in pairs
 * made back to back (the goal is judged on the median of the pairs'
 * differences, which load that comes and goes hits alike), and sandboxes
 * per second with 8 in flight, rounds alternating which goes first. Separately, the cgroup's own steps as bunbox's JavaScript thread
 * makes them (create it with its limits, read it, remove it), without a
 * sandbox. As root both runtimes give each sandbox a uid of its own: only
 * the cgroup differs.
 */
import { Containment } from "../../src/containment/containment.ts";
import { profileBuilder } from "../../src/policy/profiles.ts";
import { Executor } from "../../src/sandbox/executor.ts";
import { Limits } from "../../src/sandbox/limits.ts";
import { Runtime } from "../../src/sandbox/runtime.ts";
import { Sandbox } from "../../src/sandbox/sandbox.ts";
import { type Benchmark, goal } from "./report.ts";
import { BenchError } from "./setup.ts";
import { median, summarize } from "./stats.ts";

export interface ContainmentOptions {
  rounds: number;
  runsPerRound: number;
  inflight: number;
  log: (s: string) => void;
}

export async function benchContainment(o: ContainmentOptions): Promise<Benchmark[]> {
  const policy = profileBuilder("default").build();
  const runtimes = { on: new Runtime(), off: new Runtime({ cgroups: false }) };
  type Mode = keyof typeof runtimes;
  const host = runtimes.on.containment.cgroupHost();
  if (typeof host === "string") throw new BenchError(`containment: no cgroup on this host (${host}): nothing to compare`);
  const one = async (mode: Mode) => {
    const r = await new Sandbox(new Executor("/bin/true", ["true"]), policy, {}, { runtime: runtimes[mode] }).run();
    if (!r.ok) throw new BenchError(`containment: Sandbox.run() of /bin/true (cgroups ${mode}): ${r.toString()}`);
  };
  const latency: Record<Mode, number[]> = { on: [], off: [] };
  /** on − off of runs made one right after the other: load that comes and goes hits both. */
  const paired: number[] = [];
  const rate: Record<Mode, number[]> = { on: [], off: [] };
  for (const mode of ["on", "off"] as const) for (let i = 0; i < 10; i++) await one(mode); // warm-up
  o.log(`containment: ${o.rounds} rounds × (${o.runsPerRound} pairs of runs one at a time + ${o.runsPerRound} runs with ${o.inflight} in flight) × cgroups on/off`);
  for (let round = 0; round < o.rounds; round++) {
    for (let i = 0; i < o.runsPerRound; i++) {
      const took: Partial<Record<Mode, number>> = {};
      for (const mode of i % 2 === 0 ? (["on", "off"] as const) : (["off", "on"] as const)) {
        const t = performance.now();
        await one(mode);
        took[mode] = performance.now() - t;
        latency[mode].push(took[mode]);
      }
      paired.push(took.on! - took.off!);
    }
    for (const mode of round % 2 === 0 ? (["on", "off"] as const) : (["off", "on"] as const)) {
      let started = 0;
      const t0 = performance.now();
      const lane = async () => {
        while (started++ < o.runsPerRound) await one(mode);
      };
      await Promise.all(Array.from({ length: o.inflight }, lane));
      rate[mode].push((o.runsPerRound * 1000) / (performance.now() - t0));
    }
  }

  // The cgroup's steps on the JavaScript thread, alone: what each run adds there.
  const containment = new Containment();
  const limits = new Limits({ memory: 256 * 1024 ** 2 });
  const plan = containment.plan(limits, false);
  const steps: number[] = [];
  for (let i = 0; i < o.runsPerRound * o.rounds; i++) {
    const t = performance.now();
    const run = containment.prepare(plan, limits);
    run.cgroup?.entries();
    run.cgroup?.closeEntries();
    run.collect();
    run.release();
    steps.push(performance.now() - t);
  }

  const extra = median(paired);
  return [
    {
      id: "containment",
      title: `A cgroup per sandbox: /bin/true with cgroups on (cgroup v${host.version}) and off`,
      measurements: [
        { label: "one run, cgroups on", unit: "ms", stat: summarize(latency.on) },
        { label: "one run, cgroups off", unit: "ms", stat: summarize(latency.off) },
        { label: `${o.inflight} in flight, cgroups on`, unit: "runs/s", stat: summarize(rate.on) },
        { label: `${o.inflight} in flight, cgroups off`, unit: "runs/s", stat: summarize(rate.off) },
        {
          label: "the cgroup's steps on the JS thread",
          unit: "ms",
          stat: summarize(steps),
          note: "create with a memory limit, open for the spawn, read, remove (and take and free a uid, as root)",
        },
      ],
      derived: [
        { label: "one run, on − off (median of back-to-back pairs)", value: extra, unit: "ms" },
        { label: "runs/s, on / off (medians)", value: median(rate.on) / median(rate.off) },
      ],
      goal: goal("a cgroup costs under 0.5 ms per run", "one run, on − off, ms (median of pairs)", extra, "<=", 0.5),
      notes: [
        "where the cost goes (measured on the 2-CPU VM of README.md): about 0.4 ms is bunbox's own system calls on its " +
          "JavaScript thread in a real run (mkdir of the memory and pids cgroups 0.15 ms, reading them 0.15, rmdir 0.1, the limit " +
          "writes and opens 0.05; the steps above, in a tight loop, run hotter), the rest the kernel's work for a fresh memory " +
          "cgroup: its per-CPU state, and the sandbox's first charges to it. Reusing cgroups across runs would save most of it, " +
          "at the price of carrying one run's page-cache charges into the next one's peak and limit (v1 has no cheap reset)",
      ],
    },
  ];
}
