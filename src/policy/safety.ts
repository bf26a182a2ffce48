/**
 * The always-on safety rules, placed in front of every policy's own rules. A
 * policy may turn any of these into an errno by blocking the syscall with one;
 * it can only let one through with the loudly named dangerAllowUnsafe(...),
 * and `bunbox run -v` lists each such relaxation.
 */
import { type NameTable, nameTable } from "../names.ts";
import type { Arch } from "./arch.ts";
import { type Action, arg32, errno, goto, jeq, jne, jset, label, type Node, type Rule } from "./rules.ts";

/** Why a filter notified the monitor, carried in SECCOMP_RET_DATA. */
export const REASON = {
  ARCH: 1,
  X32: 2,
  DANGER: 3,
  POLICY: 4,
  TRACE: 5,
  EXEC: 6,
  /** The policy refuses the call without ending the run (REFUSE: EPERM or ENOSYS, recorded). */
  REFUSED: 7,
  /** A safety rule refuses the call without ending the run (EPERM, recorded; audit mode too). */
  SAFETY_REFUSED: 8,
} as const;

/** A violation raised by a safety rule rather than by the policy. */
export const KILL_DANGER: Action = Object.freeze({ kind: "kill", reason: REASON.DANGER });

/** A safety rule's refusal that lets the run go on: EPERM, listed in the Result (without the monitor, the errno alone). */
export const REFUSE_SAFETY: Action = Object.freeze({ kind: "refuse", reason: REASON.SAFETY_REFUSED });

/** Kernel attack surface no sandboxee needs: always a violation. */
export const DANGEROUS_SYSCALLS = [
  "ptrace",
  "process_vm_readv",
  "process_vm_writev",
  "bpf",
  "io_uring_setup",
  "io_uring_enter",
  "io_uring_register",
  "userfaultfd",
  "perf_event_open",
  "keyctl",
  "add_key",
  "request_key",
  "kexec_load",
  "kexec_file_load",
  "init_module",
  "finit_module",
  "delete_module",
  "mount",
  "umount2",
  "pivot_root",
  "setns",
  "fsopen",
  "fsconfig",
  "fsmount",
  "fspick",
  "move_mount",
  "open_tree",
  "open_tree_attr",
  "mount_setattr",
  "reboot",
  "swapon",
  "swapoff",
  "open_by_handle_at",
  "acct",
  "quotactl",
  "quotactl_fd",
] as const;

/** Dangerous uses of otherwise ordinary syscalls, each relaxable by this name (no prototype). */
export const DANGEROUS_USES = nameTable({
  /** clone() creating namespaces. */
  "clone-namespaces": "clone",
  /** unshare() of any namespace. */
  "unshare-namespaces": "unshare",
  /** TIOCSTI and TIOCLINUX ioctls: typing into the terminal. */
  "terminal-injection": "ioctl",
  /** seccomp() installing a filter with a user-notification listener. */
  "seccomp-listener": "seccomp",
  /** clone3, whose flags sit in memory where no filter can read them. */
  clone3: "clone3",
  /**
   * Set-user-ID and set-group-ID bits on a file the sandboxee creates or
   * changes (chmod u+s, open/mknod with S_ISUID): refused with EPERM, and
   * openat2, whose mode sits in memory, with ENOSYS (libc falls back to
   * openat). Through a writable bind such a file is the tree's owner's on
   * the host: run by root, an idmapped --rw of root's tree would otherwise
   * let the sandboxee leave a set-user-ID root program there for any local
   * user to run (README.md, "Writable binds as root").
   */
  "setid-bits": "chmod",
} as const);

type DangerousUse = Exclude<keyof typeof DANGEROUS_USES, symbol>;
export type DangerName = (typeof DANGEROUS_SYSCALLS)[number] | DangerousUse;

/** Whether `name` names a safety rule dangerAllowUnsafe() can relax. */
export function isDangerName(name: unknown): name is DangerName {
  if (typeof name !== "string") return false;
  return (DANGEROUS_SYSCALLS as readonly string[]).includes(name) || (DANGEROUS_USES as NameTable<string>)[name] !== undefined;
}

