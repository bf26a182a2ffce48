/**
 * Child process of benchmark 2: a Bun process holding the asked amount of
 * live memory, which times in-process sandbox runs of /bin/true on request.
 * One process per heap size, all alive at once, so the driver (heap.ts) can
 * interleave their runs one by one: a burst of load on the machine then hits
 * every heap size alike. The benchmark's own process never carries ballast.
 *
 *   bun scripts/bench/heap-worker.ts none|buffers|objects MIB WARMUP
 *
 * Protocol, one JSON object per line on stdout:
 *   at start   {"ready":true}                     (ballast grown, warm-up done)
 *   "run"   →  {"run":ms,"build":ms,"spawn":ms}   one sample of each
 *   "stats" →  {"rssMiB":…,"heapUsedMiB":…,"fdsGained":…}   after a full collection
 *
 * The three figures of a sample:
 *   run    Sandbox.run() of /bin/true, start to Result (the library's whole path)
 *   build  buildRequest(): serialising executor + policy into the spawn request
 *   spawn  the shim's spawn alone, as its spawner thread times it: clone →
 *          namespaces, mounts, filter → both execs done (init and the
 *          sandboxee); the exit is then awaited by polling waitPidfd
 */
import { readdirSync } from "node:fs";
import { isFailure, spawnAsync } from "../../src/native/spawn.ts";
import { closeFd, waitPidfd } from "../../src/native/sys.ts";
import { profileBuilder } from "../../src/policy/profiles.ts";
import { Executor } from "../../src/sandbox/executor.ts";
import { armFilter } from "../../src/sandbox/launch/launcher.ts";
import { SETUP_TIMEOUT_MS } from "../../src/sandbox/limits.ts";
import { buildRequest } from "../../src/sandbox/request.ts";
import { Sandbox } from "../../src/sandbox/sandbox.ts";

export type Ballast = "none" | "buffers" | "objects";

export interface Sample {
  run: number;
  build: number;
  spawn: number;
}

export interface WorkerStats {
  rssMiB: number;
  heapUsedMiB: number;
  /** Open fds now minus after the warm-up: a leak in either path shows here. */
  fdsGained: number;
}

const MiB = 2 ** 20;

/** Module scope, so the ballast stays reachable (alive) as long as the process. */
let ballast: unknown[] = [];

/**
 * Grows the process to `mib` of resident memory. Buffers: 16 MiB ArrayBuffers,
 * every page written (mapped but untouched memory would cost a clone
 * nothing). Objects: small JS objects on the garbage-collected heap, which
 * also makes every collection walk ~1 GiB; RSS, not heapUsed, says when to
 * stop, because heapUsed only moves after a collection.
 */
function grow(kind: Ballast, mib: number): unknown[] {
  const keep: unknown[] = [];
  if (kind === "buffers") {
    for (let got = 0; got < mib; got += 16) keep.push(new Uint8Array(16 * MiB).fill(1));
  } else if (kind === "objects") {
    const objects: { i: number; values: number[] }[] = [];
    keep.push(objects);
    while (process.memoryUsage.rss() < mib * MiB) {
      for (let i = 0; i < 250_000; i++) objects.push({ i, values: [i, i + 1, i + 2, i + 3, i + 4, i + 5, i + 6, i + 7] });
    }
  }
  return keep;
}

async function waitExit(pidfd: number): Promise<void> {
  for (;;) {
    const w = waitPidfd(pidfd);
    if (typeof w === "number") throw new Error(`waitid on the sandbox's pidfd: errno ${-w}`);
    if (w.reaped) return;
    await Bun.sleep(0.25);
  }
}

const policy = profileBuilder("default").build();

async function sample(): Promise<Sample> {
  const t0 = performance.now();
  const result = await new Sandbox(new Executor("/bin/true", ["true"]), policy).run();
  const t1 = performance.now();
  if (result.status !== "OK") throw new Error(`Sandbox.run(): ${result.toString()}`);

  const t2 = performance.now();
  const armed = armFilter(policy.filter(true));
  const request = buildRequest(new Executor("/bin/true", ["true"]), policy, {
    notify: true, ...armed, mounts: policy.mountPlan(), setupTimeoutMs: SETUP_TIMEOUT_MS,
  });
  const t3 = performance.now();
  const spawned = await spawnAsync(request.bytes);
  if (isFailure(spawned)) throw new Error(`spawn: ${spawned.message}`);
  await waitExit(spawned.pidfd);
  for (const fd of [spawned.pidfd, spawned.listener, spawned.report, spawned.sandboxeePidfd]) closeFd(fd);
  return { run: t1 - t0, build: t3 - t2, spawn: spawned.phasesMs!.exec };
}

function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

function reply(value: object): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

async function main(): Promise<void> {
  const [kind = "none", mib = "1024", warmup = "10"] = process.argv.slice(2);
  ballast = grow(kind as Ballast, Number(mib));
  for (let i = 0; i < Number(warmup); i++) await sample();
  const fdsAtStart = openFds();
  reply({ ready: true });
  for await (const line of console) {
    if (line === "run") reply(await sample());
    else if (line === "stats") {
      Bun.gc(true);
      const stats: WorkerStats = {
        rssMiB: process.memoryUsage.rss() / MiB,
        heapUsedMiB: process.memoryUsage().heapUsed / MiB,
        fdsGained: openFds() - fdsAtStart,
      };
      reply(stats);
    } else throw new Error(`heap worker: unknown request ${JSON.stringify(line)}`);
  }
  process.exit(0);
}

if (import.meta.main) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error)?.stack ?? e}\n`);
    process.exit(1);
  });
}
