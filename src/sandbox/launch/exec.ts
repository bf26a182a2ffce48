/**
 * Exec mode (Sandbox2's sandbox-before-exec, the default): the shim installs
 * the policy's filter before the execve, so the program never runs a single
 * instruction outside it.
 *
 * Violations reach the monitor through seccomp user notification unless the
 * run asks otherwise, its runtime forces the fallback (BUNBOX_NOTIFY=off), or
 * this kernel turned out not to have it: then they kill the process (SIGSYS)
 * and the Result says what is missing. Either way the same syscalls are
 * refused; only what the Result knows of a violation differs.
 */
import { isFailure, type SetupFailure } from "../../native/spawn.ts";
import { armFilter, type LaunchContext, type Launcher } from "./launcher.ts";
import { settleSpawn, trySpawn } from "./spawn.ts";

/**
 * Whether a setup failure means the kernel lacks user notification (before
 * Linux 5.0 seccomp refuses the listener flag; before 5.6 pidfd_getfd is
 * missing), and if so, the words for the Result.
 */
export function notifyMissing(f: SetupFailure): string | undefined {
  if (f.stage === "seccomp" && f.detail === "with user notification" && (f.errnoName === "EINVAL" || f.errnoName === "EOPNOTSUPP")) {
    return "this kernel has no seccomp user notification (Linux 5.0+)";
  }
  if (f.stage === "notify" && f.errnoName === "ENOSYS") {
    return "this kernel has no pidfd_getfd (Linux 5.6+) to take the seccomp listener";
  }
  return undefined;
}

export class ExecLauncher implements Launcher {
  check(): void {}

  async launch(run: LaunchContext): Promise<void> {
    // TRACE rules and audit mode need the monitor's answer: such a policy
    // keeps notification (and fails at setup where the kernel has none).
    const canFallBack = run.notify === undefined && !run.policy.needsMonitor();
    let notify = run.notify ?? !(canFallBack && run.runtime.notifyUnavailable !== undefined);
    const t0 = performance.now();
    for (;;) {
      const armed = armFilter(run.policy.filter(notify));
      const result = await trySpawn(run, { notify, ...armed });
      const missing = isFailure(result) && notify && canFallBack && !run.killed ? notifyMissing(result) : undefined;
      if (missing) {
        run.runtime.markNotifyUnavailable(missing);
        notify = false;
        continue;
      }
      const spawned = settleSpawn(run, result, t0);
      if (spawned && run.watch(spawned, { filter: armed.program, notify }).live) run.ready();
      return;
    }
  }
}
