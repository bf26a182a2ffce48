/**
 * `bunbox learn [RUN OPTIONS] -o POLICY.json [--merge FILE]… [--verify] [--format ts] -- COMMAND [ARG...]`
 *
 * Runs the command in the sandbox the run options describe, recording every
 * call (src/learn/), and writes the tightest policy that lets the same run
 * pass. `--merge` adds this run to policies learned before (their notes
 * keep what their runs did); `--verify` runs the command again under the
 * result. stdout and stdin are the command's; bunbox writes to stderr only.
 *
 * Exit: the learning run's code as `bunbox run` gives it (the policy is
 * written even when the command failed: it learned that), 3 when --verify
 * found the learned policy does not run the command as the learning run
 * did, and the usual 2 and 125.
 */
import { accessSync, closeSync, constants, existsSync, fstatSync, ftruncateSync, openSync, statSync, unlinkSync, writeSync } from "node:fs";
import { dirname, extname, resolve } from "node:path";
import { BunboxError, UsageError } from "../errors.ts";
import { coverageReport, policyModule } from "../learn/format.ts";
import { Learner } from "../learn/learner.ts";
import { mergeObservations, type Observations, readObservations } from "../learn/observations.ts";
import { policyFromJson } from "../policy/file.ts";
import type { Policy } from "../policy/policy.ts";
import type { Executor } from "../sandbox/executor.ts";
import type { Result } from "../sandbox/result.ts";
import { Sandbox } from "../sandbox/sandbox.ts";
import { jsonText, visible } from "../sandbox/visible.ts";
import { MAX_INPUT, readFileAtMost } from "../read-text.ts";
import type { Parsed } from "./args.ts";
import { resultHints } from "./result-hints.ts";
import { log, setVerbosity, writeAll } from "./log.ts";
import type { LEARN_ARGS } from "./options.ts";
import { buildExecutor, forwardingSignals, LIMIT_NAMES, resolvePolicy } from "./run.ts";

type LearnOptions = Parsed<typeof LEARN_ARGS>;

/** --verify found that the learned policy does not run the command as the learning run did. */
export const EXIT_NOT_VERIFIED = 3;

