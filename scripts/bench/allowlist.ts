/**
 * The policy of benchmark 3: a plain allowlist of ~300 syscalls, what a
 * hand-written Sandbox2 policy for a large program looks like, built with
 * PolicyBuilder.allowSyscalls, plus the same rules laid out linearly.
 *
 * Which 300: every syscall of the arch except the dangerous ones
 * (src/policy/safety.ts, always a violation anyway), thinned evenly to 300.
 * Thinning evenly rather than cutting one end leaves gaps all over the number
 * range, so the optimising compiler cannot fold the list into a few ranges:
 * that is the hard case for its dispatch tree. The calls the benchmark's
 * programs need (glibc's dynamic start-up, stdio, exit, the looped calls) are
 * never thinned away.
 */
import { Policy } from "../../src/policy/policy.ts";
import { PolicyBuilder } from "../../src/policy/builder.ts";
import type { Filter } from "../../src/policy/compiler.ts";
import type { Arch } from "../../src/policy/arch.ts";
import { DANGEROUS_SYSCALLS } from "../../src/policy/safety.ts";

/** What probe and syscall-loop (dynamically linked, glibc) call, start-up included. */
const NEEDED = [
  "read", "write", "openat", "close", "fstat", "newfstatat", "mmap", "mprotect", "munmap", "brk",
  "pread64", "access", "arch_prctl", "set_tid_address", "set_robust_list", "rseq", "prlimit64",
  "getrandom", "exit_group", "exit", "futex", "getppid", "clock_gettime",
];

/**
 * Syscalls that are harmless to call in a tight loop with every argument 0:
 * they return at once (often an error such as EFAULT or EINVAL, which is fine:
 * the filter runs before the kernel reads the arguments), create nothing and
 * change no state. The benchmark picks its worst cases among these, never,
 * say, seccomp(0, 0, 0), which would switch the looping process to strict mode.
 */
export const LOOPABLE = [
  "getppid", "getpid", "gettid", "getuid", "getgid", "sched_yield", "uname", "sysinfo", "times",
  "getrusage", "lseek", "ioctl", "unshare", "clone3", "futex_wake", "futex_waitv", "cachestat",
  "statmount", "listmount", "lsm_list_modules", "lsm_get_self_attr", "getxattrat", "listxattrat",
  "file_getattr", "set_mempolicy_home_node",
];

export const ALLOWLIST_SIZE = 300;

/** The allowlist's names, in syscall-number order. */
export function allowlistNames(arch: Arch, size = ALLOWLIST_SIZE): string[] {
  const dangerous = new Set<string>(DANGEROUS_SYSCALLS);
  const byNumber = Object.keys(arch.syscalls)
    .filter((n) => !dangerous.has(n))
    .sort((a, b) => arch.syscalls[a]! - arch.syscalls[b]!);
  const needed = byNumber.filter((n) => NEEDED.includes(n));
  const rest = byNumber.filter((n) => !NEEDED.includes(n));
  const drop = rest.length - (size - needed.length);
  if (drop < 0) throw new Error(`${arch.name} has only ${byNumber.length} safe syscalls, fewer than ${size}`);
  const step = rest.length / Math.max(drop, 1);
  const dropped = new Set(Array.from({ length: drop }, (_, i) => rest[Math.floor(i * step + step / 2)]));
  const keep = new Set([...needed, ...rest.filter((n) => !dropped.has(n))]);
  return byNumber.filter((n) => keep.has(n));
}

export function allowlistPolicy(arch: Arch, size = ALLOWLIST_SIZE): Policy {
  return new PolicyBuilder({ arch: arch.name }).setOrigin(`${size}-syscall allowlist`).allowSyscalls(allowlistNames(arch, size)).build();
}

/**
 * The same policy, but its sandboxes load the linear filter (a compare per
 * syscall, Sandbox2's shape). Sandbox and buildRequest both ask the policy
 * for filter(notify); answering with the linear layout changes nothing else.
 */
export class LinearPolicy extends Policy {
  constructor(of: Policy) {
    super({
      arch: of.arch,
      rules: of.rules,
      defaultAction: of.defaultAction,
      dangerAllowed: of.dangerAllowed,
      mounts: of.mounts,
      hostname: of.hostname,
      net: of.net,
      uid: of.uid,
      gid: of.gid,
      workdir: of.workdir,
      origin: `${of.origin}, linear`,
    });
  }

  override filter(notify: boolean): Filter {
    return super.filter(notify, "linear");
  }
}
