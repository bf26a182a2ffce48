/**
 * The compiler against the kernel: random policies (a seeded PRNG; argument
 * rules with every compare the builder offers, at 64 and 32 bits, labels and
 * gotos; a safety rule relaxed now and then), compiled by PolicyBuilder and
 * loaded by test/fixtures/bpfdiff.c in a real child process, which makes
 * random raw syscalls with random arguments under them. Every action is an
 * errno that names its rule, the default has its own, so the errno the
 * kernel returns says which rule decided; it must be the interpreter's
 * verdict for the same call, and the rule list's own (read directly). Violations and TRACE notify the monitor, which
 * is absent here: the kernel answers ENOSYS. The filters without user
 * notification kill on a violation: the fixture reports the kill and goes on
 * in a new child.
 *
 * Nothing runs for real: the fixture refuses a filter unless every return in
 * it is an errno, a notification or a kill (test below), and the policies
 * allow nothing. The seed is random per run and printed on failure; replay
 * with BUNBOX_BPFDIFF_SEED=N bun test test/policy/differential.test.ts
 */
import { describe, expect, test } from "bun:test";
import { hostArch } from "../../src/policy/arch.ts";
import { BPF, encode, type Insn, RET } from "../../src/policy/bpf.ts";
import { PolicyBuilder } from "../../src/policy/builder.ts";
import { effectiveRules, retValue, withMagic } from "../../src/policy/compiler.ts";
import { evaluate } from "../../src/policy/interpreter.ts";
import {
  type Action, arg, arg32, errno, type Fragment, goto, jeq, jge, jgt, jle, jlt, jne, jset, label, type Node,
} from "../../src/policy/rules.ts";
import { DANGEROUS_SYSCALLS, DANGEROUS_USES, REASON } from "../../src/policy/safety.ts";
import { decide } from "../../src/policy/verify.ts";
import { DIR } from "../helpers.ts";

const ARCH = hostArch();
const SEED = Number(process.env.BUNBOX_BPFDIFF_SEED ?? Math.floor(Math.random() * 2 ** 31));
const FILTERS = 24;
const CALLS = 150;
/** Rule i's action is errno FIRST_ERRNO + i; the default is DEFAULT_ERRNO. */
const FIRST_ERRNO = 1000;
const DEFAULT_ERRNO = 4000;
/** The first execveat's return in the filters without notification (ALLOW there). */
const EXEC_ERRNO = 4001;
const ENOSYS = 38;
/**
 * Numbers the kernel lets through without asking seccomp (uretprobe and
 * uprobe on x86_64, Linux 6.14 and 6.18; see test/fixtures/bpfdiff.c): no
 * filter decides them, so they are not calls to compare (this test found them).
 */
const UNFILTERED = ARCH.name === "x86_64" ? [335, 336] : [];
const SIGSYS = 31;

/** mulberry32: small, seedable, good enough to pick test cases. */
function rng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const u64 = () => (BigInt(int(2 ** 32)) << 32n) | BigInt(int(2 ** 32));
  return { next, int, pick, u64 };
}
type Rng = ReturnType<typeof rng>;

const VALUES = [
  0n, 1n, 2n, 3n, 4n, 8n, 0x7fn, 0x80n, 0xffn, 0x5401n, 0xffffn, 0x10000n, 0x7fffffffn, 0x80000000n, 0xffffffffn,
  0x100000000n, 0x100000001n, 0xffffffff00000000n, 0x8000000000000000n, 0xffffffffffffffffn,
];
const COMPARES = [jeq, jne, jset, jge, jgt, jle, jlt];
const DANGER_NAMES = [...DANGEROUS_SYSCALLS, ...Object.keys(DANGEROUS_USES)];

interface Generated {
  insns: Insn[];
  calls: { nr: number; args: bigint[] }[];
  notify: boolean;
  /** The rule list's own verdict for a call (src/policy/verify.ts decide). */
  rulesSay: (call: { nr: number; args: bigint[] }) => number;
}

