/**
 * Symbolic BPF assembly: instructions whose jump targets are labels, laid out
 * into a sock_filter program. Conditional jumps reach at most 255 instructions
 * forward; a farther target gets a trampoline (an unconditional `ja`, which has
 * a 32-bit offset) right after the jump, repeated until every jump fits.
 * Backward jumps do not exist in BPF and are refused.
 */
import { BPF, type Insn, MAX_INSNS } from "./bpf.ts";

/** A label id; FALL means "the next instruction". */
export type Label = number;
export const FALL: Label = -1;

export type Item =
  | { t: "op"; code: number; k: number; tag?: string }
  | { t: "jmp"; code: number; k: number; jt: Label; jf: Label; tag?: string }
  | { t: "ja"; target: Label }
  | { t: "label"; id: Label };

export class Asm {
  readonly items: Item[] = [];
  private next = 0;

  label(): Label {
    return this.next++;
  }
  place(id: Label): void {
    this.items.push({ t: "label", id });
  }
  op(code: number, k: number, tag?: string): void {
    this.items.push({ t: "op", code, k: k >>> 0, ...(tag ? { tag } : {}) });
  }
  ret(k: number): void {
    this.op(BPF.RET | BPF.K, k);
  }
  /** Conditional jump on A against k: to jt when true, jf when false. */
  jmp(cmp: number, k: number, jt: Label, jf: Label, tag?: string): void {
    this.items.push({ t: "jmp", code: BPF.JMP | cmp | BPF.K, k: k >>> 0, jt, jf, ...(tag ? { tag } : {}) });
  }
  ja(target: Label): void {
    if (target !== FALL) this.items.push({ t: "ja", target });
  }

  /** Resolves labels; returns the program and the index of every tagged instruction. */
  assemble(): { insns: Insn[]; tags: Map<string, number> } {
    let items = this.items.slice();
    for (let round = 0; ; round++) {
      if (round > 1000) throw new Error("BPF layout did not converge");
      const pos = new Map<Label, number>();
      let n = 0;
      for (const it of items) {
        if (it.t === "label") pos.set(it.id, n);
        else n++;
      }
      const offset = (from: number, target: Label): number => {
        if (target === FALL) return 0;
        const to = pos.get(target);
        if (to === undefined) throw new Error(`BPF label ${target} is never placed`);
        const off = to - (from + 1);
        if (off < 0) throw new Error("BPF jumps only forward: a label is placed before a jump to it");
        return off;
      };
      // Every conditional jump whose target is out of reach gets trampolines;
      // they push later code further, so repeat until nothing moves.
      let fixed = false;
      const out: Item[] = [];
      let idx = 0;
      for (const it of items) {
        if (it.t === "label") {
          out.push(it);
          continue;
        }
        if (it.t === "jmp") {
          const farT = offset(idx, it.jt) > 255;
          const farF = offset(idx, it.jf) > 255;
          if (farT || farF) {
            // jmp → [ja T] [ja F] with short hops to them.
            // A fall-through must now skip the trampolines.
            const tT = this.label();
            const tF = this.label();
            const after = this.label();
            const near = (l: Label) => (l === FALL ? after : l);
            out.push({ ...it, jt: farT ? tT : near(it.jt), jf: farF ? tF : near(it.jf) });
            if (farT) out.push({ t: "label", id: tT }, { t: "ja", target: it.jt });
            if (farF) out.push({ t: "label", id: tF }, { t: "ja", target: it.jf });
            out.push({ t: "label", id: after });
            fixed = true;
            idx++;
            continue;
          }
        }
        out.push(it);
        idx++;
      }
      items = out;
      if (fixed) continue;

      const insns: Insn[] = [];
      const tags = new Map<string, number>();
      for (const it of items) {
        if (it.t === "label") continue;
        const i = insns.length;
        if (it.t === "op") {
          insns.push({ code: it.code, jt: 0, jf: 0, k: it.k });
          if (it.tag) tags.set(it.tag, i);
        } else if (it.t === "jmp") {
          insns.push({ code: it.code, jt: offset(i, it.jt), jf: offset(i, it.jf), k: it.k });
          if (it.tag) tags.set(it.tag, i);
        } else {
          insns.push({ code: BPF.JMP | BPF.JA, jt: 0, jf: 0, k: offset(i, it.target) });
        }
      }
      if (insns.length > MAX_INSNS) {
        throw new FilterTooLong(insns.length);
      }
      return { insns, tags };
    }
  }
}

export class FilterTooLong extends Error {
  constructor(readonly length: number) {
    super(
      `the compiled filter has ${length} instructions; the kernel's limit is ${MAX_INSNS} ` +
        `(fewer argument rules, or rules shared between syscalls, make it shorter)`,
    );
  }
}
