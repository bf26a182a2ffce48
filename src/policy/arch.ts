/**
 * The architectures a policy can be compiled for, with their syscall tables.
 * A filter admits exactly one architecture; any other (i386's int 0x80 on
 * x86_64, for one) is a violation before the syscall number is even read.
 */
import { type NameTable, nameTable } from "../names.ts";

export type ArchName = "x86_64" | "aarch64";

export interface Arch {
  readonly name: ArchName;
  /** AUDIT_ARCH_* as seccomp_data.arch carries it. */
  readonly audit: number;
  /** Syscall numbers by name (no prototype: see src/names.ts). */
  readonly syscalls: NameTable<number>;
  /** x86_64's x32 ABI sets this bit in the number; such calls are refused. */
  readonly x32Bit?: number;
}

/** The largest syscall number a rule may name (the kernel's tables end far below). */
export const MAX_SYSCALL_NR = 0xffff;

/**
 * The number -1 is no syscall: glibc's syscall(-1), or a ptracer skipping the
 * call it stopped at. The kernel answers ENOSYS; the filter sees it as
 * 0xffffffff and gives it the policy's default action, as any number that
 * names no syscall. Reports name it this (number -1), not "x32" or 4294967295.
 */
export const NO_SYSCALL = "no syscall";
/** -1 as seccomp_data.nr holds it, read as unsigned (as BPF compares it). */
export const NO_SYSCALL_NR = 0xffffffff;

/**
 * A syscall table, read on first use: each is an object literal of ~400
 * names, and a `bunbox run` of a precompiled profile needs none of them
 * (README.md, "Start-up"). require(), not a static import: the bundler
 * gives a require()'d module a chunk of its own, read at that call.
 */
function lazyTable(load: () => NameTable<number>): () => NameTable<number> {
  let table: NameTable<number> | undefined;
  return () => (table ??= load());
}

const X86_64 = lazyTable(() => (require("./syscalls/x86_64.ts") as typeof import("./syscalls/x86_64.ts")).X86_64);
const AARCH64 = lazyTable(() => (require("./syscalls/aarch64.ts") as typeof import("./syscalls/aarch64.ts")).AARCH64);
const I386 = lazyTable(() => (require("./syscalls/i386.ts") as typeof import("./syscalls/i386.ts")).I386);

/** A frozen Arch whose `syscalls` is its table, read on first use. */
function arch(fields: Omit<Arch, "syscalls">, table: () => NameTable<number>): Arch {
  return Object.freeze(Object.defineProperty({ ...fields }, "syscalls", { get: table, enumerable: true })) as Arch;
}

export const ARCHES = nameTable<Record<ArchName, Arch>>({
  x86_64: arch({ name: "x86_64", audit: 0xc000003e, x32Bit: 0x40000000 }, X86_64),
  aarch64: arch({ name: "aarch64", audit: 0xc00000b7 }, AARCH64),
});

/** The arch of this name, or undefined (any other string, "constructor" included). */
export function archByName(name: string): Arch | undefined {
  return (ARCHES as NameTable<Arch>)[name];
}

/** Names of audit arches for reports, including ones no filter admits. */
const AUDIT_NAMES = new Map<number, { name: string; syscalls?: () => NameTable<number> }>([
  [0xc000003e, { name: "x86_64", syscalls: X86_64 }],
  [0xc00000b7, { name: "aarch64", syscalls: AARCH64 }],
  [0x40000003, { name: "i386", syscalls: I386 }],
  [0x40000028, { name: "arm" }],
]);

export function hostArch(): Arch {
  const a = process.arch === "arm64" ? ARCHES.aarch64 : process.arch === "x64" ? ARCHES.x86_64 : undefined;
  if (!a) throw new Error(`bunbox supports x86_64 and aarch64, not ${process.arch}`);
  return a;
}

const reverse = new WeakMap<object, Map<number, string>>();

/**
 * The name of syscall `nr` on the arch with this audit value ("ptrace"), if
 * known; -1 (as a signed or an unsigned 32-bit number) is NO_SYSCALL.
 */
export function syscallName(audit: number, nr: number): string | undefined {
  if (nr === -1 || nr === NO_SYSCALL_NR) return NO_SYSCALL;
  const table = AUDIT_NAMES.get(audit)?.syscalls?.();
  if (!table) return undefined;
  let rev = reverse.get(table);
  if (!rev) {
    rev = new Map(Object.entries(table).map(([n, v]) => [v, n]));
    reverse.set(table, rev);
  }
  return rev.get(nr);
}

/** The arch bunbox compiles for whose audit value this is (x86_64, aarch64), or undefined (i386, arm…). */
export function archOfAudit(audit: number): ArchName | undefined {
  const name = AUDIT_NAMES.get(audit)?.name;
  return name === "x86_64" || name === "aarch64" ? name : undefined;
}

export function auditArchName(audit: number): string {
  return AUDIT_NAMES.get(audit)?.name ?? `arch 0x${(audit >>> 0).toString(16)}`;
}
