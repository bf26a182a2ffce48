/**
 * Benchmark 4: how many sandboxes one host process gets through per second,
 * spawn → exit → Result, with 1, 8 and 64 runs kept in flight (a finished
 * run is replaced at once, until a fixed number have run). bunbox runs
 * in-process (Sandbox.run() under the default profile); bubblewrap is spawned
 * through Bun.spawn with the same view as in benchmark 1, which is how a Bun
 * program would use it.
 *
 * Rounds alternate the two (and which goes first), so both see the same
 * machine; a round's throughput is one sample, and the goal is judged on the
 * median of the per-round ratios. CPU per run is recorded too: once the
 * cores are busy, more in flight cannot help, and the CPU a tool burns per
 * sandbox bounds its throughput; wall time well above CPU time means the
 * tool waits. (Kernel work done later in worker threads, such as tearing
 * down a network namespace, is in neither figure.) And how long the event
 * loop stalls meanwhile: the worst lateness of a 10 ms timer during a batch
 * (the test suite only checks that timers fire; the figure is here).
 */
import { profileBuilder } from "../../src/policy/profiles.ts";
import { Executor } from "../../src/sandbox/executor.ts";
import { Sandbox } from "../../src/sandbox/sandbox.ts";
import { bwrapArgv } from "./bwrap.ts";
import { goal, type Benchmark } from "./report.ts";
import { BenchError } from "./setup.ts";
import { timeProcess } from "./spawn-timer.ts";
import { median, summarize } from "./stats.ts";

export interface ThroughputOptions {
  bwrap: string;
  inflight: readonly number[];
  runsPerBatch: number;
  rounds: number;
  log: (s: string) => void;
}

interface Batch {
  perSecond: number;
  latencies: number[];
  /** CPU per run: this process's own (spawning, monitoring) plus what each run reports for its children. */
  cpuMsPerRun: number;
  /** The worst lateness of a 10 ms interval timer during the batch. */
  lagMs: number;
}

const TICK_MS = 10;

/** `total` calls of `one` (each returning the CPU ms its children used), `inflight` at a time. */
async function batch(total: number, inflight: number, one: () => Promise<number>): Promise<Batch> {
  let started = 0;
  let childCpuMs = 0;
  const latencies: number[] = [];
  const lane = async () => {
    while (started < total) {
      started++;
      const t = performance.now();
      // Not `childCpuMs += await one()`: that reads the sum before awaiting,
      // and concurrent lanes would overwrite each other's additions.
      const cpu = await one();
      latencies.push(performance.now() - t);
      childCpuMs += cpu;
    }
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let lastTick = t0;
  let lagMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    lagMs = Math.max(lagMs, now - lastTick - TICK_MS);
    lastTick = now;
  }, TICK_MS);
  try {
    await Promise.all(Array.from({ length: Math.min(inflight, total) }, lane));
  } finally {
    clearInterval(timer);
  }
  const wall = performance.now() - t0;
  const own = process.cpuUsage(cpu0);
  return {
    perSecond: (total * 1000) / wall,
    latencies,
    cpuMsPerRun: ((own.user + own.system) / 1000 + childCpuMs) / total,
    lagMs: Math.max(lagMs, performance.now() - lastTick - TICK_MS),
  };
}

export async function benchThroughput(o: ThroughputOptions): Promise<Benchmark[]> {
  const policy = profileBuilder("default").build();
  const tools = {
    bunbox: async () => {
      const r = await new Sandbox(new Executor("/bin/true", ["true"]), policy).run();
      if (r.status !== "OK" || !r.rusage) throw new BenchError(`Sandbox.run() of /bin/true: ${r.toString()}`);
      return r.rusage.userMs + r.rusage.sysMs;
    },
    bwrap: async () => (await timeProcess(bwrapArgv(o.bwrap, ["/bin/true"]))).cpuMs,
  };
  type Tool = keyof typeof tools;
  const names = Object.keys(tools) as Tool[];
  const rates = new Map<string, number[]>();
  const latencies = new Map<string, number[]>();
  const cpu = new Map<string, number[]>();
  const lag = new Map<string, number[]>();
  const push = (m: Map<string, number[]>, key: string, v: number[]) => m.set(key, [...(m.get(key) ?? []), ...v]);

  for (const tool of names) await batch(20, 4, tools[tool]); // warm-up
  o.log(`throughput: ${o.rounds} rounds × ${o.inflight.join("/")} in flight × ${names.length} tools, ${o.runsPerBatch} runs each`);
  for (let round = 0; round < o.rounds; round++) {
    for (const k of o.inflight) {
      const order = round % 2 === 0 ? names : [...names].reverse();
      for (const tool of order) {
        const b = await batch(o.runsPerBatch, k, tools[tool]);
        push(rates, `${tool}:${k}`, [b.perSecond]);
        push(latencies, `${tool}:${k}`, b.latencies);
        push(cpu, `${tool}:${k}`, [b.cpuMsPerRun]);
        push(lag, `${tool}:${k}`, [b.lagMs]);
      }
    }
  }

  return o.inflight.map((k) => {
    const rate = (t: Tool) => summarize(rates.get(`${t}:${k}`)!);
    // Each round's bunbox batch ran next to its bwrap batch: the ratio within
    // a round cancels load that comes and goes on a shared machine.
    const bwrapRates = rates.get(`bwrap:${k}`)!;
    const paired = median(rates.get(`bunbox:${k}`)!.map((r, i) => r / bwrapRates[i]!));
    const lat = (t: Tool) => summarize(latencies.get(`${t}:${k}`)!);
    return {
      id: `throughput.${k}`,
      title: `Sandboxes per second from one process, ${k} in flight (/bin/true, ${o.runsPerBatch} runs per round)`,
      measurements: [
        { label: "bunbox Sandbox.run()", unit: "runs/s", stat: rate("bunbox") },
        { label: "bwrap via Bun.spawn", unit: "runs/s", stat: rate("bwrap") },
        { label: "bunbox, latency of one run", unit: "ms", stat: lat("bunbox") },
        { label: "bwrap, latency of one run", unit: "ms", stat: lat("bwrap") },
        {
          label: "bunbox, CPU per run",
          unit: "ms",
          stat: summarize(cpu.get(`bunbox:${k}`)!),
          note: "this process (spawn, monitor, Result) + the sandbox's init and sandboxee (Result.rusage)",
        },
        {
          label: "bwrap, CPU per run",
          unit: "ms",
          stat: summarize(cpu.get(`bwrap:${k}`)!),
          note: "this process (Bun.spawn, exit) + bwrap and its children (wait4 rusage)",
        },
        {
          label: "bunbox, event-loop lag",
          unit: "ms",
          stat: summarize(lag.get(`bunbox:${k}`)!),
          note: `worst lateness of a ${TICK_MS} ms timer in each round's batch`,
        },
        { label: "bwrap, event-loop lag", unit: "ms", stat: summarize(lag.get(`bwrap:${k}`)!) },
      ],
      derived: [{ label: "ratio bunbox / bwrap runs/s, of the medians", value: rate("bunbox").median / rate("bwrap").median }],
      goal: goal("bunbox ≥ 2 × bwrap", "bunbox / bwrap runs/s (median of per-round ratios)", paired, ">=", 2),
      notes: [],
    };
  });
}
