/**
 * Reading a string argument (a path) out of a sandboxee that is blocked in a
 * seccomp notification, to describe the call: a violation's `openat(…,
 * "/etc/shadow", …)`, the files `bunbox learn` records.
 *
 * What is read describes; it never decides. The sandboxee's other threads
 * can rewrite that memory at any time, before or after the kernel reads it
 * (TOCTOU), so no verdict may rest on it: the filter decides on the
 * registers alone, and a learned policy allows or refuses a call whatever
 * its pointers point to.
 *
 * The pid in a notification is the task's as bunbox sees it. Had the task
 * died between the notification and the read (a SIGKILL to its sandbox), the
 * pid could already name another process; so the notification is checked
 * to be still pending (SECCOMP_IOCTL_NOTIF_ID_VALID) after the read, and
 * what was read is dropped if not. process_vm_readv needs the same access
 * as ptrace: bunbox has it over the processes it sandboxed (root, or their
 * user namespace's owner and parent).
 */
import { type Notification, notifIdValid, readMemory } from "../native/sys.ts";
import { fromBytes } from "../sandbox/visible.ts";

/** PATH_MAX: a longer "path" is cut there (and marked). */
const MAX = 4096;
/**
 * Reads stop at 4 KiB boundaries (any page size is a multiple): a string may
 * end just before an unmapped page. process_vm_readv documents partial
 * transfers only per iovec; this kernel also stops inside one, but no read
 * here depends on it.
 */
const CHUNK = 4096;

/** The task's memory, while it waits in notification `n` on `listener`. */
export class TaskMemory {
  constructor(
    private readonly listener: number,
    private readonly n: Notification,
  ) {}

  /**
   * The NUL-terminated string at `addr` (exact: bytes that are not UTF-8 as
   * U+DC80+byte, src/sandbox/visible.ts `fromBytes`), "…" appended when it
   * ran past 4096 bytes; undefined when it cannot be read (NULL, unmapped)
   * or the task is gone.
   */
  string(addr: bigint): string | undefined {
    if (addr === 0n) return undefined;
    const parts: Uint8Array[] = [];
    let total = 0;
    let at = addr;
    let end = -1;
    while (total < MAX) {
      const room = CHUNK - Number(at % BigInt(CHUNK));
      const got = readMemory(this.n.pid, at, Math.min(room, MAX - total));
      if (typeof got === "number" || got.length === 0) {
        if (total === 0) return undefined;
        break;
      }
      end = got.indexOf(0);
      parts.push(end >= 0 ? got.subarray(0, end) : got);
      total += end >= 0 ? end : got.length;
      if (end >= 0) break;
      at += BigInt(got.length);
    }
    if (!notifIdValid(this.listener, this.n.id)) return undefined;
    const bytes = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      bytes.set(p, off);
      off += p.length;
    }
    return fromBytes(bytes) + (end < 0 ? "…" : "");
  }
}
