/**
 * "Sandbox me here" mode (Sandbox2's SandboxMeHere; Executor
 * sandboxBeforeExec: false): the program starts in its namespaces and
 * mounts with no filter, initialises, and applies its policy itself.
 *
 * The host's side of the handshake: the sandboxee asks for its policy over
 * comms, announces the fd its seccomp listener will get, and installs the
 * filter; bunbox then takes that listener out of its fd table through its
 * pidfd and starts monitoring. Protocol: csrc/client/bunbox_sandbox.c.
 *
 * After the install the sandboxee may be forbidden every system call; it
 * makes one the filter always sends to the monitor (execveat with the run's
 * magic) and blocks there. bunbox checks that what sits at the announced fd
 * is a seccomp listener, watches it, and answers that call with 0
 * (src/monitor/monitor.ts confirmMagic): the sandboxee goes on only once
 * it is monitored. No listener within LISTENER_WAIT_MS: the sandbox is killed.
 */
import { readlinkSync } from "../../native/fs.ts";
import type { Comms } from "../../comms/comms.ts";
import { UsageError } from "../../errors.ts";
import { describeErrno } from "../../native/errno.ts";
import { closeFd, pidfdGetfd } from "../../native/sys.ts";
import { encode } from "../../policy/bpf.ts";
import { SETUP_TIMEOUT_MS } from "../limits.ts";
import { type ArmedFilter, armFilter, type LaunchContext, type Launcher } from "./launcher.ts";
import { settleSpawn, trySpawn } from "./spawn.ts";

const ME_HERE_STAGE = "sandbox-me-here";
const LISTENER_WAIT_MS = 2000;
const EBADF = 9;

class HandshakeError extends Error {}

export class MeHereLauncher implements Launcher {
  check(notify: boolean | undefined): void {
    // Without a listener the program would get the ALLOW-on-magic filter, and its magic.
    if (notify === false) throw new UsageError("notify", "sandbox me here needs seccomp user notification; notify: false is not possible");
  }

  async launch(run: LaunchContext): Promise<void> {
    const comms = run.executor.ipc.comms(); // the sandboxee asks for its policy over it
    const armed = armFilter(run.policy.filter(true));
    const t0 = performance.now();
    const spawned = settleSpawn(run, await trySpawn(run, { notify: true, magic: armed.magic }), t0);
    if (!spawned) return;
    const { monitor, live } = run.watch(spawned, { filter: armed.program, notify: true, pendingStage: ME_HERE_STAGE });
    if (!live) return;
    // Until the program asks, the run counts as set-up: no wall-time limit is no reason to wait for ever.
    const timeoutMs = run.executor.limits.wallTimeMs || SETUP_TIMEOUT_MS;
    handshake(comms, spawned.sandboxeePidfd, armed, timeoutMs).then(
      ({ listener, theirFd }) => monitor.attachListener(listener, theirFd, armed.magic, () => run.ready()),
      (e: Error) => monitor.abort(ME_HERE_STAGE, `sandbox me here: ${e.message}`),
    );
  }
}

function isListener(fd: number): boolean {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`) === "anon_inode:seccomp notify";
  } catch {
    return false;
  }
}

/**
 * Runs the handshake; resolves with the listener fd (ours to close) and the
 * fd number of the sandboxee's own copy.
 */
async function handshake(
  comms: Comms,
  sandboxeePidfd: number,
  armed: ArmedFilter,
  timeoutMs: number,
): Promise<{ listener: number; theirFd: number }> {
  const hello = await comms.recvJson<{ op?: string }>({ timeoutMs });
  if (hello?.op !== "sandbox_me_here") throw new HandshakeError(`expected {"op":"sandbox_me_here"}, got ${JSON.stringify(hello)}`);
  await comms.sendBytes(encode(armed.program));
  await comms.sendUint64(armed.magic);
  const installing = await comms.recvJson<{ op?: string; fd?: unknown }>({ timeoutMs });
  const k = installing?.fd;
  if (installing?.op !== "installing" || typeof k !== "number" || !Number.isInteger(k) || k < 0) {
    throw new HandshakeError(`expected {"op":"installing","fd":N}, got ${JSON.stringify(installing)}`);
  }
  const deadline = performance.now() + LISTENER_WAIT_MS;
  for (let delay = 0; ; delay = Math.min(delay * 2 || 1, 20)) {
    const fd = pidfdGetfd(sandboxeePidfd, k);
    if (fd >= 0) {
      if (isListener(fd)) return { listener: fd, theirFd: k };
      closeFd(fd);
    } else if (-fd !== EBADF) {
      throw new HandshakeError(`pidfd_getfd(fd ${k}): ${describeErrno(-fd)}`);
    }
    if (performance.now() > deadline) {
      throw new HandshakeError(`no seccomp listener appeared at fd ${k} (another fd took the number, or the filter failed)`);
    }
    await Bun.sleep(delay);
  }
}
