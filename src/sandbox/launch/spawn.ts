/**
 * The spawn shared by the modes that start a fresh sandbox (exec, sandbox
 * me here, the fork server's own run): the request built from the run's
 * executor, policy and mount plan, handed to the shim's spawner threads,
 * tried again while fds are short.
 */
import { ContainmentError } from "../../containment/error.ts";
import type { RunContainment } from "../../containment/containment.ts";
import { errnoName } from "../../native/errno.ts";
import { isFailure, type SetupFailure, type Spawned, spawnAsync } from "../../native/spawn.ts";
import { SETUP_TIMEOUT_MS } from "../limits.ts";
import { buildRequest, type SpawnSettings } from "../request.ts";
import { Result } from "../result.ts";
import type { LaunchContext } from "./launcher.ts";

/** A spawn that failed for want of fds is tried again for this long. */
const SCARCE_WAIT_MS = 10_000;

/**
 * Out of fds (each run in flight holds ~3): runs in flight will free some.
 * Not out of processes (EAGAIN from clone): a process at its RLIMIT_NPROC
 * cannot start threads either, and Bun aborts when it cannot (seen here),
 * so such a run fails at once and frees the pressure.
 */
function scarce(f: SetupFailure): boolean {
  return f.errnoName === "EMFILE" || f.errnoName === "ENFILE";
}

/**
 * Builds the run's request and spawns it. Rather than fail a run that could
 * start a moment later, a spawn short of fds waits for runs in flight to end
 * and free some, and tries again (not once the run is killed).
 */
export async function trySpawn(run: LaunchContext, settings: Pick<SpawnSettings, "notify" | "magic" | "program">): Promise<Spawned | SetupFailure> {
  const t0 = performance.now();
  for (let waitMs = 5; ; waitMs = Math.min(waitMs * 2, 100)) {
    const spawned = await spawnOnce(run, settings);
    if (!isFailure(spawned) || !scarce(spawned) || run.killed) return spawned;
    if (performance.now() - t0 >= SCARCE_WAIT_MS) {
      spawned.message += ` (after waiting ${SCARCE_WAIT_MS / 1000} s for runs in flight to free some)`;
      return spawned;
    }
    await Bun.sleep(waitMs);
  }
}

/** A failure to contain the run (its cgroup, its uid), as a setup failure of its stage. */
function containmentFailure(e: ContainmentError): SetupFailure {
  return { stage: e.stage, errno: e.errno, errnoName: e.errno ? errnoName(e.errno) : "", detail: e.path, message: e.message };
}

/**
 * One try: the run's cgroup and uid (src/containment/), its request, the
 * spawn. The cgroup and uid go with a failed spawn (nothing of the sandbox
 * is left: the shim reaped its init) and with a successful one's Spawned.
 */
async function spawnOnce(run: LaunchContext, settings: Pick<SpawnSettings, "notify" | "magic" | "program">): Promise<Spawned | SetupFailure> {
  let containment: RunContainment | undefined;
  let spawned: Spawned | SetupFailure;
  try {
    if (run.containment) containment = run.runtime.containment.prepare(run.containment, run.executor.limits);
    const request = buildRequest(run.executor, run.policy, {
      ...settings,
      mounts: run.policy.mountPlan(run.runtime),
      setupTimeoutMs: SETUP_TIMEOUT_MS,
      ...(containment ? { containment } : {}),
    });
    spawned = await spawnAsync(request.bytes);
  } catch (e) {
    containment?.release();
    if (e instanceof ContainmentError) return containmentFailure(e);
    throw e;
  } finally {
    // The cgroup's fds in the request are the shim's to use during the spawn only.
    containment?.cgroup?.closeEntries();
  }
  if (isFailure(spawned)) containment?.release();
  else if (containment) spawned.containment = containment;
  return spawned;
}

/**
 * After the last try: bunbox's copies of the sandboxee's socket ends go (its
 * exit must read as EOF), the time is noted, and a failure becomes the run's
 * Result (undefined then).
 */
export function settleSpawn(run: LaunchContext, spawned: Spawned | SetupFailure, t0: number): Spawned | undefined {
  run.spawnTook(performance.now() - t0, isFailure(spawned) ? undefined : spawned.phasesMs);
  run.executor.ipc.closePeerEnds();
  if (!isFailure(spawned)) return spawned;
  run.end(Result.setupError(spawned, performance.now() - run.queuedAt));
  return undefined;
}
