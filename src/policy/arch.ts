/**
 * The architectures a policy can be compiled for, with their syscall tables.
 * A filter admits exactly one architecture; any other (i386's int 0x80 on
 * x86_64, for one) is a violation before the syscall number is even read.
 */
import { AARCH64 } from "./syscalls/aarch64.ts";
import { I386 } from "./syscalls/i386.ts";
import { X86_64 } from "./syscalls/x86_64.ts";

export type ArchName = "x86_64" | "aarch64";

export interface Arch {
  readonly name: ArchName;
  /** AUDIT_ARCH_* as seccomp_data.arch carries it. */
  readonly audit: number;
  readonly syscalls: Readonly<Record<string, number>>;
  /** x86_64's x32 ABI sets this bit in the number; such calls are refused. */
  readonly x32Bit?: number;
}

export const ARCHES: Readonly<Record<ArchName, Arch>> = {
  x86_64: { name: "x86_64", audit: 0xc000003e, syscalls: X86_64, x32Bit: 0x40000000 },
  aarch64: { name: "aarch64", audit: 0xc00000b7, syscalls: AARCH64 },
};

/** Names of audit arches for reports, including ones no filter admits. */
const AUDIT_NAMES: Record<number, { name: string; syscalls?: Readonly<Record<string, number>> }> = {
  0xc000003e: { name: "x86_64", syscalls: X86_64 },
  0xc00000b7: { name: "aarch64", syscalls: AARCH64 },
  0x40000003: { name: "i386", syscalls: I386 },
  0x40000028: { name: "arm" },
};

export function hostArch(): Arch {
  const a = process.arch === "arm64" ? ARCHES.aarch64 : process.arch === "x64" ? ARCHES.x86_64 : undefined;
  if (!a) throw new Error(`bunbox supports x86_64 and aarch64, not ${process.arch}`);
  return a;
}

const reverse = new WeakMap<object, Map<number, string>>();

/** The name of syscall `nr` on the arch with this audit value ("ptrace"), if known. */
export function syscallName(audit: number, nr: number): string | undefined {
  const table = AUDIT_NAMES[audit]?.syscalls;
  if (!table) return undefined;
  let rev = reverse.get(table);
  if (!rev) {
    rev = new Map(Object.entries(table).map(([n, v]) => [v, n]));
    reverse.set(table, rev);
  }
  return rev.get(nr);
}

export function auditArchName(audit: number): string {
  return AUDIT_NAMES[audit]?.name ?? `arch 0x${(audit >>> 0).toString(16)}`;
}
