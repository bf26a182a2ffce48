/**
 * Learning mode: from runs of a program to the tightest policy that lets
 * them pass (README.md "Writing a policy").
 *
 *   const learner = new Learner({ policy: profilePolicy("default", cwd) });
 *   await learner.run(new Executor("python3", ["python3", "-c", "print(1)"]));
 *   await learner.run(new Executor("python3", ["python3", "-c", "import json"]));
 *   const file = learner.policyFile();      // JSON, by name: any arch
 *   const policy = learner.policy();        // built for this one
 *
 * Each run is sandboxed as `policy` says (its filesystem, network, ids and
 * relaxations) but with a filter that asks the monitor about every call
 * beyond the safety rules (the default action TRACE): the monitor records
 * the call (recorder.ts) and lets it run (SECCOMP_USER_NOTIF_FLAG_CONTINUE),
 * so the program does what it would do unsandboxed by seccomp. That is safe
 * here for the kernel's own reason: the answer rests on nothing the
 * sandboxee can change after the kernel looked (no pointer argument is
 * read to decide), and every call it lets through is one the learned
 * policy will allow. The safety rules keep their verdicts: a call they
 * refuse ends the run as a VIOLATION, is reported, and is not learned.
 *
 * A run costs a round trip to the monitor per syscall; `learn` measures it
 * (README.md has the figures).
 */
import type { Policy } from "../policy/policy.ts";
import { policyFromJson } from "../policy/file.ts";
import { TRACE } from "../policy/rules.ts";
import { DEFAULT_PATH, Executor } from "../sandbox/executor.ts";
import type { Result } from "../sandbox/result.ts";
import type { Runtime } from "../sandbox/runtime.ts";
import { Sandbox } from "../sandbox/sandbox.ts";
import { derivePolicyFile, type LearnedFile } from "./derive.ts";
import { View } from "./filesystem.ts";
import { emptyObservations, mergeObservations, type Observations } from "./observations.ts";
import { Recorder } from "./recorder.ts";
import { profilePolicy } from "../policy/precompiled.ts";
import { posix } from "node:path";

export interface LearnerOptions {
  /**
   * The sandbox the runs get: filesystem, network, hostname, ids, and the
   * safety rules it relaxes (which the learned policy then relaxes too).
   * Its own syscall rules are not used: every call is recorded. Default:
   * the default profile's.
   */
  policy?: Policy;
  /** Observations to add to (a learned policy's notes: `bunbox learn --merge`). */
  merge?: Observations;
  /** What a call outside the learned policy gets (default "kill"). */
  onRefusal?: "errno" | "kill";
  /** Learn the filesystem too (default true): the policy then runs on an empty root with what the runs used. */
  filesystem?: boolean;
  runtime?: Runtime;
  /** Where no cgroup can bound the sandbox, run anyway with weaker limits (Sandbox's option of the same name). */
  allowWeakerLimits?: boolean;
}

export interface LearnRun {
  result: Result;
  /** The run's number among all the learner's (merged ones included), from 1. */
  run: number;
  /** Problems of the recorder (a /proc entry it could not read): the learned filesystem may miss a path. */
  problems: readonly string[];
}

export class Learner {
  private notes: Observations;
  private readonly base: Policy;
  private readonly view: View;

  constructor(private readonly options: LearnerOptions = {}) {
    this.base = options.policy ?? profilePolicy("default", process.cwd());
    this.notes = options.merge ? mergeObservations(options.merge, emptyObservations(this.base.arch.name)) : emptyObservations(this.base.arch.name);
    this.view = new View(this.base.mountPlan(options.runtime));
  }

  /** The policy a learning run is sandboxed with: the base's settings, everything beyond the safety rules asked about. */
  learningPolicy(): Policy {
    return this.base.derive({ rules: new Map(), defaultAction: TRACE, audit: false, origin: `learning (${this.base.origin})` });
  }

  /** Runs `executor` once, recording every call it makes; `started` gets the Sandbox (to signal it). */
  async run(executor: Executor, started?: (sandbox: Sandbox) => void): Promise<LearnRun> {
    const run = this.notes.runs.length + 1;
    const recorder = new Recorder(this.notes, run);
    const safety: Observations["safety"] = [];
    const sandbox = new Sandbox(
      executor,
      this.learningPolicy(),
      {
        onRecord: recorder.hook,
        onViolation: (v) => {
          const relax = v.suggestion?.policy.dangerAllowUnsafe as string[] | undefined;
          safety.push({ run, call: v.decoded ?? v.syscall, rule: v.rule, ...(relax ? { relax: relax[0] } : {}) });
        },
      },
      { ...(this.options.runtime ? { runtime: this.options.runtime } : {}), allowWeakerLimits: this.options.allowWeakerLimits ?? false },
    );
    started?.(sandbox);
    const result = await sandbox.run();
    this.notes.runs.push({ command: [...executor.argv], result: result.toString() });
    this.notes.safety.push(...safety);
    this.addExecs(executor, run);
    return { result, run, problems: recorder.problems };
  }

  /**
   * What the exec of the command itself opened without a syscall the filter
   * saw (bunbox's own exec, PATH looked up by the shim), and the
   * interpreters of everything exec'd (a `#!` line, an ELF's ld.so).
   */
  private addExecs(executor: Executor, run: number): void {
    const add = (path: string, op: "exec" | "stat") => {
      const p = (this.notes.paths[path] ??= { ops: [], count: 0, runs: [] });
      p.count++;
      if (!p.runs.includes(run)) p.runs.push(run);
      if (!p.ops.includes(op)) p.ops.push(op);
    };
    const program = this.lookup(executor);
    if (program) add(program, "exec");
    if (executor.cwd !== "/") add(executor.cwd, "stat");
    for (const [path, note] of Object.entries(this.notes.paths)) {
      if (!note.ops.includes("exec")) continue;
      for (const interp of this.view.interpreters(path)) add(interp, "exec");
    }
  }

  /** The command as the shim finds it: a path with a slash as it is, else the first match in the sandboxee's PATH. */
  private lookup(executor: Executor): string | undefined {
    const cmd = executor.path;
    if (cmd.includes("/")) return posix.resolve(executor.cwd, cmd);
    for (const dir of (executor.env.PATH ?? DEFAULT_PATH).split(":")) {
      if (!dir.startsWith("/")) continue;
      const candidate = posix.join(dir, cmd);
      if (this.view.hostFile(candidate)) return candidate;
    }
    return undefined;
  }

  /** Everything observed so far (the learned policy's notes). */
  get observations(): Observations {
    return this.notes;
  }

  /** The learned policy file (JSON, any arch). */
  policyFile(): LearnedFile {
    const learnFs = this.options.filesystem ?? true;
    return derivePolicyFile(this.notes, {
      ...(this.options.onRefusal ? { onRefusal: this.options.onRefusal } : {}),
      ...(learnFs ? { view: this.view } : {}),
      base: this.base,
    });
  }

  /** The learned policy, built for this machine's arch. */
  policy(source = "learned policy"): Policy {
    return policyFromJson(this.policyFile(), source);
  }
}

/** One learning run of `executor`: its Result, the learned policy file and the policy built from it. */
export async function learn(executor: Executor, options: LearnerOptions = {}): Promise<{ result: Result; file: LearnedFile; policy: Policy; learner: Learner }> {
  const learner = new Learner(options);
  const { result } = await learner.run(executor);
  const file = learner.policyFile();
  return { result, file, policy: policyFromJson(file, "learned policy"), learner };
}


