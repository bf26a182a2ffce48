/**
 * The calls a run's policy refused without ending it (`"onRefusal":
 * "errno"`, `"audit": true`), for the Result: alike calls (those the same
 * policy change would allow) are one entry with a count, which keeps the
 * first call's details. A sandboxee can make millions of calls, so the
 * entries are bounded: past the bound a call is only counted.
 *
 * Each first call of its kind is described while the task waits (its paths
 * read, /proc/PID/maps consulted); a repeat costs a lookup.
 */
import { ERRNO } from "../native/errno.ts";
import type { Notification } from "../native/sys.ts";
import type { RefusedCall } from "../sandbox/result.ts";
import { describeViolation } from "./violation.ts";
import { archOfAudit, NO_SYSCALL, syscallName } from "../policy/arch.ts";

/** Distinct refused calls a Result lists. */
export const MAX_REFUSED = 256;

export class Refusals {
  private readonly byKey = new Map<string, RefusedCall>();
  private omitted = 0;

  /** Records `n`, answered with `answer` ("EPERM", "ENOSYS", "allowed (audit)"). */
  add(n: Notification, answer: string, listener: number, rule: "refused" | "safety rule" = "refused"): void {
    const key = this.key(n, answer);
    const had = this.byKey.get(key);
    if (had) {
      had.count++;
      return;
    }
    if (this.byKey.size >= MAX_REFUSED) {
      this.omitted++;
      return;
    }
    const v = describeViolation(n, { violationKind: "SYSCALL", rule }, listener);
    this.byKey.set(key, {
      syscall: v.syscall,
      nr: v.nr,
      arch: v.arch,
      args: v.args,
      decoded: v.decoded ?? v.syscall,
      pid: v.pid,
      ...(v.ipMapping ? { ipMapping: v.ipMapping } : {}),
      count: 1,
      answer,
      ...(v.suggestion ? { suggestion: v.suggestion } : {}),
    });
  }

  /** Calls alike: the same syscall with the same values of the arguments a suggestion would name. */
  private key(n: Notification, answer: string): string {
    const arch = archOfAudit(n.arch);
    const name = syscallName(n.arch, n.nr);
    const { exactConditions } = require("./suggest.ts") as typeof import("./suggest.ts");
    const conditions = arch && name ? exactConditions(arch, name, n.args) : undefined;
    return `${n.arch}:${n.nr}:${answer}:${conditions ? JSON.stringify(conditions) : ""}`;
  }

  get list(): RefusedCall[] {
    return [...this.byKey.values()];
  }

  get omittedCount(): number {
    return this.omitted;
  }
}

/** The errno for a refused call: ENOSYS where the arch names no such syscall (libc then falls back), else EPERM. */
export function refusalErrno(n: Notification): number {
  const name = syscallName(n.arch, n.nr);
  return name === undefined || name === NO_SYSCALL ? 38 : 1;
}

export function errnoName(e: number): string {
  return ERRNO.get(e)?.[0] ?? String(e);
}
