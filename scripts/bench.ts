#!/usr/bin/env bun
/**
 * `bun run bench`: bunbox against bubblewrap and against no sandbox at all,
 * side by side in one run. Prints a table (stdout; progress goes to stderr)
 * and writes bench/results.json. What each figure means: bench/README.md.
 *
 *   1. CLI start-to-exit of /bin/true: bunbox, bwrap (same view), no sandbox
 *   2. in-process Sandbox.run() with the host at ~0 and ~1 GiB of memory
 *   3. seccomp filter cost: syscall loops, bunbox's filter vs a linear one
 *   4. sandboxes per second from one process, 1/8/64 in flight, vs bwrap
 *   5. exec mode vs fork-server mode, one run at a time and 8 in flight
 *   6. comms round trip and throughput (1 KiB, 1 MiB) vs plain sockets
 *   7. --net proxy: a 256 MiB download and small GETs, direct vs through the proxy
 *   8. what a cgroup per sandbox costs: latency and runs/s with cgroups on vs off
 *   9. learning mode: runs to a working policy for python3, node and make, the
 *      learned policy's size against default's, a learning run's slowdown
 *
 * Usage: bun scripts/bench.ts [--quick] [--only cli,heap,seccomp,throughput,forkserver,comms,net,containment,learn]
 *   --quick  fewer repetitions (a smoke test; figures are noisy)
 *   --only   just these benchmarks
 * Either option prints the table but leaves bench/results.json alone, so the
 * committed file always comes from a full run.
 *
 * Needs bwrap (apt-get install bubblewrap) and gcc; builds dist/bunbox when it
 * is missing or stale. Takes about 2–3 minutes on 2 cores.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { benchCliStartup } from "./bench/cli-startup.ts";
import { benchComms } from "./bench/comms.ts";
import { benchContainment } from "./bench/containment.ts";
import { benchForkServer } from "./bench/forkserver.ts";
import { buildFloor } from "./bench/floor.ts";
import { benchHeap } from "./bench/heap.ts";
import { benchLearn } from "./bench/learn.ts";
import { benchNet } from "./bench/net.ts";
import { BUSY, machineFacts } from "./bench/machine.ts";
import { type Benchmark, formatTable, type Results, toJson } from "./bench/report.ts";
import { benchSeccomp } from "./bench/seccomp.ts";
import { BenchError, ensureBunbox, makeWorkdir, requireTool, ROOT, versionOf } from "./bench/setup.ts";
import { benchThroughput } from "./bench/throughput.ts";

const SECTIONS = ["cli", "heap", "seccomp", "throughput", "forkserver", "comms", "net", "containment", "learn"] as const;
type Section = (typeof SECTIONS)[number];

const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

function parseArgs(argv: string[]): { quick: boolean; only: Set<Section> } {
  let quick = false;
  let only = new Set<Section>(SECTIONS);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--quick") quick = true;
    else if (a === "--only" || a.startsWith("--only=")) {
      const list = a === "--only" ? argv[++i] : a.slice("--only=".length);
      const names = (list ?? "").split(",").filter(Boolean);
      const bad = names.filter((n) => !(SECTIONS as readonly string[]).includes(n));
      if (names.length === 0 || bad.length) throw new BenchError(`--only: one or more of ${SECTIONS.join(", ")} (got ${JSON.stringify(list ?? "")})`);
      only = new Set(names as Section[]);
    } else {
      throw new BenchError(`unknown option ${a} (usage: bun scripts/bench.ts [--quick] [--only ${SECTIONS.join(",")}])`);
    }
  }
  return { quick, only };
}

/** How much of each benchmark to run; recorded in results.json. */
function settingsFor(quick: boolean) {
  return {
    cliRounds: quick ? 20 : 200,
    heapMiB: 1024,
    heapRounds: quick ? 20 : 150,
    seccompIterations: quick ? 50_000 : 200_000,
    seccompRounds: quick ? 2 : 7,
    throughputInflight: [1, 8, 64],
    throughputRunsPerBatch: quick ? 64 : 128,
    throughputRounds: quick ? 1 : 5,
    forkserverRounds: quick ? 20 : 200,
    forkserverInflight: 8,
    forkserverRunsPerBatch: quick ? 32 : 128,
    forkserverBatches: quick ? 1 : 5,
    commsRounds: quick ? 2 : 10,
    commsRoundTrips: [quick ? 50 : 200, quick ? 5 : 20],
    commsStreamed: [quick ? 1024 : 4096, quick ? 16 : 64],
    netRounds: quick ? 2 : 10,
    netDownloadMiB: 256,
    netRequests: quick ? 50 : 200,
    containmentRounds: quick ? 2 : 6,
    containmentRunsPerRound: quick ? 20 : 50,
    containmentInflight: 8,
    learnRounds: quick ? 2 : 7,
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  const { quick, only } = parseArgs(process.argv.slice(2));
  const settings = settingsFor(quick);
  const bwrap = requireTool("bwrap", "apt-get install bubblewrap");
  requireTool(process.env.CC ?? "gcc", "apt-get install gcc");
  ensureBunbox(log);
  const work = makeWorkdir();
  try {
    const machine = await machineFacts(versionOf([bwrap, "--version"]), pkg.version);
    if (machine.busyBeforeStart >= BUSY) {
      log(`warning: other processes keep ${Math.round(machine.busyBeforeStart * 100)}% of the CPUs busy; the figures will be skewed`);
    }
    const benchmarks: Benchmark[] = [];
    if (only.has("cli")) {
      benchmarks.push(await benchCliStartup({ bwrap, hello: work.hello, floor: buildFloor(work.dir), rounds: settings.cliRounds, warmup: 5, log }));
    }
    if (only.has("heap")) {
      benchmarks.push(...(await benchHeap({ mib: settings.heapMiB, rounds: settings.heapRounds, warmup: 10, log })));
    }
    if (only.has("seccomp")) {
      benchmarks.push(
        ...(await benchSeccomp({ work, iterations: settings.seccompIterations, rounds: settings.seccompRounds, log })),
      );
    }
    if (only.has("throughput")) {
      const { throughputInflight: inflight, throughputRunsPerBatch: runsPerBatch, throughputRounds: rounds } = settings;
      benchmarks.push(...(await benchThroughput({ bwrap, inflight, runsPerBatch, rounds, log })));
    }
    if (only.has("forkserver")) {
      const { forkserverRounds: rounds, forkserverInflight: inflight, forkserverRunsPerBatch: runsPerBatch } = settings;
      benchmarks.push(...(await benchForkServer({ work, rounds, inflight, runsPerBatch, batches: settings.forkserverBatches, log })));
    }
    if (only.has("comms")) {
      const [smallTrips, largeTrips] = settings.commsRoundTrips;
      const [smallStreamed, largeStreamed] = settings.commsStreamed;
      benchmarks.push(
        ...(await benchComms({
          work,
          rounds: settings.commsRounds,
          roundTrips: { small: smallTrips!, large: largeTrips! },
          streamed: { small: smallStreamed!, large: largeStreamed! },
          log,
        })),
      );
    }
    if (only.has("net")) {
      benchmarks.push(...(await benchNet({ rounds: settings.netRounds, downloadMiB: settings.netDownloadMiB, requests: settings.netRequests, log })));
    }
    if (only.has("containment")) {
      const { containmentRounds: rounds, containmentRunsPerRound: runsPerRound, containmentInflight: inflight } = settings;
      benchmarks.push(...(await benchContainment({ rounds, runsPerRound, inflight, log })));
    }
    if (only.has("learn")) {
      benchmarks.push(...(await benchLearn({ rounds: settings.learnRounds, log })));
    }
    const results: Results = { machine, settings, durationS: (performance.now() - started) / 1000, benchmarks };
    process.stdout.write(`${formatTable(results)}\n`);
    if (!quick && only.size === SECTIONS.length) {
      const out = join(ROOT, "bench", "results.json");
      writeFileSync(out, toJson(results));
      log(`wrote ${out}`);
    }
  } finally {
    work.remove();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    log(e instanceof BenchError ? e.message : `internal error: ${(e as Error)?.stack ?? e}`);
    process.exit(1);
  },
);
