/**
 * Reading a compiled filter back: a disassembly with syscall names and the
 * meaning of each return, and for every syscall the set of results its paths
 * can reach (found by walking the program with the arguments unknown: a
 * compare on an argument explores both branches; BPF only jumps forward, so
 * the walk ends). `bunbox policy explain` prints both.
 */
import { type Arch, NO_SYSCALL, syscallName } from "./arch.ts";
import { BPF, type Insn, RET, SECCOMP_DATA } from "./bpf.ts";
import { ERRNO } from "../native/errno.ts";
import { REASON } from "./safety.ts";

const REASON_TEXT = new Map<number, string>([
  [REASON.ARCH, "violation: foreign architecture"],
  [REASON.X32, "violation: x32 ABI"],
  [REASON.DANGER, "violation: safety rule"],
  [REASON.POLICY, "violation: policy"],
  [REASON.TRACE, "TRACE: ask the monitor's onSyscall hook"],
  [REASON.EXEC, "the first execveat (exec magic)"],
  [REASON.REFUSED, "REFUSED: EPERM (ENOSYS for an unnamed number), recorded"],
  [REASON.SAFETY_REFUSED, "REFUSED by a safety rule: EPERM, recorded (audit mode too)"],
]);

/** "ALLOW", "ERRNO(ENOENT)", "violation: policy"… for a return value. */
export function describeReturn(ret: number): string {
  const action = (ret & RET.ACTION_FULL) >>> 0;
  const data = ret & RET.DATA;
  switch (action) {
    case RET.ALLOW:
      return "ALLOW";
    case RET.ERRNO:
      return `ERRNO(${ERRNO.get(data)?.[0] ?? data})`;
    case RET.KILL_PROCESS:
      return "KILL (violation)";
    case RET.KILL_THREAD:
      return "KILL_THREAD";
    case RET.TRAP:
      return `TRAP(${data})`;
    case RET.LOG:
      return "LOG";
    case RET.TRACE:
      return `TRACE(${data})`;
    case RET.USER_NOTIF:
      return REASON_TEXT.get(data) ?? `USER_NOTIF(${data})`;
    default:
      return `0x${ret.toString(16)}`;
  }
}

function field(k: number): string {
  if (k === SECCOMP_DATA.nr) return "nr";
  if (k === SECCOMP_DATA.arch) return "arch";
  if (k === 8) return "ip";
  if (k === 12) return "ip_hi";
  if (k >= 16 && k < 64) return `arg${(k - 16) >> 3}${(k - 16) % 8 === 4 ? "_hi" : ""}`;
  return `[${k}]`;
}

/** One line per instruction: "  12: jeq  #0x3 -> 14 else 13   ; close". */
export function disassemble(prog: readonly Insn[], arch: Arch): string[] {
  const lines: string[] = [];
  let loaded = "";
  prog.forEach((insn, pc) => {
    const cls = insn.code & 0x07;
    const at = String(pc).padStart(4);
    let text: string;
    let note = "";
    if (cls === BPF.LD && (insn.code & 0xe0) === BPF.ABS) {
      loaded = field(insn.k);
      text = `ld   ${loaded}`;
    } else if (cls === BPF.RET) {
      text = `ret  ${(insn.code & 0x18) === BPF.A ? "A" : `#0x${(insn.k >>> 0).toString(16)}`}`;
      if ((insn.code & 0x18) !== BPF.A) note = describeReturn(insn.k >>> 0);
    } else if (cls === BPF.JMP) {
      const op = insn.code & 0xf0;
      if (op === BPF.JA) {
        text = `ja   -> ${pc + 1 + insn.k}`;
      } else {
        const name = { [BPF.JEQ]: "jeq", [BPF.JGT]: "jgt", [BPF.JGE]: "jge", [BPF.JSET]: "jset" }[op] ?? "j?";
        text = `${name.padEnd(4)} #0x${(insn.k >>> 0).toString(16)} -> ${pc + 1 + insn.jt} else ${pc + 1 + insn.jf}`;
        if (loaded === "nr" && op !== BPF.JSET) note = `${op === BPF.JEQ ? "" : ">= "}${syscallName(arch.audit, insn.k) ?? insn.k}`;
        if (loaded === "arch" && insn.k === arch.audit) note = arch.name;
      }
    } else {
      text = `op   0x${insn.code.toString(16)} #0x${(insn.k >>> 0).toString(16)}`;
    }
    lines.push(`${at}: ${text.padEnd(34)}${note ? ` ; ${note}` : ""}`);
  });
  return lines;
}

/**
 * Every return value reachable for syscall `nr` on `arch`, the arguments left
 * unknown (and the execveat magic assumed not to match: that path is only the
 * first exec's).
 */
export function reachableReturns(prog: readonly Insn[], arch: Arch, nr: number): Set<number> {
  const out = new Set<number>();
  const seen = new Set<string>();
  // A is a known number or unknown (undefined).
  const walk = (pc: number, a: number | undefined, argLoaded: boolean): void => {
    const key = `${pc}:${a}:${argLoaded}`;
    if (seen.has(key)) return;
    seen.add(key);
    for (;;) {
      const insn = prog[pc];
      if (!insn) return;
      const cls = insn.code & 0x07;
      if (cls === BPF.LD && (insn.code & 0xe0) === BPF.ABS) {
        if (insn.k === SECCOMP_DATA.nr) a = nr;
        else if (insn.k === SECCOMP_DATA.arch) a = arch.audit;
        else a = undefined;
        argLoaded = insn.k >= 16;
        pc++;
        continue;
      }
      if (cls === BPF.RET) {
        out.add((insn.code & 0x18) === BPF.A ? (a ?? 0) : insn.k >>> 0);
        return;
      }
      if (cls === BPF.JMP) {
        const op = insn.code & 0xf0;
        if (op === BPF.JA) {
          pc += 1 + insn.k;
          continue;
        }
        if (a === undefined) {
          // The exec magic's compare: the ordinary path is its "no" branch.
          const magic = argLoaded && prog[pc - 1]?.k === SECCOMP_DATA.argLo(5) && nr === arch.syscalls.execveat;
          if (!magic) walk(pc + 1 + insn.jt, a, argLoaded);
          pc += 1 + insn.jf;
          continue;
        }
        const k = insn.k >>> 0;
        const t = op === BPF.JEQ ? a === k : op === BPF.JGT ? a > k : op === BPF.JGE ? a >= k : (a & k) !== 0;
        pc += 1 + (t ? insn.jt : insn.jf);
        continue;
      }
      a = undefined; // ALU, MISC, memory: not produced by our compiler
      pc++;
    }
  };
  walk(0, undefined, false);
  return out;
}

/** "read (0): ALLOW" lines for every syscall of the arch, then for -1 (no syscall). */
export function summarize(prog: readonly Insn[], arch: Arch): { syscall: string; nr: number; results: string[] }[] {
  const rows: [string, number][] = Object.entries(arch.syscalls).sort((x, y) => x[1] - y[1]);
  return [...rows, [NO_SYSCALL, -1] as [string, number]].map(([name, nr]) => ({
    syscall: name,
    nr,
    results: [...reachableReturns(prog, arch, nr >>> 0)].map(describeReturn).sort(),
  }));
}

/** How many of the arch's syscalls the program can allow (for some arguments): a policy's size. */
export function allowedCount(prog: readonly Insn[], arch: Arch): number {
  return Object.values(arch.syscalls).filter((nr) => reachableReturns(prog, arch, nr).has(RET.ALLOW)).length;
}