/** The notes of a policy `bunbox learn` wrote, JSON or a `--format ts` module. */
async function readNotes(path: string): Promise<Observations> {
  const full = resolve(path);
  if ([".ts", ".js", ".mts", ".mjs"].includes(extname(full))) {
    let mod: Record<string, unknown>;
    try {
      mod = await (await import("../policy/module.ts")).importPolicyModule(full);
    } catch (e) {
      throw new UsageError("--merge", `${path}: cannot load the module: ${(e as Error).message}`);
    }
    return readObservations(mod, path);
  }
  let text: string;
  try {
    const bytes = readFileAtMost(full);
    if (bytes === undefined) throw new UsageError("--merge", `${path}: more than ${MAX_INPUT >> 20}M: not a policy file (a device or a stream without an end?)`);
    text = new TextDecoder().decode(bytes);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError("--merge", `${path}: cannot be read (${(e as NodeJS.ErrnoException).code})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError("--merge", `${path}: not valid JSON: ${(e as Error).message}`);
  }
  return readObservations(json, path);
}

/** Where the policy goes: -o, else the one --merge file (an existing file is replaced). Checked before anything runs. */
function outputPath(o: LearnOptions): string {
  const out = o.strings.output ?? (o.lists.merge.length === 1 ? o.lists.merge[0] : undefined);
  if (out === undefined) throw new UsageError("--output", "where should the learned policy go? give -o FILE (or one --merge FILE to update)");
  // "-" was a file named "-": stdout is the command's own output, which the policy would be mixed into.
  if (out === "-") throw new UsageError("--output", "-: the command's own output goes to stdout; give a file for the policy");
  if (existsSync(out) && statSync(out).isDirectory()) throw new UsageError("--output", `${out}: is a directory; give a file for the policy`);
  try {
    accessSync(dirname(resolve(out)), constants.W_OK);
  } catch (e) {
    throw new UsageError("--output", `${out}: its directory cannot be written (${(e as NodeJS.ErrnoException).code})`);
  }
  return out;
}

/**
 * The output, opened before the learning run, so that a file that cannot be
 * written (a directory that passes access(2) but refuses files: /proc, a
 * read-only mount as root) is an error before the run, not after it. Not
 * truncated until the policy is written: an interrupted bunbox leaves an
 * existing file as it was. `discard` removes a file this opened created.
 */
function openOutput(out: string): { write(text: string): void; discard(): void } {
  const existed = existsSync(out);
  let fd: number;
  try {
    // O_CLOEXEC (0o2000000 on x86_64 and aarch64; node's constants lack it): the sandbox's init closes every other fd anyway.
    fd = openSync(out, constants.O_WRONLY | constants.O_CREAT | 0o2000000, 0o644);
  } catch (e) {
    throw new UsageError("--output", `${out}: cannot be written (${(e as NodeJS.ErrnoException).code})`);
  }
  return {
    write(text) {
      try {
        if (fstatSync(fd).isFile()) ftruncateSync(fd, 0);
        writeSync(fd, text);
      } catch (e) {
        throw new BunboxError("output", `${out}: cannot write the learned policy (${(e as NodeJS.ErrnoException).code})`);
      } finally {
        closeSync(fd);
      }
    },
    discard() {
      closeSync(fd);
      if (!existed) unlinkSync(out);
    },
  };
}

/** Whether the verify run ran as the learning run did: nothing refused, and ended the same way. */
function verdict(learned: Result, verified: Result): string | undefined {
  if (verified.status === "VIOLATION") return `the learned policy refuses a call: ${verified.toString()}`;
  if (verified.refused.length) return `the learned policy refused ${verified.refused.map((r) => r.decoded).join(", ")}`;
  if (verified.status !== learned.status || verified.exitCode !== learned.exitCode) {
    return `the command ended differently: learning run ${learned.toString()}, under the learned policy ${verified.toString()}`;
  }
  return undefined;
}

/** The learning run: the command under `base`, recorded; what it refused is reported. */
async function learnRun(o: LearnOptions, base: Policy, executor: Executor, merged: Observations | undefined) {
  const learner = new Learner({
    policy: base,
    ...(merged ? { merge: merged } : {}),
    ...(o.strings["on-refusal"] ? { onRefusal: o.strings["on-refusal"] as "kill" | "errno" } : {}),
    filesystem: o.strings.filesystem !== "default",
    allowWeakerLimits: o.flags["allow-weaker-limits"] ?? false,
  });
  if (o.flags.verbose) log.debug(`learning with: ${visible(base.origin)}; ${base.relaxations.length ? base.relaxations.map(visible).join("; ") : "no relaxation"}`);

  const t0 = performance.now();
  const sandbox = { current: undefined as Sandbox | undefined };
  const run = await forwardingSignals({ signal: (s) => sandbox.current?.signal(s), kill: (why) => sandbox.current?.kill(why) }, () => learner.run(executor, (s) => (sandbox.current = s)));
  const result = run.result;
  const learnMs = performance.now() - t0;
  if (result.status !== "OK") log.log(result.toString());
  for (const s of learner.observations.safety.filter((x) => x.run === run.run)) {
    const fix = s.relax ? `; to learn it anyway, learn with a policy that relaxes it ("dangerAllowUnsafe": ["${s.relax}"]) and the learned policy will too` : "";
    log.warn(`a safety rule refused ${visible(s.call)}: not learned${fix}`);
  }
  for (const p of run.problems) log.warn(`the learned policy may miss something: ${visible(p)}`);
  if (o.flags.json) writeAll(2, `${jsonText(result)}\n`);

  return { result, file: learner.policyFile(), learner, learnMs };
}

export async function learnCommandLine(o: LearnOptions): Promise<number> {
  setVerbosity(o.flags.quiet ? "quiet" : o.flags.verbose ? "verbose" : "normal");
  const out = outputPath(o);
  const format = o.strings.format ?? ([".ts", ".mts"].includes(extname(out)) ? "ts" : "json");
  let merged: Observations | undefined;
  for (const file of o.lists.merge) {
    const notes = await readNotes(file);
    merged = merged ? mergeObservations(merged, notes) : notes;
  }
  const base = await resolvePolicy(o);
  const executor = buildExecutor(o, base, undefined);
  const allowWeakerLimits = o.flags["allow-weaker-limits"] ?? false;
  // A limit no cgroup can enforce is a usage error naming its option (not the
  // library's field), before the output is touched or anything runs.
  new Sandbox(executor, base, {}, { allowWeakerLimits }).containmentPlan(LIMIT_NAMES);
  const output = openOutput(out);
  let learned;
  try {
    learned = await learnRun(o, base, executor, merged);
  } catch (e) {
    output.discard();
    throw e;
  }
  const { result, file, learner, learnMs } = learned;
  const text = format === "ts" ? policyModule(file) : `${jsonText(file, 2)}\n`;
  output.write(text);
  const allow = (file.allow as string[]).length;
  const conditional = Object.keys((file.allowIf as object | undefined) ?? {}).length;
  const mounts = ((file.filesystem as { mounts?: unknown[] } | undefined)?.mounts ?? []).length;
  const runs = learner.observations.runs.length;
  log.log(
    `learned ${allow + conditional} syscalls (${conditional} with argument rules)` +
      `${file.filesystem ? `, ${mounts} mounts on an empty root` : ""} from ${runs} run${runs === 1 ? "" : "s"} ` +
      `(${learnMs.toFixed(0)} ms): wrote ${visible(out)}`,
  );
  if (o.flags.verbose) log.debug(coverageReport(learner.observations).join("\n"));

  if (o.flags.verify) {
    const policy = policyFromJson(file, out);
    const again = buildExecutor(o, policy, undefined);
    const verifying = new Sandbox(again, policy, {}, { allowWeakerLimits });
    const verified = await forwardingSignals(verifying, () => verifying.run());
    const problem = verdict(result, verified);
    if (problem) {
      log.error(`--verify: ${problem}`);
      const hint = resultHints(verified, { file: out }, true);
      if (hint.length) log.error(hint.join("\n"));
      return EXIT_NOT_VERIFIED;
    }
    log.log(`--verify: the command runs under ${visible(out)} as it did (${verified.toString()})`);
  }
  return result.code;
}
