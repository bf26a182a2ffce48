/**
 * How a run starts: one launcher per mode, behind this interface (as
 * Sandbox2's executor modes, or runc's one process type per way of
 * starting). The Sandbox owns what every mode shares (its Result, ready(),
 * kill() and signals before the start, the hooks, the monitor); a launcher
 * sets the sandboxee up and hands it to the monitor through its
 * LaunchContext.
 *
 * - exec.ts: the filter is installed before execve (the default).
 * - me-here.ts: no filter at execve; the program applies its policy itself
 *   ("sandbox me here", Executor sandboxBeforeExec: false).
 * - fork.ts: a child of a fork server, forked already initialised; and the
 *   fork server's own run.
 */
import type { Comms } from "../../comms/comms.ts";
import type { ContainmentPlan } from "../../containment/containment.ts";
import type { Spawned } from "../../native/spawn.ts";
import type { Insn } from "../../policy/bpf.ts";
import { type Filter, withMagic } from "../../policy/filter.ts";
import type { Policy } from "../../policy/policy.ts";
import type { Monitor, MonitorOptions } from "../../monitor/monitor.ts";
import type { Executor } from "../executor.ts";
import { randomMagic } from "../request.ts";
import type { Result } from "../result.ts";
import type { Runtime } from "../runtime.ts";

export interface Launcher {
  /** Refuses, at runAsync(), a `notify` setting this mode cannot honour (a UsageError naming it). */
  check(notify: boolean | undefined): void;
  /**
   * Sets the run up and hands it to `run.watch`, or ends it with `run.end`.
   * A throw ends the run as INTERNAL_ERROR (killing what started).
   */
  launch(run: LaunchContext): Promise<void>;
  /** The sandboxee's comms, when this mode makes its own (a fork-server child's); else the executor's. */
  readonly comms?: Comms | undefined;
}

/** What the monitor is told of a run, beyond the limits and hooks the Sandbox adds. */
export type WatchOptions = Pick<MonitorOptions, "filter" | "notify" | "pendingStage" | "exitReport">;

/** The Sandbox's side of a launch. */
export interface LaunchContext {
  readonly executor: Executor;
  readonly policy: Policy;
  readonly runtime: Runtime;
  /** How the run is contained (decided when it was started); none for a fork-server child. */
  readonly containment: ContainmentPlan | undefined;
  /** The run's `notify` option, as given. */
  readonly notify: boolean | undefined;
  /** kill() came before the monitor started: stop setting up. */
  readonly killed: boolean;
  /** performance.now() when the run was queued (the Result's wall time counts from it). */
  readonly queuedAt: number;
  /** The shim's spawn took `ms`, in these phases (for `bunbox run -v`). */
  spawnTook(ms: number, phases: Spawned["phasesMs"]): void;
  /** Ends a run that never got a monitor. */
  end(result: Result): void;
  /**
   * Starts the monitor on `spawned` (discarding it if that fails). `live`
   * false: the run is already ending (killed during set-up, refused by the
   * onStart hook) and the monitor will say how.
   */
  watch(spawned: Spawned, options: WatchOptions): { monitor: Monitor; live: boolean };
  /** The sandboxee runs under its policy: ready() resolves. */
  ready(): void;
}

/** A filter with this run's exec magic in it: the one value both the request (or fork) and the monitor use. */
export interface ArmedFilter {
  magic: bigint;
  program: Insn[];
}

export function armFilter(filter: Filter): ArmedFilter {
  const magic = randomMagic();
  return { magic, program: withMagic(filter, magic) };
}
