/**
 * bb_spawn through bun:ffi: hands the request buffer to the shim and decodes
 * struct bb_spawn_out (csrc/plan.h). `spawnAsync` runs it on one of the
 * shim's spawner threads (csrc/spawner.c) and resolves on the JavaScript
 * thread when done, so the event loop runs while the sandbox is being set up;
 * `spawn` runs it here and blocks.
 */
import { ptr } from "bun:ffi";
import { BunboxError } from "../errors.ts";
import { describeErrno, errnoName } from "./errno.ts";
import { shim } from "./library.ts";
import { EPOLLIN, type Watch, watch } from "./reactor.ts";
import { stageHint, stageName } from "./stages.ts";
import { closeFd } from "./sys.ts";

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
  /** A pidfd for the sandboxee (-1 if it never got that far). */
  sandboxeePidfd: number;
}

export interface SetupFailure {
  stage: string;
  errno: number;
  errnoName: string;
  detail: string;
  message: string;
}

const OUT_SIZE = 8 * 4 + 512;

const EAGAIN = 11;

export function spawn(request: Uint8Array): Spawned | SetupFailure {
  const out = new Uint8Array(OUT_SIZE);
  return decode(shim().bb_spawn(ptr(request), request.length, ptr(out)), out);
}

/** Like spawn(), on a spawner thread; the request may be reused at once (the shim copies it). */
export function spawnAsync(request: Uint8Array): Promise<Spawned | SetupFailure> {
  const lib = shim();
  const fd = lib.bb_spawn_eventfd();
  if (fd < 0) throw new BunboxError("spawn", `eventfd for a spawn: ${describeErrno(-fd)}`);
  let settle!: (s: Spawned | SetupFailure) => void;
  const result = new Promise<Spawned | SetupFailure>((resolve) => (settle = resolve));
  let job: ReturnType<typeof lib.bb_spawn_submit> = null;
  // Watched before anything is queued: a spawn nobody collects would leave a
  // sandbox running without its monitor.
  let w: Watch;
  try {
    w = watch(fd, EPOLLIN, () => {
      const out = new Uint8Array(OUT_SIZE);
      const r = lib.bb_spawn_collect(job, ptr(out));
      if (r === -EAGAIN) return w.rearm();
      w.close();
      closeFd(fd);
      settle(decode(r, out));
    });
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  const err = new Int32Array(1);
  job = lib.bb_spawn_submit(ptr(request), request.length, fd, ptr(err));
  if (!job) {
    w.close();
    closeFd(fd);
    throw new BunboxError("spawn", `cannot hand the spawn to a spawner thread: ${describeErrno(-err[0]!)}`);
  }
  return result;
}

function decode(r: number, out: Uint8Array): Spawned | SetupFailure {
  const view = new DataView(out.buffer);
  const i32 = (i: number) => view.getInt32(i * 4, true);
  if (r === 0) {
    return { pidfd: i32(0), pid: i32(1), listener: i32(2), report: i32(3), sandboxeePid: i32(6), sandboxeePidfd: i32(7) };
  }
  const stage = stageName(i32(4));
  const errno = i32(5);
  const end = out.indexOf(0, 32);
  const detail = new TextDecoder().decode(out.subarray(32, end < 0 ? OUT_SIZE : end));
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
