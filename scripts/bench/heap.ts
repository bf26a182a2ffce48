/**
 * Benchmark 2: in-process Sandbox.run() of /bin/true with the host process
 * at ~0 and at ~1 GiB of live memory. Spawning must not copy the host's
 * address space (docs/architecture.md, "Why CLONE_VM, and why not
 * CLONE_VFORK": a plain fork of a 2 GiB Bun costs ~30 ms), so the latency
 * should not grow with the host's size.
 *
 * Three worker processes (heap-worker.ts) hold no ballast, 1 GiB of
 * ArrayBuffers and 1 GiB of JS objects; they stay alive together and the
 * driver asks each for one sample per round, in a rotated order, so a burst
 * of load on this machine lands on every heap size alike.
 */
import { join } from "node:path";
import type { Subprocess } from "bun";
import { goal, type Benchmark, type Measurement } from "./report.ts";
import type { Ballast, Sample, WorkerStats } from "./heap-worker.ts";
import { BenchError } from "./setup.ts";
import { summarize } from "./stats.ts";

export interface HeapOptions {
  mib: number;
  rounds: number;
  warmup: number;
  log: (s: string) => void;
}

type Child = Subprocess<"pipe", "pipe", "pipe">;

/** Lines of a child's stdout, one at a time; undefined at its end. */
function lineReader(stream: Child["stdout"]): () => Promise<string | undefined> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  return async () => {
    for (;;) {
      const nl = buffered.indexOf("\n");
      if (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        return line;
      }
      const { value, done } = await reader.read();
      if (done) return undefined;
      buffered += decoder.decode(value, { stream: true });
    }
  };
}

/** A heap-worker child and its line protocol. */
class Worker {
  private readonly readLine: () => Promise<string | undefined>;

  private constructor(
    readonly kind: Ballast,
    private readonly proc: Child,
  ) {
    this.readLine = lineReader(proc.stdout);
  }

  static start(kind: Ballast, o: HeapOptions): Worker {
    const argv = [process.execPath, join(import.meta.dir, "heap-worker.ts"), kind, String(o.mib), String(o.warmup)];
    return new Worker(kind, Bun.spawn(argv, { stdin: "pipe", stdout: "pipe", stderr: "pipe" }));
  }

  /** The next JSON line, or a BenchError carrying the worker's stderr if it died. */
  async next<T>(): Promise<T> {
    const line = await this.readLine();
    if (line === undefined) {
      const err = await new Response(this.proc.stderr).text();
      throw new BenchError(`heap worker (${this.kind}) ended early (exit ${await this.proc.exited}):\n${err.trim()}`);
    }
    return JSON.parse(line) as T;
  }

  request<T>(line: string): Promise<T> {
    this.proc.stdin.write(`${line}\n`);
    this.proc.stdin.flush();
    return this.next<T>();
  }

  async close(): Promise<void> {
    this.proc.stdin.end();
    await this.proc.exited;
  }
}

export async function benchHeap(o: HeapOptions): Promise<Benchmark[]> {
  const kinds: Ballast[] = ["none", "buffers", "objects"];
  o.log(`heap: workers with no ballast and ${o.mib} MiB of buffers / objects, ${o.rounds} rounds`);
  const workers = kinds.map((k) => Worker.start(k, o));
  const samples = new Map<Ballast, Sample[]>(kinds.map((k) => [k, []]));
  const stats = new Map<Ballast, WorkerStats>();
  try {
    await Promise.all(workers.map((w) => w.next<{ ready: true }>()));
    for (let round = 0; round < o.rounds; round++) {
      const shift = round % workers.length;
      for (const w of [...workers.slice(shift), ...workers.slice(0, shift)]) {
        samples.get(w.kind)!.push(await w.request<Sample>("run"));
      }
    }
    for (const w of workers) {
      const st = await w.request<WorkerStats>("stats");
      // A few fds may come and go with the runtime; one per run is a leak.
      if (st.fdsGained >= o.rounds / 2) {
        throw new BenchError(`heap worker (${w.kind}) gained ${st.fdsGained} open fds over ${o.rounds} rounds: a leak`);
      }
      stats.set(w.kind, st);
    }
  } finally {
    await Promise.all(workers.map((w) => w.close()));
  }

  const of = (k: Ballast, key: keyof Sample) => summarize(samples.get(k)!.map((s) => s[key]));
  const baseRss = Math.round(stats.get("none")!.rssMiB);
  const one = (kind: Exclude<Ballast, "none">, what: string): Benchmark => {
    const st = stats.get(kind)!;
    const size = `${Math.round(st.rssMiB)} MiB RSS`;
    const measurements: Measurement[] = [
      { label: `Sandbox.run(), host ~0 (${baseRss} MiB RSS)`, unit: "ms", stat: of("none", "run") },
      { label: `Sandbox.run(), host ${size}`, unit: "ms", stat: of(kind, "run") },
      { label: "  buildRequest(), host ~0", unit: "ms", stat: of("none", "build") },
      { label: `  buildRequest(), host ${size}`, unit: "ms", stat: of(kind, "build") },
      { label: "  spawn (clone to exec), host ~0", unit: "ms", stat: of("none", "spawn") },
      { label: `  spawn (clone to exec), host ${size}`, unit: "ms", stat: of(kind, "spawn") },
    ];
    return {
      id: `heap.${kind}`,
      title: `In-process Sandbox.run() of /bin/true, host at ~0 vs ~${o.mib} MiB of ${what}`,
      measurements,
      derived: [{ label: "ratio spawn 1 GiB / 0", value: of(kind, "spawn").median / of("none", "spawn").median }],
      goal: goal("latency at 1 GiB ≤ 1.25 × at 0", "Sandbox.run() 1 GiB / 0 (medians)", of(kind, "run").median / of("none", "run").median, "<=", 1.25),
      notes: [
        `reached ${Math.round(st.rssMiB)} MiB RSS, ${Math.round(st.heapUsedMiB)} MiB heapUsed after a full collection ` +
          `(baseline ${baseRss} MiB RSS, ${Math.round(stats.get("none")!.heapUsedMiB)} MiB heapUsed)`,
        "Sandbox.run(): queue → buildRequest → spawner thread → /bin/true runs and exits → pidfd event via the reactor thread → Result; " +
          "spawn: the spawner thread's own timing, from clone until both init and the sandboxee have exec'd",
      ],
    };
  };
  return [one("buffers", "ArrayBuffers (every page written)"), one("objects", "small JS objects (garbage-collected heap)")];
}
