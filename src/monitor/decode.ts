/**
 * A syscall as a person reads it: `openat(AT_FDCWD, "/etc/shadow",
 * O_RDONLY|O_CLOEXEC, 0)` rather than `openat(-100, 0x7ffd…, 524288, 0)`.
 * Values by name come from src/policy/argspec.ts; paths are read from the
 * blocked sandboxee's memory (memory.ts) and only describe the call.
 * The text holds the path exactly as read: whoever prints it makes it
 * visible (src/sandbox/visible.ts).
 */
import type { ArchName } from "../policy/arch.ts";
import { argSpecs, nameValue } from "../policy/argspec.ts";
import { SYSCALL_ARGS } from "../policy/syscalls/args.ts";
import type { TaskMemory } from "./memory.ts";

/** Small numbers in decimal, addresses in hex, and -errno-like ints (AT_FDCWD) negative. */
export function argText(v: bigint): string {
  if (v < 0x1000n) return v.toString();
  if (v >= 0xfffff000n && v <= 0xffffffffn) return (v - 0x100000000n).toString();
  if (v >= 0xfffffffffffff000n) return (v - 0x10000000000000000n).toString();
  return `0x${v.toString(16)}`;
}

/** Without a known arity, trailing zero arguments are noise in one line. */
function trimArgs(args: readonly bigint[]): readonly bigint[] {
  let n = args.length;
  while (n > 4 && args[n - 1] === 0n) n--;
  return args.slice(0, n);
}

/** "ptrace(0, 0, 0, 0)": the call with its arguments as numbers (as many as it takes, when known). */
export function callText(syscall: string, args: readonly bigint[]): string {
  const arity = SYSCALL_ARGS[syscall]?.length;
  const shown = arity !== undefined ? args.slice(0, arity) : trimArgs(args);
  return `${syscall}(${shown.map(argText).join(", ")})`;
}

/**
 * The call with its values by name and its paths read (when `memory` is
 * given and the task still waits); numbers where bunbox knows no better.
 */
export function decodeCall(arch: ArchName, syscall: string, args: readonly bigint[], memory?: TaskMemory): string {
  const specs = argSpecs(arch, syscall);
  if (specs.length === 0) return callText(syscall, args);
  const parts = specs.map((spec) => {
    const v = args[spec.index] ?? 0n;
    if (spec.path && memory) {
      const s = memory.string(v);
      if (s !== undefined) return `"${s}"`;
    }
    return nameValue(spec, v) ?? (spec.signed ? String(BigInt.asIntN(32, v)) : argText(v));
  });
  return `${syscall}(${parts.join(", ")})`;
}
