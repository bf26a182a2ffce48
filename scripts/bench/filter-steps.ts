/**
 * What a filter costs per syscall number, from src/policy/interpreter.ts:
 * the BPF instructions executed (the interpreter counts them exactly as the
 * kernel would run them), the verdict, and whether the kernel needs to run
 * the filter at all.
 *
 * That last point decides what a timing loop can show. Since Linux 5.11 the
 * kernel keeps a per-filter bitmap of the syscall numbers the filter allows
 * whatever their arguments (seccomp_cache_prepare emulates the program with
 * only nr and arch known); for those it skips the filter. So a constant
 * ALLOW costs nothing whatever the layout, and the filter's length only shows
 * on calls whose verdict reads the arguments or is not ALLOW.
 */
import type { Arch } from "../../src/policy/arch.ts";
import { type Insn, RET } from "../../src/policy/bpf.ts";
import { evaluate } from "../../src/policy/interpreter.ts";

export interface SyscallCost {
  name: string;
  nr: number;
  /** Instructions executed with every argument 0. */
  steps: number;
  /** SECCOMP_RET_* action of the verdict (data bits cleared). */
  action: number;
  /** The kernel's action cache can prove ALLOW from nr and arch alone: the filter never runs. */
  cached: boolean;
}

/** Every syscall of `arch`'s table through `prog`, arguments 0. */
export function syscallCosts(prog: readonly Insn[], arch: Arch): SyscallCost[] {
  return Object.entries(arch.syscalls)
    .sort((a, b) => a[1] - b[1])
    .map(([name, nr]) => {
      let readBeyondNr = false;
      const zeros = [0n, 0n, 0n, 0n, 0n, 0n] as const;
      // Getters record whether the verdict depended on more than nr and arch,
      // which is exactly when the kernel's cache cannot hold it.
      const data = {
        nr,
        arch: arch.audit,
        get ip() {
          readBeyondNr = true;
          return 0n;
        },
        get args() {
          readBeyondNr = true;
          return zeros;
        },
      };
      const { ret, steps } = evaluate(prog, data);
      return { name, nr, steps, action: (ret & RET.ACTION_FULL) >>> 0, cached: !readBeyondNr && ret === RET.ALLOW };
    });
}

/** A verdict after which the calling process goes on (ALLOW or an errno), not a violation. */
export function survives(c: SyscallCost): boolean {
  return c.action === RET.ALLOW || c.action === RET.ERRNO;
}
