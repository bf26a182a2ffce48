/**
 * What each syscall argument means, for the three places that show or read
 * argument values by name: violation and refusal reports (src/monitor/decode.ts),
 * policies' `"allowIf"` conditions (src/policy/allowif.ts) and the policies
 * `bunbox learn` writes (src/learn/).
 *
 *   argSpecs("x86_64", "openat")  →  dfd (a directory fd), filename (a path),
 *                                    flags (O_* by name, learned as a set of bits), mode
 *
 * A value is named from its table (src/policy/constants.ts): an enum
 * (`AF_UNIX`), flags (`O_RDONLY|O_CLOEXEC`, the access mode being the enum
 * part of the low bits), or both. Values are read as the kernel reads the
 * argument: every argument named here is an int or unsigned int to the
 * kernel, or (clone's flags, mmap's prot) one whose high half it ignores, so
 * a rule compares the low 32 bits (arg32) and names print from them.
 *
 * `learn` says how `bunbox learn` constrains the argument: "exact" (the set
 * of values seen: ioctl requests, socket domains and types, prctl options,
 * fcntl commands, mmap and mprotect protections, signals sent, futex ops),
 * "subset" (no bit outside those seen: open flags, clone flags); absent, the
 * argument is not constrained (a pointer, a length, an fd, a pid: values that
 * change from run to run).
 */
import { type NameTable, nameTable } from "../names.ts";
import type { ArchName } from "./arch.ts";
import {
  ACCESS_AT_FLAGS, ACCESS_MODES, ADDRESS_FAMILIES, ARCH_PRCTL_CODES, AT_FLAGS, CLOCKS, CLONE_FLAGS,
  DIRFD, FCNTL_COMMANDS, FUTEX_FLAGS, FUTEX_OPS, GETRANDOM_FLAGS, IOCTLS, MADVISE, mapFlags,
  OPEN_ACCESS, openFlags, PRCTL_OPTIONS, protFlags, SECCOMP_OPS, SIGNALS, SIGPROCMASK_HOW,
  SOCKET_FLAGS, SOCKET_TYPES, UNSHARE_FLAGS, WAIT_OPTIONS,
} from "./constants.ts";
import { SYSCALL_ARGS } from "./syscalls/args.ts";

/** How a value is named: an enum in `mask`'s bits (the whole value without flags), flags in the rest. */
export interface Values {
  enum?: NameTable<number>;
  /** The bits the enum occupies when there are flags too (the access mode's 3, clone's exit signal 0xff). */
  mask?: number;
  flags?: NameTable<number>;
  /** The name of 0 when the value is flags only (PROT_NONE, F_OK). */
  zero?: string;
}

export type LearnMode = "exact" | "subset";

export interface ArgSpec {
  readonly index: number;
  /** The kernel's name for it (SYSCALL_ARGS), the name policies use. */
  readonly name: string;
  readonly values?: Values;
  /** A pointer to a NUL-terminated path (read from the sandboxee's memory to describe a call). */
  readonly path?: boolean;
  /** A directory fd a path argument is relative to (AT_FDCWD by name). */
  readonly dirfd?: boolean;
  /** Printed signed (pids, fds: -1 reads better than 4294967295). */
  readonly signed?: boolean;
  readonly learn?: LearnMode;
}

type Extra = Omit<ArgSpec, "index" | "name">;
type ArchExtra = Extra | ((arch: ArchName) => Extra);

const PATH: Extra = { path: true };
const DIR: Extra = { dirfd: true, values: { enum: DIRFD }, signed: true };
const FD: Extra = { signed: true };
const exact = (values: Values): Extra => ({ values, learn: "exact" });
const named = (values: Values): Extra => ({ values });
const SIGNAL: Values = { enum: SIGNALS };
const OPEN = (arch: ArchName): Extra => ({ values: { enum: OPEN_ACCESS, mask: 3, flags: openFlags(arch) }, learn: "subset" });
const PROT = (arch: ArchName): Extra => exact({ flags: protFlags(arch), zero: "PROT_NONE" });
const AT: Extra = named({ flags: AT_FLAGS });
const ACCESS: Extra = named({ flags: ACCESS_MODES, zero: "F_OK" });

