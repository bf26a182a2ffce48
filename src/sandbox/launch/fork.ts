/**
 * Fork-server mode, both of its runs (the protocol and the ForkServer
 * class are in ../fork-server.ts):
 * - ServerLauncher starts the prepared program itself, in its namespaces and
 *   mounts, with no filter (each child gets its own);
 * - ForkLauncher runs one child: the server forks it, already initialised,
 *   under the child policy, and bunbox takes its seccomp listener.
 *
 * A child is not exec'd: it keeps the server's environment, working
 * directory and fds, and gets its own comms. A ForkExecutor therefore
 * refuses what it could not honour (env, cwd, sandboxBeforeExec, ipc fds)
 * rather than ignore it.
 */
import type { Comms, CommsOptions } from "../../comms/comms.ts";
import { UsageError } from "../../errors.ts";
import type { Spawned } from "../../native/spawn.ts";
import { closeFd, pidfdPid } from "../../native/sys.ts";
import type { Policy } from "../../policy/policy.ts";
import { errno } from "../../policy/rules.ts";
import { Executor, type ExecutorOptions, Ipc } from "../executor.ts";
import type { ForkServer } from "../fork-server.ts";
import { randomMagic } from "../request.ts";
import { Result } from "../result.ts";
import { armFilter, type LaunchContext, type Launcher } from "./launcher.ts";
import { settleSpawn, trySpawn } from "./spawn.ts";

const EPERM = 1;

/** The fork server's own run: spawned with no filter at exec, ready once spawned (ForkServer.start waits for its word). */
export class ServerLauncher implements Launcher {
  check(): void {}

  async launch(run: LaunchContext): Promise<void> {
    const t0 = performance.now();
    const spawned = settleSpawn(run, await trySpawn(run, { notify: true, magic: randomMagic() }), t0);
    if (spawned && run.watch(spawned, { filter: undefined, notify: true }).live) run.ready();
  }
}

const forkChildPolicies = new WeakMap<Policy, Policy>();

/**
 * A fork-server child's policy: the given one with setsid and setpgid
 * failing (EPERM). A child's descendants must stay in its process group,
 * which the server kills when the child ends: one that left it would outlive
 * its Result (the server shares one pid namespace with all its children).
 */
export function forkChildPolicy(policy: Policy): Policy {
  let p = forkChildPolicies.get(policy);
  if (!p) {
    const rules = new Map(policy.rules);
    for (const name of ["setsid", "setpgid"]) {
      const nr = policy.arch.syscalls[name];
      if (nr !== undefined) rules.set(nr, [{ kind: "action", action: errno(EPERM) }, ...(rules.get(nr) ?? [])]);
    }
    p = policy.derive({ rules });
    forkChildPolicies.set(policy, p);
  }
  return p;
}

export class ForkLauncher implements Launcher {
  /** The child's own comms, once forked. */
  comms: Comms | undefined;

  constructor(private readonly server: ForkServer) {}

  check(notify: boolean | undefined): void {
    // The child waits in its confirming execveat until bunbox holds its listener.
    if (notify === false) throw new UsageError("notify", "a fork-server child needs seccomp user notification; notify: false is not possible");
  }

  async launch(run: LaunchContext): Promise<void> {
    const armed = armFilter(forkChildPolicy(run.policy).filter(true));
    let forked;
    try {
      forked = await this.server.fork(armed, run.executor.limits);
    } catch (e) {
      const message = (e as Error).message;
      run.end(Result.setupError({ stage: "fork", errno: 0, errnoName: "", detail: "", message }, performance.now() - run.queuedAt));
      return;
    }
    const { Comms } = require("../../comms/comms.ts") as typeof import("../../comms/comms.ts");
    const comms = (this.comms = new Comms(forked.commsFd));
    const spawned: Spawned = {
      pidfd: forked.pidfd,
      pid: pidfdPid(forked.pidfd),
      listener: -1,
      report: -1,
      sandboxeePid: forked.pid,
      sandboxeePidfd: -1,
      ptyMaster: -1,
    };
    let watched;
    try {
      watched = run.watch(spawned, {
        filter: armed.program,
        notify: true,
        exitReport: () => this.server.exitReport(forked.pid),
        pendingStage: "fork",
      });
    } catch (e) {
      closeFd(forked.listener);
      comms.close();
      throw e;
    }
    // The child may have answered just before it ended: keep that for the caller.
    watched.monitor.result.then(() => comms.finish());
    if (!watched.live) return closeFd(forked.listener); // killed or refused: it dies in its confirming execveat
    // The child waits in its confirming execveat until we watch its listener.
    watched.monitor.attachListener(forked.listener, forked.theirListenerFd, armed.magic, () => run.ready());
  }
}

/** Why each Executor option is refused for a fork-server child. */
const NOT_FOR_A_CHILD: Record<string, string> = {
  env: "a fork-server child keeps the server's environment (it is forked, not exec'd): give env to the server's Executor",
  cwd: "a fork-server child keeps the server's working directory (it is forked, not exec'd): give cwd to the server's Executor",
  sandboxBeforeExec: "a fork-server child is forked under its policy; there is no exec to apply it before",
};

/** The Executor of fork-server runs: the server's program, its own limits, nothing else (ForkServer.executor()). */
export class ForkExecutor extends Executor {
  override readonly ipc: Ipc = new ForkChildIpc();

  constructor(
    readonly server: ForkServer,
    options: Pick<ExecutorOptions, "limits"> = {},
  ) {
    for (const [key, value] of Object.entries(options)) {
      if (key !== "limits" && value !== undefined) throw new UsageError(key, NOT_FOR_A_CHILD[key] ?? "not an option of a fork-server child (only limits)");
    }
    const limits = options.limits;
    for (const key of ["memory", "cpus"] as const) {
      const v = limits?.[key];
      if (v !== undefined && v !== (key === "memory" ? Infinity : 0)) {
        throw new UsageError(`limits.${key}`, "a fork-server child runs in its server's cgroup: give the whole sandbox's limits to the server's Executor");
      }
    }
    const parent = server.sandbox.executor;
    super(parent.path, parent.argv, { env: { ...parent.env }, cwd: parent.cwd, limits: options.limits });
  }
}

const NO_FDS =
  "a fork-server child gets no fds from the host: it keeps the server's and gets its own comms (sandbox.comms, once ready)";

/** A fork-server child's Ipc: every fd refused, before anything is opened. */
class ForkChildIpc extends Ipc {
  override mapFd(): this {
    throw new UsageError("ipc.mapFd", NO_FDS);
  }
  override receiveFd(): number {
    throw new UsageError("ipc.receiveFd", NO_FDS);
  }
  override comms(_options?: CommsOptions): Comms {
    throw new UsageError("ipc.comms", NO_FDS);
  }
}
