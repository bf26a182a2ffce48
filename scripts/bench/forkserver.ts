/**
 * Benchmark 5: what a run costs in exec mode against fork-server mode.
 *
 * The sandboxee (oneshot.c) takes one message over comms, its "request",
 * and exits 0. Exec mode is `new Sandbox(new Executor(oneshot), policy)`, a
 * fresh sandbox around a freshly exec'd program; fork-server mode is
 * `new Sandbox(server.executor(), policy)` against one ForkServer started
 * beforehand from the same program. A run: runAsync(), ready(), one
 * sendBool(), the Result. Both use the same policy (the dynamic profile with
 * the comms family). Two references: a dynamic build in exec mode (what the
 * dynamic loader adds), and the static build exiting at once with no comms
 * at all (what the channel and the message cost in exec mode).
 *
 * Why not a fork-server child that exits at once: it races the server,
 * which takes the child's seccomp listener only after the child has gone
 * on; a child already gone makes the fork fail (oneshot.c says more).
 *
 * Latency: one run at a time, each round running every mode once in a
 * rotated order, so load that comes and goes lands on all alike; from
 * `new Sandbox` to the Result. Throughput: batches with 8 runs in flight (a
 * finished run is replaced at once), one runs/s sample per batch.
 */
import { join, resolve } from "node:path";
import { profileBuilder } from "../../src/policy/profiles.ts";
import { Executor } from "../../src/sandbox/executor.ts";
import { ForkServer } from "../../src/sandbox/fork-server.ts";
import type { Result } from "../../src/sandbox/result.ts";
import { Sandbox } from "../../src/sandbox/sandbox.ts";
import type { Benchmark, Measurement } from "./report.ts";
import { BenchError, type Workdir } from "./setup.ts";
import { summarize } from "./stats.ts";

export interface ForkServerOptions {
  work: Workdir;
  /** Latency rounds (each runs every mode once). */
  rounds: number;
  inflight: number;
  runsPerBatch: number;
  batches: number;
  log: (s: string) => void;
}

/** Where the scratch directory appears inside the sandboxes. */
const INSIDE = "/bench";
const CLIENT = resolve(import.meta.dir, "../../csrc/client");

/** oneshot.c with the C client, static or dynamic, into the scratch directory; its name there. */
function build(work: Workdir, name: string, linkStatic: boolean): string {
  const cc = process.env.CC ?? "gcc";
  const argv = [
    cc, "-O2", "-Wall", `-I${CLIENT}`, ...(linkStatic ? ["-static"] : []), "-o", join(work.dir, name),
    join(import.meta.dir, "oneshot.c"), join(CLIENT, "bunbox_client.c"), join(CLIENT, "bunbox_sandbox.c"),
  ];
  const p = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new BenchError(`${cc} oneshot.c failed:\n${p.stderr.toString()}`);
  return name;
}

type Run = () => Promise<void>;

/** `total` runs, `inflight` at a time: runs per second. */
async function batch(total: number, inflight: number, one: Run): Promise<number> {
  let started = 0;
  const lane = async () => {
    while (started < total) {
      started++;
      await one();
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(inflight, total) }, lane));
  return (total * 1000) / (performance.now() - t0);
}

/** One run: start, wait until the policy is in, send the request, the Result. */
async function request(sandbox: Sandbox, what: string): Promise<void> {
  sandbox.runAsync();
  let r: Result;
  try {
    await sandbox.ready();
    await sandbox.comms!.sendBool(true);
    r = await sandbox.awaitResult();
  } finally {
    // Exec mode's channel belongs to its Executor (fork mode's is closed by the Sandbox).
    sandbox.executor.ipc.channel?.close();
  }
  if (!r.ok) throw new BenchError(`${what}: ${r.toString()}`);
}