/** The arguments worth naming, by syscall and argument name (no prototype: see src/names.ts). */
const SPECS = nameTable<Record<string, Record<string, ArchExtra>>>({
  socket: { family: exact({ enum: ADDRESS_FAMILIES }), type: exact({ enum: SOCKET_TYPES, mask: 0xf, flags: SOCKET_FLAGS }), protocol: exact({}) },
  socketpair: { family: exact({ enum: ADDRESS_FAMILIES }), type: exact({ enum: SOCKET_TYPES, mask: 0xf, flags: SOCKET_FLAGS }) },
  ioctl: { fd: FD, cmd: exact({ enum: IOCTLS }) },
  prctl: { option: exact({ enum: PRCTL_OPTIONS }) },
  fcntl: { fd: FD, cmd: exact({ enum: FCNTL_COMMANDS }) },
  clone: { clone_flags: { values: { enum: SIGNALS, mask: 0xff, flags: CLONE_FLAGS }, learn: "subset" } },
  unshare: { unshare_flags: { values: { flags: UNSHARE_FLAGS }, learn: "subset" } },
  mmap: { prot: PROT, flags: (arch) => named({ flags: mapFlags(arch) }), fd: FD },
  mprotect: { prot: PROT },
  pkey_mprotect: { prot: PROT },
  madvise: { behavior: named({ enum: MADVISE }) },
  open: { filename: PATH, flags: OPEN },
  openat: { dfd: DIR, filename: PATH, flags: OPEN },
  openat2: { dfd: DIR, filename: PATH },
  creat: { pathname: PATH },
  kill: { pid: FD, sig: exact(SIGNAL) },
  tkill: { sig: exact(SIGNAL) },
  tgkill: { tgid: FD, sig: exact(SIGNAL) },
  rt_sigqueueinfo: { sig: exact(SIGNAL) },
  rt_tgsigqueueinfo: { sig: exact(SIGNAL) },
  pidfd_send_signal: { sig: exact(SIGNAL) },
  rt_sigaction: { sig: named(SIGNAL) },
  rt_sigprocmask: { how: named({ enum: SIGPROCMASK_HOW }) },
  futex: { op: exact({ enum: FUTEX_OPS, mask: 0x7f, flags: FUTEX_FLAGS }) },
  arch_prctl: { option: exact({ enum: ARCH_PRCTL_CODES }) },
  getrandom: { flags: exact({ flags: GETRANDOM_FLAGS }) },
  personality: { personality: exact({}) },
  seccomp: { op: named({ enum: SECCOMP_OPS }) },
  wait4: { upid: FD, options: named({ flags: WAIT_OPTIONS }) },
  waitid: { options: named({ flags: WAIT_OPTIONS }) },
  clock_gettime: { which_clock: named({ enum: CLOCKS }) },
  clock_getres: { which_clock: named({ enum: CLOCKS }) },
  clock_settime: { which_clock: named({ enum: CLOCKS }) },
  clock_nanosleep: { which_clock: named({ enum: CLOCKS }) },
  execve: { filename: PATH },
  execveat: { fd: DIR, filename: PATH, flags: AT },
  access: { filename: PATH, mode: ACCESS },
  faccessat: { dfd: DIR, filename: PATH, mode: ACCESS },
  faccessat2: { dfd: DIR, filename: PATH, mode: ACCESS, flags: named({ flags: ACCESS_AT_FLAGS }) },
  newstat: { filename: PATH },
  newlstat: { filename: PATH },
  newfstatat: { dfd: DIR, filename: PATH, flag: AT },
  statx: { dfd: DIR, filename: PATH, flags: AT },
  statfs: { pathname: PATH },
  readlink: { path: PATH },
  readlinkat: { dfd: DIR, pathname: PATH },
  chdir: { filename: PATH },
  chroot: { filename: PATH },
  mkdir: { pathname: PATH },
  mkdirat: { dfd: DIR, pathname: PATH },
  rmdir: { pathname: PATH },
  unlink: { pathname: PATH },
  unlinkat: { dfd: DIR, pathname: PATH, flag: AT },
  rename: { oldname: PATH, newname: PATH },
  renameat: { olddfd: DIR, oldname: PATH, newdfd: DIR, newname: PATH },
  renameat2: { olddfd: DIR, oldname: PATH, newdfd: DIR, newname: PATH },
  link: { oldname: PATH, newname: PATH },
  linkat: { olddfd: DIR, oldname: PATH, newdfd: DIR, newname: PATH, flags: AT },
  symlink: { newname: PATH },
  symlinkat: { newdfd: DIR, newname: PATH },
  chmod: { filename: PATH },
  fchmodat: { dfd: DIR, filename: PATH },
  fchmodat2: { dfd: DIR, filename: PATH, flags: AT },
  chown: { filename: PATH },
  lchown: { filename: PATH },
  fchownat: { dfd: DIR, filename: PATH, flag: AT },
  truncate: { path: PATH },
  utime: { filename: PATH },
  utimes: { filename: PATH },
  futimesat: { dfd: DIR, filename: PATH },
  utimensat: { dfd: DIR, filename: PATH, flags: AT },
  mknod: { filename: PATH },
  mknodat: { dfd: DIR, filename: PATH },
  getxattr: { pathname: PATH },
  lgetxattr: { pathname: PATH },
  setxattr: { pathname: PATH },
  lsetxattr: { pathname: PATH },
  listxattr: { pathname: PATH },
  llistxattr: { pathname: PATH },
  removexattr: { pathname: PATH },
  lremovexattr: { pathname: PATH },
  inotify_add_watch: { pathname: PATH },
  mount: { dev_name: PATH, dir_name: PATH },
  umount: { name: PATH },
  pivot_root: { new_root: PATH, put_old: PATH },
  swapon: { specialfile: PATH },
  swapoff: { specialfile: PATH },
  acct: { name: PATH },
  open_tree: { dfd: DIR, filename: PATH },
  name_to_handle_at: { dfd: DIR, name: PATH },
  uselib: { library: PATH },
});