function generate(seed: number): Generated {
  const r = rng(seed);
  const b = new PolicyBuilder({ arch: ARCH.name }).defaultAction(errno(DEFAULT_ERRNO));
  let rules = 0;
  const action = (): Action => errno(FIRST_ERRNO + rules++);
  const compared: bigint[] = [];
  const value = (width: 32 | 64) => {
    const v = r.next() < 0.8 ? r.pick(VALUES) : r.u64();
    const out = width === 32 ? BigInt.asUintN(32, v) : v;
    compared.push(out);
    return out;
  };
  /** A program of compare groups; some jump forward to a label before the last group. */
  const fragment = (all: boolean): Fragment => {
    const nodes: (Node | Action)[] = [];
    const groups = all ? 1 : 1 + r.int(3);
    const useLabel = groups > 1 && r.next() < 0.5;
    for (let g = 0; g < groups; g++) {
      if (useLabel && g === groups - 1) nodes.push(label("last"));
      const width = r.next() < 0.5 ? 64 : 32;
      nodes.push(width === 64 ? arg(r.int(6)) : arg32(r.int(6)));
      const compares = all ? COMPARES : Array.from({ length: 1 + r.int(3) }, () => r.pick(COMPARES));
      for (const cmp of compares) {
        const toLabel = useLabel && g < groups - 1 && r.next() < 0.3;
        nodes.push(cmp(value(width), toLabel ? "last" : action()));
      }
      if (useLabel && g < groups - 1 && r.next() < 0.2) nodes.push(goto("last"));
    }
    const end = r.next();
    if (end < 0.4) nodes.push(action());
    return nodes;
  };

  const names = Object.keys(ARCH.syscalls);
  const decided = new Set<string>();
  const ruled: number[] = [];
  const rule = (name: string, all = false) => {
    if (decided.has(name)) return;
    ruled.push(ARCH.syscalls[name]!);
    if (!all && r.next() < 0.3) {
      b.blockSyscallWithErrno(name, FIRST_ERRNO + rules++);
      decided.add(name);
    } else {
      b.addPolicyOnSyscall(name, fragment(all));
    }
  };
  // One program with every kind of compare, then random ones; the
  // safety-ruled syscalls (clone's flags, ioctl's TIOCSTI…) are picked often.
  rule(r.pick(names), true);
  for (let i = 0, n = 3 + r.int(25); i < n; i++) {
    rule(r.next() < 0.3 ? r.pick(["clone", "unshare", "ioctl", "seccomp", "clone3", "ptrace", "mount"]) : r.pick(names));
  }
  if (r.next() < 0.3) b.dangerAllowUnsafe(r.pick(DANGER_NAMES));

  const notify = r.next() < 0.6;
  const built = b.tryBuild();
  if (!built.policy) throw new Error(`the random policy does not build: ${built.problems.join("; ")}`);
  const magic = r.u64();
  const policy = built.policy;
  const insns = withMagic(policy.filter(notify), magic);
  // Without notification the first execveat is ALLOW: an errno of its own here.
  const execRet = notify ? (RET.USER_NOTIF | REASON.EXEC) >>> 0 : (RET.ERRNO | EXEC_ERRNO) >>> 0;
  for (const i of insns) if (i.code === (BPF.RET | BPF.K) && i.k === RET.ALLOW) i.k = execRet;
  const intent = {
    arch: ARCH,
    rules: effectiveRules({ arch: ARCH, rules: policy.rules, defaultAction: policy.defaultAction, dangerAllowed: policy.dangerAllowed, notify }),
    defaultAction: policy.defaultAction,
    ret: (a: Action) => retValue(a, notify),
    violation: (reason: number) => (notify ? (RET.USER_NOTIF | reason) >>> 0 : RET.KILL_PROCESS),
    exec: execRet,
  };
  const rulesSay = (c: { nr: number; args: bigint[] }) => decide(intent, c.nr, ARCH.audit, c.args, magic);

  const argument = () => {
    const p = r.next();
    if (p < 0.5 && compared.length) {
      const v = r.pick(compared) + BigInt(r.int(3) - 1);
      // Sometimes garbage in the high half, which a 32-bit compare must ignore.
      return BigInt.asUintN(64, r.next() < 0.3 ? v ^ (BigInt(r.int(2 ** 32)) << 32n) : v);
    }
    return p < 0.8 ? r.pick(VALUES) : r.u64();
  };
  const special = [-1, 0x7fffffff, ARCH.syscalls.execveat!, ...(ARCH.x32Bit ? [ARCH.x32Bit | ARCH.syscalls.getpid!, ARCH.x32Bit] : [])];
  const calls = Array.from({ length: CALLS }, () => {
    const p = r.next();
    let nr = p < 0.6 ? r.pick(ruled) : p < 0.8 ? ARCH.syscalls[r.pick(names)]! : p < 0.9 ? r.int(600) : r.pick(special);
    if (UNFILTERED.includes(nr)) nr = -1;
    const args = Array.from({ length: 6 }, argument);
    if (nr === ARCH.syscalls.execveat && r.next() < 0.5) args[5] = magic;
    return { nr, args };
  });
  return { insns, calls, notify, rulesSay };
}

