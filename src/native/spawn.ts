/**
 * Spawning through bun:ffi: hands the request buffer to one of the shim's
 * spawner threads (csrc/spawner.c) and decodes its struct bb_spawn_out
 * (csrc/plan.h) on the JavaScript thread when done, so the event loop runs
 * while the sandbox is being set up. A process that runs one sandbox
 * (`bunbox run`) spawns on the JavaScript thread instead
 * (spawnOnCallingThread).
 */
import { ptr } from "bun:ffi";
import type { RunContainment } from "../containment/containment.ts";
import { BunboxError } from "../errors.ts";
import { BB_MARK_NAMES, BB_SPAWN_OUT } from "./abi.ts";
import { describeErrno, errnoName } from "./errno.ts";
import { shim } from "./library.ts";
import { EPOLLIN, type Watch, watch } from "./reactor.ts";
import { stageHint, stageName } from "./stages.ts";
import { closeFd, pidfdSignal, waitPidfd } from "./sys.ts";

export interface Spawned {
  /** pidfd of the sandbox's init (pid 1 inside). */
  pidfd: number;
  pid: number;
  /** seccomp user-notification fd, or -1. */
  listener: number;
  /** Read end of init's report pipe (non-blocking). */
  report: number;
  /** The sandboxee's pid as bunbox sees it, when known (-1). */
  sandboxeePid: number;
  /** A pidfd for the sandboxee, given only without a filter at exec (sandbox me here, fork server); else -1. */
  sandboxeePidfd: number;
  /** The master of the sandboxee's own terminal (Executor `tty`); else -1. Its user's to close (Sandbox.terminal). */
  ptyMaster: number;
  /** ms from the clone to the end of each phase of the set-up (0: not reached), for `bunbox run -v`. */
  phasesMs?: Record<SpawnPhase, number>;
  /** Its cgroup and kernel uid (src/containment/): released once it is gone. */
  containment?: RunContainment;
  /** --net proxy: the sockets bound in the sandbox's network namespace (docs/network.md), bunbox's to serve and close. */
  net?: NetSockets;
}

export interface NetSockets {
  /** TCP, listening on the proxy's port on the sandbox's 127.0.0.1. */
  proxy: number;
  /** UDP and TCP (listening) on the sandbox's 127.0.0.1:53. */
  dnsUdp: number;
  dnsTcp: number;
}

/** The points of a spawn, in order (csrc/plan.h enum bb_mark). */
export const SPAWN_PHASES = BB_MARK_NAMES;
export type SpawnPhase = (typeof SPAWN_PHASES)[number];

export interface SetupFailure {
  stage: string;
  errno: number;
  errnoName: string;
  detail: string;
  message: string;
}

/** Spawns on the spawner threads, by job id, waiting for their Spawned. */
const inFlight = new Map<number, (s: Spawned | SetupFailure) => void>();
/** The watch on the spawners' eventfd, open while anything is in flight (it keeps the process alive). */
let events: Watch | undefined;

/**
 * At most this many finished spawns are handed on per turn of the event loop:
 * each one's run continues at once (its monitor starts), and a burst of them
 * in one turn would hold up timers and I/O.
 */
const COLLECT_SLICE = 8;

function collect(): void {
  const lib = shim();
  const out = new Uint8Array(BB_SPAWN_OUT.sizeof);
  const rc = new Int32Array(1);
  for (let n = 0, id; n < COLLECT_SLICE && (id = lib.bb_spawn_next(ptr(out), ptr(rc))) !== 0; n++) {
    const settle = inFlight.get(id);
    inFlight.delete(id);
    const s = decode(rc[0]!, out);
    if (settle) settle(s);
    else if (!isFailure(s)) discard(s); // nobody to watch it: it must not run
    if (n === COLLECT_SLICE - 1) return void setImmediate(collect); // more may be done: next turn
  }
  if (inFlight.size === 0) {
    events!.close();
    events = undefined;
  } else if (events!.rearm() < 0) {
    setTimeout(collect, 1); // cannot happen short of ENOMEM; polling still collects every spawn
  }
}

/**
 * Kills a spawned sandbox that will not be monitored, closes its fds and
 * reaps its init (polled: this is the path taken when watching failed).
 */
export function discard(s: Spawned): void {
  pidfdSignal(s.pidfd, 9);
  for (const fd of [s.listener, s.report, s.sandboxeePidfd, s.ptyMaster, ...(s.net ? Object.values(s.net) : [])]) if (fd >= 0) closeFd(fd);
  const reap = () => {
    const w = waitPidfd(s.pidfd);
    if (typeof w !== "number" && !w.reaped) return void setTimeout(reap, 5);
    closeFd(s.pidfd);
    s.containment?.release();
  };
  reap();
}

