/**
 * A bundle's linux.resources memory, pids and cpu as the limits of bunbox's
 * sandbox cgroup (README.md, "Containment"): memory.limit is the whole
 * sandbox's memory (--memory-limit), pids.limit its processes
 * (--max-procs), cpu.quota over cpu.period its CPUs (--cpus). What the
 * cgroup cannot carry out as written is a problem naming the field; the
 * sub-fields bunbox has no use for are refused through OCI_FIELDS (spec.ts).
 */
import * as v from "valibot";
import { UsageError } from "../errors.ts";
import { checkCpus, checkMemory, checkProcesses, type LimitsInit } from "../sandbox/limits.ts";

/** int64 in config.json: past 2^53 it arrives as a bigint (bundle.ts parseExact). */
const int64 = v.union([v.pipe(v.number(), v.integer()), v.bigint()]);
const opt = v.optional;
const any = v.unknown();

export const MemorySchema = v.strictObject({
  limit: opt(int64),
  reservation: opt(any),
  swap: opt(int64),
  kernel: opt(any),
  kernelTCP: opt(any),
  swappiness: opt(any),
  disableOOMKiller: opt(any),
  useHierarchy: opt(any),
  checkBeforeUpdate: opt(any),
});
export const CpuSchema = v.strictObject({
  shares: opt(any),
  quota: opt(int64),
  burst: opt(any),
  period: opt(int64),
  realtimeRuntime: opt(any),
  realtimePeriod: opt(any),
  cpus: opt(any),
  mems: opt(any),
  idle: opt(any),
});
export const PidsSchema = v.strictObject({ limit: int64 });

export interface Resources {
  memory?: v.InferOutput<typeof MemorySchema>;
  cpu?: v.InferOutput<typeof CpuSchema>;
  pids?: v.InferOutput<typeof PidsSchema>;
}

/** Runs a check; the usage error it throws is a problem (the bundle lists them all at once). */
export function collect(problems: string[], check: () => unknown): void {
  try {
    check();
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    problems.push(e.message);
  }
}

/** The period runc and Docker use when a quota comes without one (and bunbox's own). */
const DEFAULT_PERIOD_US = 100_000n;

/**
 * The limits linux.resources asks for; each value bunbox cannot enforce as
 * written goes to problems, naming its field. -1 is the spec's "no limit"
 * for memory and cpu; processes are always bounded (the bundle cannot lift
 * bunbox's default of 4096, only name another number).
 */
export function resourceLimits(r: Resources | undefined, problems: string[]): Partial<LimitsInit> {
  const limits: Partial<LimitsInit> = {};
  const m = r?.memory;
  if (m?.limit !== undefined && m.limit !== -1 && m.limit !== -1n) {
    if (BigInt(m.limit) > BigInt(Number.MAX_SAFE_INTEGER)) {
      problems.push(`linux.resources.memory.limit: ${m.limit} is too large (-1: no limit)`);
    } else {
      collect(problems, () => (limits.memory = checkMemory(Number(m.limit), "linux.resources.memory.limit")));
    }
  }
  // bunbox's sandbox has no swap past its memory limit (memsw, swap.max 0):
  // a swap allowance above the limit would not be honoured.
  if (m?.swap !== undefined && (m.limit === undefined || BigInt(m.swap) !== BigInt(m.limit))) {
    problems.push(`linux.resources.memory.swap: ${m.swap}: a sandbox gets no swap past its memory limit; leave swap out or make it memory.limit (${m.limit ?? "not set"})`);
  }

  const c = r?.cpu;
  if (c?.quota !== undefined && c.quota !== -1 && c.quota !== -1n) {
    const period = c.period === undefined ? DEFAULT_PERIOD_US : BigInt(c.period);
    if (BigInt(c.quota) <= 0n || period <= 0n) {
      problems.push(`linux.resources.cpu: quota ${c.quota} over period ${period} µs is not a CPU limit (quota -1: no limit)`);
    } else {
      collect(problems, () => (limits.cpus = checkCpus(Number(c.quota) / Number(period), "linux.resources.cpu (quota/period)")));
    }
  } else if (c?.period !== undefined) {
    problems.push(`linux.resources.cpu.period: ${c.period} without a quota bounds nothing (set cpu.quota, or leave period out)`);
  }

  const p = r?.pids;
  if (p !== undefined) {
    if (BigInt(p.limit) <= 0n) {
      problems.push(`linux.resources.pids.limit: ${p.limit}: bunbox always bounds a sandbox's processes; name a number (its default is 4096)`);
    } else {
      collect(problems, () => (limits.processes = checkProcesses(Number(p.limit), "linux.resources.pids.limit")));
    }
  }
  return limits;
}
