/**
 * What a seccomp notification means. The filter's return value carries the
 * reason in its data bits (src/policy/safety.ts REASON), so running the same
 * program in the interpreter on the notification's seccomp_data tells which
 * rule fired, without trusting anything the sandboxee controls.
 *
 * The details (where the instruction pointer falls, the pid inside the
 * sandbox) come from /proc while the offending thread is still blocked in the
 * notification; they describe, they never decide.
 */
import { readFileSync } from "../native/fs.ts";
import { archOfAudit, auditArchName, syscallName } from "../policy/arch.ts";
import { type Insn, RET } from "../policy/bpf.ts";
import { REASON } from "../policy/safety.ts";
import { innerPid, type Notification } from "../native/sys.ts";
import type { Violation } from "../sandbox/result.ts";
import { fromBytes } from "../sandbox/visible.ts";
import { TaskMemory } from "./memory.ts";

export type Verdict =
  | { kind: "violation"; violationKind: "SYSCALL" | "ARCH"; rule: string }
  | { kind: "trace" }
  | { kind: "refused"; /** by a safety rule: never let through, not even in audit mode */ safety?: boolean }
  | { kind: "allow" }
  | { kind: "errno"; errno: number };

const RULES: Record<number, { kind: "SYSCALL" | "ARCH"; rule: string }> = {
  [REASON.ARCH]: { kind: "ARCH", rule: "foreign architecture" },
  [REASON.X32]: { kind: "ARCH", rule: "x32 ABI" },
  [REASON.DANGER]: { kind: "SYSCALL", rule: "safety rule" },
  [REASON.POLICY]: { kind: "SYSCALL", rule: "policy" },
};

let interpreterModule: typeof import("../policy/interpreter.ts") | undefined;
/** The interpreter, read when the first notification is classified, not at every start (README.md, "Start-up"). */
const interpreter = () => (interpreterModule ??= require("../policy/interpreter.ts") as typeof import("../policy/interpreter.ts"));

/** Classifies a notification against the filter (with this run's exec magic). */
export function classify(prog: readonly Insn[], n: Notification, depth = 0): Verdict {
  const { ret } = interpreter().evaluate(prog, { nr: n.nr, arch: n.arch, ip: n.ip, args: n.args });
  const action = (ret & RET.ACTION_FULL) >>> 0;
  const data = ret & RET.DATA;
  if (action === RET.ALLOW) return { kind: "allow" };
  if (action === RET.ERRNO) return { kind: "errno", errno: data };
  if (action !== RET.USER_NOTIF) return { kind: "violation", violationKind: "SYSCALL", rule: "policy" };
  if (data === REASON.TRACE) return { kind: "trace" };
  if (data === REASON.REFUSED) return { kind: "refused" };
  if (data === REASON.SAFETY_REFUSED) return { kind: "refused", safety: true };
  if (data === REASON.EXEC && depth === 0) {
    // A later execveat repeating the first one's magic: judge it as any other.
    const args = [...n.args];
    args[5] = args[5]! ^ 1n;
    return classify(prog, { ...n, args }, 1);
  }
  const r = RULES[data] ?? { kind: "SYSCALL" as const, rule: "policy" };
  return { kind: "violation", violationKind: r.kind, rule: r.rule };
}

/**
 * "libc.so.6+0x11c8f0": the mapping of `pid` that holds `ip`. The name is
 * the sandboxee's to choose (any bytes but "/" and NUL; the kernel writes a
 * newline in it as "\012"), so it is read as bytes and kept exact
 * (`fromBytes`); whoever prints it makes it visible.
 */
export function ipMapping(pid: number, ip: bigint): string | undefined {
  let maps: string;
  try {
    // latin1: one char per byte, so that the path's bytes can be taken back out.
    maps = readFileSync(`/proc/${pid}/maps`).toString("latin1");
  } catch {
    return undefined;
  }
  for (const line of maps.split("\n")) {
    // Spaces pad the path's column; the path itself may hold any byte but a newline (s: "\r" too).
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \d+ *(.*)$/s.exec(line);
    if (!m) continue;
    const lo = BigInt(`0x${m[1]}`);
    const hi = BigInt(`0x${m[2]}`);
    if (ip < lo || ip >= hi) continue;
    const path = m[4]!;
    const name = path ? fromBytes(Buffer.from(path.slice(path.lastIndexOf("/") + 1), "latin1")) : "[anon]";
    const off = ip - lo + BigInt(`0x${m[3]}`);
    return `${name}+0x${off.toString(16)}`;
  }
  return undefined;
}

/**
 * A notification described: the syscall by name, its arguments decoded
 * (paths read through `listener` while the task still waits in it), where
 * it came from, and the policy change that would allow it.
 */
export function describeViolation(
  n: Notification,
  verdict: { violationKind: "SYSCALL" | "ARCH"; rule: string },
  listener?: number,
): Violation {
  const x32 = verdict.rule === "x32 ABI";
  const base = syscallName(n.arch, x32 ? n.nr & 0x3fffffff : n.nr);
  const name = base && x32 ? `${base} (x32)` : base;
  const syscall = name ?? `syscall ${n.nr}`;
  const mapping = ipMapping(n.pid, n.ip);
  // Decoded only on the architectures bunbox compiles for: a foreign arch's numbers mean other calls.
  const archName = verdict.violationKind === "SYSCALL" ? archOfAudit(n.arch) : undefined;
  const memory = listener === undefined ? undefined : new TaskMemory(listener, n);
  // The decoder, the value tables and the suggestions: read when a call is first described, not by every run.
  const { callText, decodeCall } = require("./decode.ts") as typeof import("./decode.ts");
  const { suggest } = require("./suggest.ts") as typeof import("./suggest.ts");
  const decoded = archName && name ? decodeCall(archName, name, n.args, memory) : callText(syscall, n.args);
  const suggestion = suggest(archName, syscall, n.nr, n.args, verdict.rule);
  return {
    kind: verdict.violationKind,
    rule: verdict.rule,
    syscall,
    nr: n.nr,
    arch: auditArchName(n.arch),
    args: n.args,
    pid: innerPid(n.pid) ?? n.pid,
    hostPid: n.pid,
    ip: n.ip,
    ...(mapping ? { ipMapping: mapping } : {}),
    decoded,
    ...(suggestion ? { suggestion } : {}),
  };
}
