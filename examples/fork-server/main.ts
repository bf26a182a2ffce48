#!/usr/bin/env bun
/**
 * Fork server: starts primes.c once (it spends tens of milliseconds building
 * a table of primes), then answers N queries at once, each in a fresh child
 * forked from the prepared server and sandboxed under its own, much tighter
 * policy. See README.md.
 *
 *   bun examples/fork-server/main.ts [N]
 *
 * N (default 14) queries go out together, cycling through numbers whose
 * prime counts are known, plus one out of range; every answer, every child's
 * Result (OK, exit code 0) and the freshness of each child (its own pid) are
 * checked. Exit code 0 when all is right, 1 otherwise, 2 for bad usage.
 */
import { join } from "node:path";
import { Executor, ForkServer, PolicyBuilder, Sandbox } from "../../src/index.ts";
import { compileC, runMain } from "../shared/compile.ts";

/** n -> the number of primes <= n. */
const KNOWN: [number, number][] = [
  [2, 1], [97, 25], [1000, 168], [7919, 1000], [100_000, 9592], [104_729, 10_000], [1_000_000, 78_498],
  [1_299_709, 100_000], [10_000_000, 664_579], [15_485_863, 1_000_000], [16_777_215, 1_077_871],
  [10, 4], [10_000, 1229],
];
/** The server's table ends here: a query for it must come back as an error. */
const OUT_OF_RANGE = 1 << 24;

interface Answer {
  n: number;
  primes?: number;
  error?: string;
  init_ms?: number;
}

interface Outcome {
  n: number;
  answer: Answer | undefined;
  pid: number | undefined;
  ms: number;
  result: string;
  problem: string | undefined;
}

/** One query in one fresh child. */
async function query(server: ForkServer, policy: ReturnType<PolicyBuilder["build"]>, n: number): Promise<Outcome> {
  const t0 = performance.now();
  const sandbox = new Sandbox(server.executor({ limits: { wallTimeMs: 5000 } }), policy);
  sandbox.runAsync();
  let answer: Answer | undefined;
  let failure: string | undefined;
  try {
    await sandbox.ready();
    await sandbox.comms!.sendUint64(n);
    answer = await sandbox.comms!.recvJson<Answer>({ timeoutMs: 5000 });
  } catch (e) {
    failure = (e as Error).message;
    sandbox.kill();
  }
  const result = await sandbox.awaitResult();
  const ms = performance.now() - t0;
  const expected = n === OUT_OF_RANGE ? undefined : KNOWN.find(([k]) => k === n)?.[1];
  let problem = failure;
  if (!problem && !result.ok) problem = `the child ended ${result.toString()}`;
  if (!problem && answer?.n !== n) problem = `answered for n=${answer?.n}`;
  if (!problem && expected === undefined && !answer?.error) problem = "expected an out-of-range error";
  if (!problem && expected !== undefined && answer?.primes !== expected) problem = `said ${answer?.primes}, expected ${expected}`;
  return { n, answer, pid: sandbox.pid, ms, result: result.toString(), problem };
}

async function main(): Promise<number> {
  const arg = process.argv[2];
  const count = arg === undefined ? KNOWN.length + 1 : Number(arg);
  if (!Number.isInteger(count) || count < 1 || count > 1000 || process.argv.length > 3) {
    process.stderr.write("usage: bun examples/fork-server/main.ts [N]   (1 <= N <= 1000 queries)\n");
    return 2;
  }
  const primes = compileC({ name: "primes", sources: [join(import.meta.dir, "primes.c")] });

  // The server: the default view (it is a dynamic binary) plus the program.
  // It never gets a seccomp filter; its children each get childPolicy.
  const serverPolicy = new PolicyBuilder().addFileAt(primes, "/example/primes").build();
  // A child only answers one query over comms: no read/write on other fds,
  // no open, no fork, no exec.
  const childPolicy = new PolicyBuilder().allowComms().allowSystemMalloc().allowExit().build();

  const t0 = performance.now();
  const server = await ForkServer.start(new Executor("/example/primes", ["primes"]), serverPolicy);
  const startMs = performance.now() - t0;
  let outcomes: Outcome[];
  try {
    const numbers = Array.from({ length: count }, (_, i) => (i === count - 1 && count > 1 ? OUT_OF_RANGE : KNOWN[i % KNOWN.length]![0]));
    const t1 = performance.now();
    outcomes = await Promise.all(numbers.map((n) => query(server, childPolicy, n)));
    const allMs = performance.now() - t1;

    const initMs = outcomes.find((o) => o.answer?.init_ms !== undefined)?.answer?.init_ms;
    process.stdout.write(
      `fork server ready in ${startMs.toFixed(0)} ms (its table took ${initMs?.toFixed(0) ?? "?"} ms to build, once)\n`,
    );
    for (const o of outcomes) {
      const what = o.answer?.error ? `error: ${o.answer.error}` : `primes up to ${o.n}: ${o.answer?.primes}`;
      const line = `  ${what} (child pid ${o.pid}, ${o.ms.toFixed(1)} ms, ${o.result})`;
      process.stdout.write(`${line}${o.problem ? `  WRONG: ${o.problem}` : ""}\n`);
    }
    process.stdout.write(`${count} queries in ${allMs.toFixed(0)} ms, all in flight at once\n`);
  } finally {
    server.close();
  }

  const problems = outcomes.filter((o) => o.problem).length;
  const pids = new Set(outcomes.map((o) => o.pid));
  if (pids.size !== outcomes.length) {
    process.stdout.write(`WRONG: ${outcomes.length} queries ran in only ${pids.size} distinct children\n`);
    return 1;
  }
  if (problems) {
    process.stdout.write(`WRONG: ${problems} of ${count} queries\n`);
    return 1;
  }
  process.stdout.write(`all ${count} answers right, each from a fresh child\n`);
  return 0;
}

if (import.meta.main) runMain("fork-server", main);
