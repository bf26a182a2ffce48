/**
 * Learning mode (issue #14), for python3, node and a make build:
 *
 *   - runs to a working policy: with `bunbox learn` (learning runs until a
 *     plain run under the result passes), and, for comparison, by hand:
 *     starting from the `dynamic` profile and applying each violation's
 *     suggested change (src/monitor/suggest.ts), a run per violation;
 *   - the learned policy's size against default's (syscalls it can allow);
 *   - the slowdown of a learning run against a plain run of the same
 *     command (default profile), medians of alternating rounds. Every call
 *     of a learning run is a round trip to the monitor; the program's
 *     output must not change.
 */
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Learner } from "../../src/learn/learner.ts";
import { applySuggestion } from "../../src/monitor/suggest.ts";
import { allowedCount } from "../../src/policy/explain.ts";
import { policyFromJson } from "../../src/policy/file.ts";
import type { Policy } from "../../src/policy/policy.ts";
import { profilePolicy } from "../../src/policy/precompiled.ts";
import { Executor } from "../../src/sandbox/executor.ts";
import { Sandbox } from "../../src/sandbox/sandbox.ts";
import type { Benchmark } from "./report.ts";
import { summarize } from "./stats.ts";

interface Workload {
  name: string;
  argv: string[];
  cwd?: string;
}

const size = (p: Policy) => allowedCount(p.filter(true).insns, p.arch);

/** An executor whose stdout goes to a file, and a way to read it once the run is over. */
function capturing(w: Workload, dir: string): { executor: Executor; output: () => string } {
  const path = join(dir, `out-${Math.random().toString(36).slice(2)}`);
  const fd = openSync(path, "w+");
  const executor = new Executor(w.argv[0]!, w.argv, { cwd: w.cwd ?? "/" });
  executor.ipc.mapFd(fd, 1);
  return {
    executor,
    output: () => {
      closeSync(fd);
      const text = readFileSync(path, "utf8");
      rmSync(path);
      return text;
    },
  };
}

/** Learning runs until a plain run under the learned policy passes (at most 5). */
async function runsWithLearn(w: Workload, base: Policy, dir: string): Promise<{ runs: number; policy: Policy }> {
  const learner = new Learner({ policy: base });
  for (let runs = 1; runs <= 5; runs++) {
    const learning = capturing(w, dir);
    await learner.run(learning.executor);
    learning.output();
    const policy = learner.policy();
    const check = capturing(w, dir);
    const r = await new Sandbox(check.executor, policy).run();
    check.output();
    if (r.ok) return { runs, policy };
  }
  throw new Error(`${w.name}: no working policy after 5 learning runs`);
}

/** Runs from the dynamic profile, applying each violation's suggestion (at most 80). */
async function runsWithSuggestions(w: Workload, extraMounts: (p: Policy) => Policy, dir: string): Promise<number> {
  let file: Record<string, unknown> = { profile: "dynamic" };
  for (let runs = 1; runs <= 80; runs++) {
    const policy = extraMounts(policyFromJson(file, "bench", w.cwd ?? "/"));
    const run = capturing(w, dir);
    const r = await new Sandbox(run.executor, policy).run();
    run.output();
    if (r.ok) return runs;
    const s = r.violation?.suggestion;
    if (!s) throw new Error(`${w.name}: ${r.toString()} has no suggestion`);
    file = applySuggestion(file, s);
  }
  return Number.NaN;
}

export async function benchLearn(opts: { rounds: number; log: (s: string) => void }): Promise<Benchmark[]> {
  const work = mkdtempSync(join(tmpdir(), "bunbox-bench-learn-"));
  chmodSync(work, 0o777);
  writeFileSync(join(work, "hello.c"), '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n', { mode: 0o666 });
  writeFileSync(join(work, "Makefile"), "hello: hello.c\n\tcc -O1 -o hello hello.c\n.PHONY: again\nagain:\n\trm -f hello\n\t$(MAKE) hello\n", { mode: 0o666 });
  const withWork = (p: Policy) => {
    const plan = p.mountPlan();
    plan.add({ kind: "bind", src: work, dst: work, rw: true });
    return p.derive({ mounts: plan });
  };
  const workloads: Workload[] = [
    { name: "python3", argv: ["python3", "-c", "import json; print(json.dumps([1]))"] },
    { name: "node", argv: ["node", "-e", "console.log(JSON.stringify([1]))"] },
    { name: "make", argv: ["make", "-s", "again"], cwd: work },
  ];
  const base = withWork(profilePolicy("default", work));
  const defaultSize = size(base);
  const out: Benchmark[] = [];
  try {
    for (const w of workloads) {
      opts.log(`learn: ${w.name}`);
      const learned = await runsWithLearn(w, base, work);
      const byHand = await runsWithSuggestions(w, withWork, work);
      const learnMs: number[] = [];
      const plainMs: number[] = [];
      let same = true;
      let calls = 0;
      for (let i = 0; i < opts.rounds; i++) {
        const plain = capturing(w, work);
        const t0 = performance.now();
        const p = await new Sandbox(plain.executor, base).run();
        plainMs.push(performance.now() - t0);
        const learning = capturing(w, work);
        const learner = new Learner({ policy: base });
        const t1 = performance.now();
        const l = await learner.run(learning.executor);
        learnMs.push(performance.now() - t1);
        calls = Object.values(learner.observations.syscalls).reduce((n, x) => n + x.count, 0);
        const again = capturing(w, work);
        const a = await new Sandbox(again.executor, learner.policy()).run();
        const [po, lo, ao] = [plain.output(), learning.output(), again.output()];
        same &&= p.ok && l.result.ok && a.ok && po === lo && po === ao;
      }
      const l = summarize(learnMs);
      const p = summarize(plainMs);
      out.push({
        id: `learn-${w.name}`,
        title: `learning ${w.name}: ${w.argv.join(" ").slice(0, 60)}`,
        measurements: [
          { label: "learning run", unit: "ms", stat: l },
          { label: "plain run (default profile)", unit: "ms", stat: p },
        ],
        derived: [
          { label: "runs to a working policy with bunbox learn", value: learned.runs },
          { label: "runs to a working policy from dynamic, one suggested change per violation", value: byHand },
          { label: "syscalls the learned policy allows", value: size(learned.policy) },
          { label: "syscalls default allows", value: defaultSize },
          { label: "learning run / plain run (medians)", value: l.median / p.median },
          { label: "syscalls made in a run (each a round trip to the monitor while learning)", value: calls },
          { label: "time a learning run adds per call (medians)", value: ((l.median - p.median) / calls) * 1000, unit: "µs" },
          { label: "same output plain, learning and under the learned policy (1 = yes)", value: same ? 1 : 0 },
        ],
        notes: [],
      });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return out;
}
