/**
 * The host's side of "sandbox me here" (Sandbox2's SandboxMeHere): the
 * sandboxee started with no filter asks for its policy over comms, announces
 * the fd its seccomp listener will get, and installs the filter; bunbox then
 * takes that listener out of its fd table through its pidfd and starts
 * monitoring. Protocol: csrc/client/bunbox_sandbox.c.
 *
 * After the install the sandboxee may be forbidden every system call; it
 * makes one the filter always sends to the monitor (execveat with the run's
 * magic) and blocks there. bunbox checks that what sits at the announced fd
 * is a seccomp listener, watches it, and answers that call with 0
 * (src/monitor/monitor.ts confirmMagic): the sandboxee goes on only once
 * it is monitored. No listener within LISTENER_WAIT_MS: the sandbox is killed.
 */
import { readlinkSync } from "node:fs";
import type { Comms } from "../comms/comms.ts";
import { describeErrno } from "../native/errno.ts";
import { closeFd, pidfdGetfd } from "../native/sys.ts";
import { encode, type Insn } from "../policy/bpf.ts";

export const ME_HERE_STAGE = "sandbox-me-here";
const LISTENER_WAIT_MS = 2000;
const EBADF = 9;

export class HandshakeError extends Error {}

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
 * `program` is the policy's filter with this run's exec magic.
 */
export async function sandboxMeHereHandshake(
  comms: Comms,
  sandboxeePidfd: number,
  program: readonly Insn[],
  magic: bigint,
  timeoutMs: number,
): Promise<{ listener: number; theirFd: number }> {
  const hello = await comms.recvJson<{ op?: string }>({ timeoutMs });
  if (hello?.op !== "sandbox_me_here") throw new HandshakeError(`expected {"op":"sandbox_me_here"}, got ${JSON.stringify(hello)}`);
  await comms.sendBytes(encode(program));
  await comms.sendUint64(magic);
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
