/**
 * One process from Bun.spawn() to its exit, as a caller sees it: the wall
 * time, and the CPU time the process and the children it reaped used (from
 * wait4's rusage, so a multi-threaded runtime's start-up counts in full).
 * Every command of a comparison goes through this same path, so Bun's own
 * spawn and exit-notification costs are in every figure alike (plain
 * /bin/true shows how much they are).
 */
import { BenchError } from "./setup.ts";

export interface ProcessTiming {
  wallMs: number;
  /** User + system CPU of the process and its reaped descendants. */
  cpuMs: number;
}

/** Runs `argv` to its end; a non-zero exit is an error (with stderr). */
export async function timeProcess(argv: readonly string[]): Promise<ProcessTiming> {
  const t0 = performance.now();
  const proc = Bun.spawn([...argv], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const code = await proc.exited;
  const wallMs = performance.now() - t0;
  if (code !== 0) {
    const err = await new Response(proc.stderr).text();
    throw new BenchError(`${argv.join(" ")} exited ${code}: ${err.trim()}`);
  }
  const usage = proc.resourceUsage();
  return { wallMs, cpuMs: usage ? Number(usage.cpuTime.total) / 1000 : NaN };
}
