/**
 * The sandboxee's side of "sandbox me here" and named fds, for Bun programs
 * running inside a sandbox (like client.ts, through libc, never bunbox's
 * shim). Protocol: csrc/client/bunbox_sandbox.c.
 *
 *   const comms = ClientComms.open();
 *   // … initialise: read config, load models, warm up …
 *   sandboxMeHere(comms);                  // from here on the policy applies
 *
 * Bun runs threads of its own: the filter goes on all of them at once
 * (SECCOMP_FILTER_FLAG_TSYNC); if one cannot take it, this throws. The
 * policy must allow what Bun's runtime keeps doing (the default profile
 * does). Call it while no other code is opening fds: bunbox finds the
 * listener at the fd number announced, or kills the sandbox.
 */
import { ptr } from "bun:ffi";
import { type ClientComms } from "./client.ts";
import { CommsError } from "./error.ts";
import { errno, libc } from "./libc.ts";

const SYS_SECCOMP = process.arch === "arm64" ? 277 : 317;
const SYS_EXECVEAT = process.arch === "arm64" ? 281 : 322;
const SECCOMP_SET_MODE_FILTER = 1;
const FLAGS = 0x8 /* NEW_LISTENER */ | 0x1 /* TSYNC */ | 0x10 /* TSYNC_ESRCH */;
const F_DUPFD = 0;

/** Asks bunbox for this run's policy and applies it to every thread. */
export function sandboxMeHere(comms: ClientComms): void {
  comms.sendJson({ op: "sandbox_me_here" });
  const program = comms.recvBytes();
  if (program.length === 0 || program.length % 8 !== 0 || program.length / 8 > 4096) {
    throw new CommsError("protocol", `sandboxMeHere: a BPF program of ${program.length} bytes`);
  }
  const magic = comms.recvUint64();
  const c = libc();
  const k = c.fcntl(0, F_DUPFD, 0);
  if (k >= 0) c.close(k);
  comms.sendJson({ op: "installing", fd: k });
  const fprog = new BigUint64Array(2);
  fprog[0] = BigInt(program.length / 8);
  fprog[1] = BigInt(ptr(program));
  const r = Number(c.syscall(SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, FLAGS, ptr(fprog), 0, 0, 0));
  if (r < 0) throw new CommsError("io", `sandboxMeHere: seccomp() failed (errno ${errno()})`);
  // Blocks until bunbox holds the listener and answers 0 (bunbox_sandbox.c says why).
  const empty = new Uint8Array(1);
  const ok = Number(c.syscall(SYS_EXECVEAT, -1, ptr(empty), 0, 0, 0, magic));
  if (ok !== 0) throw new CommsError("io", `sandboxMeHere: bunbox did not confirm the policy (errno ${errno()})`);
}

/** The fd the executor mapped under `name`, from BUNBOX_FDS. */
export function namedFd(name: string): number | undefined {
  for (const pair of (process.env.BUNBOX_FDS ?? "").split(",")) {
    const eq = pair.indexOf("=");
    if (eq > 0 && pair.slice(0, eq) === name) return Number(pair.slice(eq + 1));
  }
  return undefined;
}