const CLONE_NS = 0x7e020000; // NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
const UNSHARE_NS = CLONE_NS | 0x80; // and NEWTIME (clone's low byte is the exit signal)
const TIOCSTI = 0x5412;
const TIOCLINUX = 0x541c;
const SECCOMP_SET_MODE_FILTER = 1;
const SECCOMP_FILTER_FLAG_NEW_LISTENER = 8;
const ENOSYS = 38;
const S_ISUID_ISGID = 0o6000;
const O_CREAT = 0o100;
const O_TMPFILE = 0o20000000; // __O_TMPFILE, the bit O_TMPFILE adds to O_DIRECTORY
/** Calls that set a file's mode, and which argument holds it (and the open flags that make it used). */
export const MODE_SETTERS: readonly { name: string; mode: number; flags?: number }[] = [
  { name: "chmod", mode: 1 },
  { name: "fchmod", mode: 1 },
  { name: "fchmodat", mode: 2 },
  { name: "fchmodat2", mode: 2 },
  { name: "mknod", mode: 1 },
  { name: "mknodat", mode: 2 },
  { name: "creat", mode: 1 },
  { name: "open", mode: 2, flags: 1 },
  { name: "openat", mode: 3, flags: 2 },
];

/**
 * The safety rules for `arch`, keyed by syscall number, to run before the
 * policy's rules for the same syscall. `policyRules` decides whether the
 * policy turned a dangerous call into an errno.
 */
export function safetyRules(
  arch: Arch,
  policyRules: ReadonlyMap<number, readonly Rule[]>,
  allowed: ReadonlySet<string>,
): Map<number, Rule[]> {
  const out = new Map<number, Rule[]>();
  const nr = (name: string) => arch.syscalls[name];
  /** The policy's own errno for this syscall, if its first rule is one. */
  const policyErrno = (n: number): Action | undefined => {
    const first = policyRules.get(n)?.[0];
    return first?.kind === "action" && first.action.kind === "errno" ? first.action : undefined;
  };

  for (const name of DANGEROUS_SYSCALLS) {
    const n = nr(name);
    if (n === undefined || allowed.has(name)) continue;
    out.set(n, [{ kind: "action", action: policyErrno(n) ?? KILL_DANGER }]);
  }

  const guard = (use: DangerousUse, body: (deny: Action) => Node[]) => {
    const n = nr(DANGEROUS_USES[use]);
    if (n === undefined || allowed.has(use)) return;
    const rule: Rule = { kind: "fragment", nodes: body(policyErrno(n) ?? KILL_DANGER) };
    out.set(n, [...(out.get(n) ?? []), rule]);
  };
  guard("clone-namespaces", (deny) => [arg32(0), jset(CLONE_NS, deny)]);
  guard("unshare-namespaces", (deny) => [arg32(0), jset(UNSHARE_NS, deny)]);
  guard("terminal-injection", (deny) => [arg32(1), jeq(TIOCSTI, deny), jeq(TIOCLINUX, deny)]);
  guard("seccomp-listener", (deny) => [
    arg32(0),
    jne(SECCOMP_SET_MODE_FILTER, "seccomp-ok"),
    arg32(1),
    jset(SECCOMP_FILTER_FLAG_NEW_LISTENER, deny),
    label("seccomp-ok"),
  ]);
  if (!allowed.has("setid-bits")) {
    const deny = REFUSE_SAFETY;
    for (const m of MODE_SETTERS) {
      const n = nr(m.name);
      if (n === undefined) continue;
      // open's mode is read only when it creates a file: another call's stray bits there are not a mode.
      const creates = m.flags === undefined ? [] : [arg32(m.flags), jset(O_CREAT | O_TMPFILE, "setid-mode"), goto("setid-ok"), label("setid-mode")];
      const body: Node[] = [...creates, arg32(m.mode), jset(S_ISUID_ISGID, deny), label("setid-ok")];
      out.set(n, [...(out.get(n) ?? []), { kind: "fragment", nodes: body }]);
    }
    const openat2 = nr("openat2");
    if (openat2 !== undefined) out.set(openat2, [{ kind: "action", action: errno(ENOSYS) }]);
  }
  const clone3 = nr("clone3");
  if (clone3 !== undefined && !allowed.has("clone3")) {
    // libc falls back to clone(), whose flags the filter can read.
    out.set(clone3, [{ kind: "action", action: policyErrno(clone3) ?? errno(ENOSYS) }]);
  }
  return out;
}
