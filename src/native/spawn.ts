/**
 * bb_spawn through bun:ffi: hands the request buffer to the shim and decodes
 * struct bb_spawn_out (csrc/plan.h).
 */
import { ptr } from "bun:ffi";
import { describeErrno, errnoName } from "./errno.ts";
import { shim } from "./library.ts";
import { stageHint, stageName } from "./stages.ts";

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

export function spawn(request: Uint8Array): Spawned | SetupFailure {
  const out = new Uint8Array(OUT_SIZE);
  const r = shim().bb_spawn(ptr(request), request.length, ptr(out));
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