/**
 * Syscalls the kernel's tracepoints (and so SYSCALL_ARGS) know by another
 * name: x86_64's stat is the kernel's newstat, and so on.
 */
const TRACEPOINT_NAME = nameTable<Record<string, string>>({
  stat: "newstat", lstat: "newlstat", fstat: "newfstat", uname: "newuname", sendfile: "sendfile64", umount2: "umount",
});

const cache = new Map<string, readonly ArgSpec[]>();

/** The arguments of syscall `name` on `arch`, named; empty for a syscall bunbox has no names for. */
export function argSpecs(arch: ArchName, name: string): readonly ArgSpec[] {
  const key = `${arch}:${name}`;
  let specs = cache.get(key);
  if (specs) return specs;
  const kernelName = TRACEPOINT_NAME[name] ?? name;
  const names = SYSCALL_ARGS[kernelName] ?? [];
  const extras = SPECS[kernelName] ?? {};
  specs = Object.freeze(
    names.map((argName, index) => {
      const e = Object.hasOwn(extras, argName) ? extras[argName]! : {};
      return Object.freeze({ index, name: argName, ...(typeof e === "function" ? e(arch) : e) });
    }),
  );
  cache.set(key, specs);
  return specs;
}

/** Argument `ref` (its name, or "arg0".."arg5") of syscall `name`, if it has one. */
export function argSpec(arch: ArchName, name: string, ref: string): ArgSpec | undefined {
  const specs = argSpecs(arch, name);
  const byName = specs.find((s) => s.name === ref);
  if (byName) return byName;
  const m = /^arg([0-5])$/.exec(ref);
  if (!m) return undefined;
  const index = Number(m[1]);
  return specs[index] ?? { index, name: ref };
}

