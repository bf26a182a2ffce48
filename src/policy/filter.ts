/**
 * A compiled seccomp program, and the one change every run makes to it (its
 * exec magic). Apart from the compiler (src/policy/compiler.ts): a run of a
 * precompiled profile arms its filter without reading the compiler, its
 * verifier or the interpreter (README.md, "Start-up").
 */
import type { Insn } from "./bpf.ts";

export interface Filter {
  readonly insns: readonly Insn[];
  /** Indices of the instructions comparing the low and high halves of the exec magic. */
  readonly magic: readonly [number, number];
}

/** Copies `insns` with the exec magic written into its two compares. */
export function withMagic(filter: Filter, magic: bigint): Insn[] {
  // A new array sharing the instructions but the two it changes (the
  // filter's own stay as they are): a copy of each costs every run's start.
  const out = filter.insns.slice();
  out[filter.magic[0]] = { ...out[filter.magic[0]]!, k: Number(magic & 0xffffffffn) };
  out[filter.magic[1]] = { ...out[filter.magic[1]]!, k: Number((magic >> 32n) & 0xffffffffn) };
  return out;
}