export async function benchForkServer(o: ForkServerOptions): Promise<Benchmark[]> {
  const staticBin = `${INSIDE}/${build(o.work, "oneshot-static", true)}`;
  const dynamicBin = `${INSIDE}/${build(o.work, "oneshot-dynamic", false)}`;
  const policy = () => profileBuilder("dynamic").allowComms().addDirectoryAt(o.work.dir, INSIDE).build();
  const runPolicy = policy();
  const exec = (bin: string, args: string[]) => {
    const ex = new Executor(bin, [bin, ...args]);
    if (args.length) ex.ipc.comms({ timeoutMs: 5000 });
    return new Sandbox(ex, runPolicy);
  };
  const server = await ForkServer.start(new Executor(staticBin, [staticBin, "serve"]), policy());
  try {
    const modes: { key: string; label: string; run: () => Promise<void> }[] = [
      { key: "exec-static", label: "exec mode, static", run: () => request(exec(staticBin, ["wait"]), "exec mode (static)") },
      { key: "exec-dynamic", label: "exec mode, dynamic", run: () => request(exec(dynamicBin, ["wait"]), "exec mode (dynamic)") },
      { key: "fork", label: "fork-server mode", run: () => request(new Sandbox(server.executor(), runPolicy), "fork-server mode") },
      {
        key: "exec-bare",
        label: "ref: exec mode, static, exits at once, no comms",
        run: async () => {
          const r = await exec(staticBin, []).run();
          if (!r.ok) throw new BenchError(`exec mode (exit at once): ${r.toString()}`);
        },
      },
    ];
    for (const m of modes) for (let i = 0; i < 10; i++) await m.run(); // warm-up
    o.log(`forkserver: ${o.rounds} rounds of ${modes.length} modes, then ${o.batches} batches of ${o.runsPerBatch} with ${o.inflight} in flight`);
    const latency = new Map<string, number[]>(modes.map((m) => [m.key, []]));
    for (let round = 0; round < o.rounds; round++) {
      const shift = round % modes.length;
      for (const m of [...modes.slice(shift), ...modes.slice(0, shift)]) {
        const t = performance.now();
        await m.run();
        latency.get(m.key)!.push(performance.now() - t);
      }
    }
    const rates = new Map<string, number[]>(modes.map((m) => [m.key, []]));
    for (let b = 0; b < o.batches; b++) {
      const order = b % 2 === 0 ? modes : [...modes].reverse();
      for (const m of order) rates.get(m.key)!.push(await batch(o.runsPerBatch, o.inflight, m.run));
    }

    const lat = (k: string) => summarize(latency.get(k)!);
    const rate = (k: string) => summarize(rates.get(k)!);
    const one: Benchmark = {
      id: "forkserver.latency",
      title: "One run at a time: exec mode vs fork-server mode (the sandboxee takes one message, exits 0)",
      measurements: modes.map((m): Measurement => ({ label: m.label, unit: "ms", stat: lat(m.key) })),
      derived: [
        { label: "ratio exec (static) / fork-server, medians", value: lat("exec-static").median / lat("fork").median },
        { label: "ratio exec (dynamic) / fork-server, medians", value: lat("exec-dynamic").median / lat("fork").median },
      ],
      notes: [
        "from new Sandbox(…) to the Result: runAsync, ready, sendBool, awaitResult; same policy (dynamic profile + comms) in every mode",
        "fork-server: one ForkServer of the static build started beforehand; each child takes the message and exits 0",
      ],
    };
    const many: Benchmark = {
      id: `forkserver.${o.inflight}`,
      title: `${o.inflight} runs in flight: exec mode vs fork-server mode (${o.runsPerBatch} runs per batch)`,
      measurements: modes.map((m): Measurement => ({ label: m.label, unit: "runs/s", stat: rate(m.key) })),
      derived: [
        { label: "ratio fork-server / exec (static) runs/s, medians", value: rate("fork").median / rate("exec-static").median },
      ],
      notes: [],
    };
    return [one, many];
  } finally {
    server.close();
  }
}