/** What the kernel must answer for a filter return value, as bpfdiff prints it. */
function answer(ret: number): string {
  const action = (ret & RET.ACTION_FULL) >>> 0;
  if (action === RET.ERRNO) return `e ${Math.min(ret & RET.DATA, 4095)}`;
  if (action === RET.USER_NOTIF) return `e ${ENOSYS}`; // no listener: ENOSYS
  if (action === RET.KILL_PROCESS) return `k ${SIGSYS}`;
  throw new Error(`unexpected return 0x${ret.toString(16)}`);
}

function input(insns: readonly Insn[], calls: { nr: number; args: bigint[] }[]): Uint8Array {
  const prog = encode(insns);
  const buf = new Uint8Array(4 + prog.length + 4 + calls.length * 56);
  const view = new DataView(buf.buffer);
  view.setUint32(0, insns.length, true);
  buf.set(prog, 4);
  let at = 4 + prog.length;
  view.setUint32(at, calls.length, true);
  at += 4;
  for (const c of calls) {
    view.setBigInt64(at, BigInt(c.nr), true);
    c.args.forEach((a, i) => view.setBigUint64(at + 8 + 8 * i, a, true));
    at += 56;
  }
  return buf;
}

function bpfdiff(bytes: Uint8Array): { code: number; lines: string[]; stderr: string } {
  const p = Bun.spawnSync([`${DIR}/bpfdiff`], { stdin: bytes, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, lines: p.stdout.toString().trim().split("\n"), stderr: p.stderr.toString() };
}

describe("the kernel, the interpreter and the rules agree", () => {
  test(`${FILTERS} random filters × ${CALLS} random calls`, () => {
    let kills = 0;
    let notified = 0;
    for (let f = 0; f < FILTERS; f++) {
      // Every message names the seed of the run: replay it with BUNBOX_BPFDIFF_SEED.
      const replay = `BUNBOX_BPFDIFF_SEED=${SEED} (${ARCH.name}), filter ${f}`;
      let generated: Generated;
      try {
        generated = generate((SEED + f * 0x9e3779b9) >>> 0);
      } catch (e) {
        throw new Error(`${replay}: ${(e as Error).message}`);
      }
      const { insns, calls, notify, rulesSay } = generated;
      const r = bpfdiff(input(insns, calls));
      const where = `${replay} (notify ${notify})`;
      expect(`${where}: exit ${r.code} ${r.stderr}`).toBe(`${where}: exit 0 `);
      calls.forEach((c, i) => {
        // The interpreter's verdict is the kernel's, and the rules' own.
        const want = answer(evaluate(insns, { nr: c.nr, arch: ARCH.audit, args: c.args }).ret >>> 0);
        expect(`${where}, call ${i}: rules say ${answer(rulesSay(c) >>> 0)}`).toBe(`${where}, call ${i}: rules say ${want}`);
        if (want === `k ${SIGSYS}`) kills++;
        if (want === `e ${ENOSYS}`) notified++;
        const args = c.args.map((a) => `0x${a.toString(16)}`).join(", ");
        expect(`${where}, call ${i}: syscall(${c.nr}, ${args}) -> ${r.lines[i]}`).toBe(`${where}, call ${i}: syscall(${c.nr}, ${args}) -> ${want}`);
      });
    }
    // The runs reached the violation paths of both kinds of filter.
    expect(kills).toBeGreaterThan(0);
    expect(notified).toBeGreaterThan(0);
  });
});

describe("the fixture is safe whatever it is given", () => {
  test("a filter that could allow a call is refused before anything runs", () => {
    const allow: Insn[] = [{ code: BPF.RET | BPF.K, jt: 0, jf: 0, k: RET.ALLOW }];
    const r = bpfdiff(input(allow, [{ nr: 39, args: [0n, 0n, 0n, 0n, 0n, 0n] }]));
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("refused");
    const retA: Insn[] = [{ code: BPF.RET | BPF.A, jt: 0, jf: 0, k: 0 }];
    expect(bpfdiff(input(retA, [])).code).toBe(3);
    const log: Insn[] = [{ code: BPF.RET | BPF.K, jt: 0, jf: 0, k: RET.LOG }];
    expect(bpfdiff(input(log, [])).code).toBe(3);
  });

  test.if(UNFILTERED.length > 0)("a call no filter sees is refused before anything runs", () => {
    const errnoOnly: Insn[] = [{ code: BPF.RET | BPF.K, jt: 0, jf: 0, k: (RET.ERRNO | 1) >>> 0 }];
    const r = bpfdiff(input(errnoOnly, [{ nr: UNFILTERED[0]!, args: [0n, 0n, 0n, 0n, 0n, 0n] }]));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("never reaches a seccomp filter");
  });
});