const low32 = (v: bigint) => Number(BigInt.asUintN(32, v));

/** Names of `flags`' bits set in `v`, multi-bit names first (as listed), and what no name covers. */
function flagNames(table: NameTable<number>, v: number): { names: string[]; rest: number } {
  const names: string[] = [];
  let rest = v >>> 0;
  for (const [name, bits] of Object.entries(table)) {
    const b = bits >>> 0;
    if (b !== 0 && (rest & b) === b) {
      names.push(name);
      rest = (rest & ~b) >>> 0;
    }
  }
  return { names, rest };
}

/** Number → first name, per table (a learning run names every ioctl it sees: no scan per call). */
const reverse = new WeakMap<object, Map<number, string>>();

function nameOf(table: NameTable<number> | undefined, v: number): string | undefined {
  if (!table) return undefined;
  let rev = reverse.get(table);
  if (!rev) {
    rev = new Map();
    for (const [name, n] of Object.entries(table)) if (!rev.has(n >>> 0)) rev.set(n >>> 0, name);
    reverse.set(table, rev);
  }
  return rev.get(v >>> 0);
}

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

/**
 * `v` by name ("O_RDONLY|O_CLOEXEC", "AF_UNIX", "SIGCHLD|CLONE_VM"), or
 * undefined when the argument has no names (the caller prints the number).
 * Only the low 32 bits are named; a value with high bits set is a number.
 */
export function nameValue(spec: ArgSpec, v: bigint): string | undefined {
  const vals = spec.values;
  if (!vals || (!vals.enum && !vals.flags)) return undefined;
  if (BigInt.asUintN(64, v) >> 32n !== 0n && !(spec.signed && BigInt.asIntN(64, v) < 0n && BigInt.asIntN(64, v) >= -0x80000000n)) return undefined;
  const n = low32(v);
  if (!vals.flags) return nameOf(vals.enum, n) ?? (spec.signed ? String(n | 0) : n > 0xffff ? hex(n) : String(n));
  const mask = vals.enum ? (vals.mask ?? 0) : 0;
  const parts: string[] = [];
  if (vals.enum) {
    const e = n & mask;
    const name = nameOf(vals.enum, e);
    if (name !== undefined) parts.push(name);
    else if (e !== 0) parts.push(String(e));
  }
  const { names, rest } = flagNames(vals.flags, (n & ~mask) >>> 0);
  parts.push(...names);
  if (rest !== 0) parts.push(hex(rest));
  if (parts.length === 0) return vals.zero ?? "0";
  return parts.join("|");
}

/** The problem with a value text, or its number: "O_RDONLY|O_CLOEXEC", "0x5401", "-100", 17. */
export function parseValue(spec: ArgSpec | undefined, text: string | number): bigint | string {
  if (typeof text === "number") {
    if (!Number.isSafeInteger(text)) return `${text} is not an integer`;
    return BigInt(text);
  }
  if (typeof text !== "string" || text.trim() === "") return `${JSON.stringify(text)} is not a value`;
  let out = 0n;
  for (const raw of text.split("|")) {
    const part = raw.trim();
    const numeric = /^-?(0x[0-9a-fA-F]+|0o[0-7]+|\d+)$/.test(part);
    if (numeric) {
      out |= part.startsWith("-") ? -BigInt(part.slice(1)) : BigInt(part);
      continue;
    }
    const vals = spec?.values;
    const n = vals?.enum?.[part] ?? vals?.flags?.[part] ?? (part === vals?.zero ? 0 : undefined);
    if (n === undefined) {
      const known = [...Object.keys(vals?.enum ?? {}), ...Object.keys(vals?.flags ?? {})];
      const what = spec ? `argument "${spec.name}"` : "this argument";
      return `"${part}" is not a name ${what} knows${known.length ? ` (like ${known.slice(0, 3).join(", ")})` : " (give a number)"}`;
    }
    out |= BigInt(n);
  }
  return out;
}
