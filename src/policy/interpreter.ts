/**
 * A classic-BPF interpreter over a synthetic struct seccomp_data, with the
 * same semantics as the kernel's seccomp filter: used by the tests to check
 * every rule, by the property tests to compare compilers, by the monitor to
 * classify a notification (the return value's data bits say why the filter
 * notified), and for the "instructions per syscall" figures.
 */
import { BPF, type Insn, SECCOMP_DATA } from "./bpf.ts";

export interface SeccompData {
  nr: number;
  arch: number;
  ip?: bigint;
  /** Up to six arguments, as the kernel sees them (unsigned 64-bit). */
  args?: readonly bigint[];
}

export interface Evaluation {
  /** The filter's 32-bit return value (SECCOMP_RET_* | data). */
  ret: number;
  /** Instructions executed, the return included. */
  steps: number;
  /** Whether the program read an argument (or the instruction pointer). */
  readArgs: boolean;
}

function load32(data: SeccompData, off: number): number {
  if (off === SECCOMP_DATA.nr) return data.nr >>> 0;
  if (off === SECCOMP_DATA.arch) return data.arch >>> 0;
  const word = (v: bigint, hi: boolean) => Number((hi ? v >> 32n : v) & 0xffffffffn);
  if (off === 8 || off === 12) return word(data.ip ?? 0n, off === 12);
  if (off >= 16 && off < 64 && off % 4 === 0) {
    const n = (off - 16) >> 3;
    return word(BigInt.asUintN(64, data.args?.[n] ?? 0n), (off - 16) % 8 === 4);
  }
  throw new Error(`BPF load at offset ${off}: outside seccomp_data`);
}

/** Runs `prog` on `data`; throws on a program the kernel would refuse at run time. */
export function evaluate(prog: readonly Insn[], data: SeccompData): Evaluation {
  let a = 0;
  let x = 0;
  // Scratch memory, made on first use: bunbox's own filters never touch it,
  // and the compiler's self-check evaluates hundreds of calls per compile.
  let scratch: Uint32Array | undefined;
  const mem = () => (scratch ??= new Uint32Array(16));
  let pc = 0;
  let steps = 0;
  let readArgs = false;
  while (pc < prog.length) {
    const insn = prog[pc]!;
    steps++;
    const cls = insn.code & 0x07;
    const src = insn.code & 0x08 ? x : insn.k;
    switch (cls) {
      case BPF.LD:
      case BPF.LDX: {
        const mode = insn.code & 0xe0;
        let v: number;
        if (mode === BPF.ABS) {
          v = load32(data, insn.k);
          readArgs ||= insn.k >= SECCOMP_DATA.ip;
        }
        else if (mode === BPF.IMM) v = insn.k >>> 0;
        else if (mode === BPF.MEM) v = mem()[insn.k & 15]!;
        else if (mode === BPF.LEN) v = SECCOMP_DATA.size;
        else throw new Error(`BPF insn ${pc}: load mode 0x${mode.toString(16)} not allowed in seccomp`);
        if (cls === BPF.LD) a = v;
        else x = v;
        break;
      }
      case BPF.ST:
        mem()[insn.k & 15] = a;
        break;
      case BPF.STX:
        mem()[insn.k & 15] = x;
        break;
      case BPF.ALU: {
        const op = insn.code & 0xf0;
        const s = src >>> 0;
        switch (op) {
          case BPF.ADD: a = (a + s) >>> 0; break;
          case BPF.SUB: a = (a - s) >>> 0; break;
          case BPF.MUL: a = Number((BigInt(a) * BigInt(s)) & 0xffffffffn); break;
          case BPF.DIV: if (s === 0) return { ret: 0, steps, readArgs }; a = Math.floor(a / s) >>> 0; break;
          case BPF.MOD: if (s === 0) return { ret: 0, steps, readArgs }; a = (a % s) >>> 0; break;
          case BPF.OR: a = (a | s) >>> 0; break;
          case BPF.AND: a = (a & s) >>> 0; break;
          case BPF.XOR: a = (a ^ s) >>> 0; break;
          case BPF.LSH: a = s >= 32 ? 0 : (a << s) >>> 0; break;
          case BPF.RSH: a = s >= 32 ? 0 : a >>> s; break;
          case BPF.NEG: a = -a >>> 0; break;
          default: throw new Error(`BPF insn ${pc}: alu op 0x${op.toString(16)}`);
        }
        break;
      }
      case BPF.JMP: {
        const op = insn.code & 0xf0;
        if (op === BPF.JA) {
          pc += 1 + (insn.k >>> 0);
          continue;
        }
        const s = src >>> 0;
        const t =
          op === BPF.JEQ ? a === s : op === BPF.JGT ? a > s : op === BPF.JGE ? a >= s : (a & s) !== 0;
        pc += 1 + (t ? insn.jt : insn.jf);
        continue;
      }
      case BPF.RET:
        return { ret: (insn.code & 0x18) === BPF.A ? a : insn.k >>> 0, steps, readArgs };
      case BPF.MISC:
        if ((insn.code & 0xf8) === BPF.TXA) a = x;
        else x = a;
        break;
    }
    pc++;
  }
  throw new Error("BPF program ran off its end (the kernel refuses such a filter)");
}