/** Set by spawnOnCallingThread: how long the first wait for the sandbox's end may block (ms). */
let callingThread: { firstWaitMs: number } | undefined;

/**
 * From now on, this process spawns on the JavaScript thread (csrc/spawn.c
 * bb_spawn), blocking it for the set-up (~3 ms), then for at most
 * `firstWaitMs` while the sandbox neither ends nor asks its monitor: for
 * `bunbox run`, which has nothing else to do meanwhile. No spawner thread
 * starts, no spawn is handed between threads, and a command that ends within
 * the first wait is over before its monitor starts, which then watches
 * nothing (src/monitor/monitor.ts): no reactor thread either. The signals
 * bunbox forwards are handled once the wait ends (a signal that lands on the
 * JavaScript thread ends it at once), its timers too: the wait is kept short,
 * and none where a terminal is relayed (src/cli/run.ts).
 */
export function spawnOnCallingThread(firstWaitMs: number | false): void {
  // false: on the spawner threads again (the library's way; for tests).
  callingThread = firstWaitMs === false ? undefined : { firstWaitMs: Math.max(0, Math.floor(firstWaitMs)) };
}

/**
 * Spawns the request (csrc/plan.h) on a spawner thread, or on this one
 * (spawnOnCallingThread: settled before it returns); the request may be
 * reused at once (the shim copies it).
 */
export function spawnAsync(request: Uint8Array): Promise<Spawned | SetupFailure> {
  const lib = shim();
  if (callingThread) {
    const out = new Uint8Array(BB_SPAWN_OUT.sizeof);
    return Promise.resolve(decode(lib.bb_spawn(ptr(request), request.length, ptr(out), callingThread.firstWaitMs), out));
  }
  // Watched before anything is queued: a spawn nobody collects would leave a
  // sandbox running without its monitor.
  if (!events) {
    const fd = lib.bb_spawn_events();
    if (fd < 0) throw new BunboxError("spawn", `cannot start the spawner threads: ${describeErrno(-fd)}`);
    events = watch(fd, EPOLLIN, collect);
  }
  const id = lib.bb_spawn_submit(ptr(request), request.length);
  if (id === 0) {
    if (inFlight.size === 0) collect();
    throw new BunboxError("spawn", "cannot hand the spawn to a spawner thread: out of memory");
  }
  return new Promise((settle) => inFlight.set(id, settle));
}

/** struct bb_spawn_out as a Spawned or a SetupFailure. */
function decode(r: number, out: Uint8Array): Spawned | SetupFailure {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const i32 = (f: { offset: number }) => view.getInt32(f.offset, true);
  const O = BB_SPAWN_OUT;
  if (r === 0) {
    const phasesMs = Object.fromEntries(
      SPAWN_PHASES.map((name, i) => [name, view.getUint32(O.phase_us.offset + i * 4, true) / 1000]),
    ) as Record<SpawnPhase, number>;
    const proxy = i32(O.net_proxy);
    return {
      ...(proxy >= 0 ? { net: { proxy, dnsUdp: i32(O.net_dns_udp), dnsTcp: i32(O.net_dns_tcp) } } : {}),
      pidfd: i32(O.pidfd),
      pid: i32(O.pid),
      listener: i32(O.listener),
      report: i32(O.report),
      sandboxeePid: i32(O.sandboxee_pid),
      sandboxeePidfd: i32(O.sandboxee_pidfd),
      ptyMaster: i32(O.pty_master),
      phasesMs,
    };
  }
  const stage = stageName(i32(O.stage));
  const errno = i32(O.err);
  const detailBytes = out.subarray(O.detail.offset, O.detail.offset + O.detail.count);
  const end = detailBytes.indexOf(0);
  const detail = new TextDecoder().decode(end < 0 ? detailBytes : detailBytes.subarray(0, end));
  const hint = stageHint(stage, errnoName(errno));
  let message = `${stage}${detail ? ` ${detail}` : ""}: ${describeErrno(errno)}${hint ? `\n  hint: ${hint}` : ""}`;
  if (stage === "lookup" || stage === "exec") {
    message = errno === 2
      ? `${detail}: command not found in the sandbox (${stage}: ENOENT)`
      : `${detail}: cannot execute in the sandbox (${stage}: ${describeErrno(errno)})`;
  }
  return { stage, errno, errnoName: errnoName(errno), detail, message };
}

export function isFailure(s: Spawned | SetupFailure): s is SetupFailure {
  return "stage" in s;
}
