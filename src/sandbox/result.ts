/**
 * How a run ended, exactly: the Result of README.md ("Exit codes"). `toString()` is the one
 * line the CLI prints, with every string the sandbox could have chosen made
 * visible (src/sandbox/visible.ts); `toJSON()` keeps those strings exact and
 * is stable (fields are only ever added).
 */
import type { ContainmentInfo } from "../containment/containment.ts";
import type { Suggestion } from "../monitor/suggest.ts";
import type { SandboxNetworkReport } from "../net/network.ts";
import { signalName } from "../native/signals.ts";
import { formatBytes } from "./units.ts";
import { visible } from "./visible.ts";

export type Status =
  | "OK"
  | "SETUP_ERROR"
  | "VIOLATION"
  | "SIGNALED"
  | "TIMEOUT"
  | "EXTERNAL_KILL"
  | "INTERNAL_ERROR";

export interface Rusage {
  /** User CPU time of every process of the sandbox, in ms. */
  userMs: number;
  sysMs: number;
  /**
   * Most memory the whole sandbox held at once, in KiB, from its cgroup; null
   * where it had none. Not the kernel's per-process maxrss: the sandbox's
   * first processes share bunbox's memory until their exec, and the kernel
   * counts that in (~30 MB for /bin/true). A fork-server child's is its
   * own process's maxrss (it never shared bunbox's memory).
   */
  maxRssKb: number | null;
}

export interface SetupErrorInfo {
  stage: string;
  errno: number;
  errnoName: string;
  /** The path or value the stage was working on (the sandbox may have chosen it). */
  detail: string;
  message: string;
}

export interface Violation {
  /** SYSCALL: the policy refused it; ARCH: a foreign-architecture call (int 0x80, x32). */
  kind: "SYSCALL" | "ARCH";
  /** Why: "policy", "safety rule", "foreign architecture", "x32 ABI", "trace hook". */
  rule: string;
  syscall: string;
  nr: number;
  arch: string;
  args: readonly bigint[];
  /** Pid inside the sandbox (and as bunbox sees it). */
  pid: number;
  hostPid: number;
  /**
   * Instruction pointer, and the mapping it falls in ("libc.so.6+0x11c8f0").
   * The name is the sandboxee's to choose; a byte of it that is not UTF-8 is
   * the lone surrogate U+DC80+byte (src/sandbox/visible.ts `fromBytes`).
   */
  ip: bigint;
  ipMapping?: string;
  /**
   * The call as a person reads it: values by name, paths read from the
   * sandboxee's memory while it waited (`openat(AT_FDCWD, "/etc/shadow",
   * O_RDONLY|O_CLOEXEC, 0)`). The paths are the sandboxee's to choose, kept
   * exact as `ipMapping`; they describe the call, nothing was decided on them.
   */
  decoded?: string;
  /** The smallest policy change that would allow the call (src/monitor/suggest.ts). */
  suggestion?: Suggestion;
  /** Set when the kernel could not tell us the details (no user notification). */
  detailMissing?: string;
}

/**
 * A call the policy refused without ending the run: answered with an errno
 * (a policy with `"onRefusal": "errno"`) or let through (`"audit": true`).
 * Calls alike (the same suggestion) are counted in one entry, which keeps the
 * first one's details.
 */
export interface RefusedCall {
  syscall: string;
  nr: number;
  arch: string;
  args: readonly bigint[];
  decoded: string;
  pid: number;
  ipMapping?: string;
  count: number;
  /** What the sandboxee got: "EPERM", "ENOSYS", or "allowed (audit)". */
  answer: string;
  suggestion?: Suggestion;
}

export interface ResultInit {
  status: Status;
  reason: string;
  exitCode?: number;
  signal?: number;
  setup?: SetupErrorInfo;
  violation?: Violation;
  rusage?: Rusage;
  wallTimeMs: number;
  /** The sandboxee's pid as bunbox saw it, when it got that far. */
  pid?: number;
  /** How it was contained and what its cgroup counted (README.md "Containment"). */
  containment?: ContainmentInfo;
  refused?: readonly RefusedCall[];
  /** Refused calls beyond the ones listed (the list is bounded). */
  refusedOmitted?: number;
  /** --net proxy: every connection and DNS answer (docs/network.md). */
  network?: SandboxNetworkReport;
}

/** Exit codes (README.md "Exit codes"). */
export const EXIT = { TIMEOUT: 124, SETUP: 125, NOT_EXECUTABLE: 126, NOT_FOUND: 127, VIOLATION: 159 } as const;

const hex = (v: bigint) => `0x${v.toString(16)}`;

export class Result {
  readonly status: Status;
  readonly reason: string;
  readonly exitCode: number | undefined;
  readonly signal: number | undefined;
  readonly setup: SetupErrorInfo | undefined;
  readonly violation: Violation | undefined;
  readonly rusage: Rusage;
  readonly wallTimeMs: number;
  readonly pid: number | undefined;
  readonly containment: ContainmentInfo | undefined;
  /** Calls refused without ending the run (onRefusal "errno", audit), alike ones counted together. */
  readonly refused: readonly RefusedCall[];
  readonly refusedOmitted: number;
  readonly network: SandboxNetworkReport | undefined;

  constructor(private readonly init: ResultInit) {
    this.status = init.status;
    this.reason = init.reason;
    this.exitCode = init.exitCode;
    this.signal = init.signal;
    this.setup = init.setup;
    this.violation = init.violation;
    this.rusage = init.rusage ?? { userMs: 0, sysMs: 0, maxRssKb: 0 };
    this.wallTimeMs = init.wallTimeMs;
    this.pid = init.pid;
    this.containment = init.containment;
    this.refused = Object.freeze([...(init.refused ?? [])]);
    this.refusedOmitted = init.refusedOmitted ?? 0;
    this.network = init.network;
    Object.freeze(this);
  }

  /** A copy with some fields added or changed (the network report, once the proxy has closed). */
  with(changes: Partial<ResultInit>): Result {
    return new Result({ ...this.init, ...changes });
  }

  /** A limit of the whole sandbox bit during the run (forks refused, processes killed): worth saying even when it ended OK. */
  get limitHit(): boolean {
    return (this.containment?.forksRefused ?? 0) > 0 || (this.containment?.oomKills ?? 0) > 0;
  }

  get ok(): boolean {
    return this.status === "OK" && this.exitCode === 0;
  }

  /** The exit code `bunbox run` ends with (README.md "Exit codes"). */
  get code(): number {
    switch (this.status) {
      case "OK":
        return this.exitCode ?? 0;
      case "SIGNALED":
      case "EXTERNAL_KILL":
        return 128 + (this.signal ?? 9);
      case "TIMEOUT":
        return EXIT.TIMEOUT;
      case "VIOLATION":
        return EXIT.VIOLATION;
      case "SETUP_ERROR":
        if (this.setup?.stage === "lookup") {
          return this.setup.errnoName === "ENOENT" ? EXIT.NOT_FOUND : EXIT.NOT_EXECUTABLE;
        }
        if (this.setup?.stage === "exec") {
          return this.setup.errnoName === "ENOENT" ? EXIT.NOT_FOUND : EXIT.NOT_EXECUTABLE;
        }
        return EXIT.SETUP;
      case "INTERNAL_ERROR":
        return EXIT.SETUP;
    }
  }

  /**
   * One human line: "VIOLATION: ptrace(0, 0, 0, 0) [x86_64] pid 2". Every
   * string goes through `visible()` (unchanged unless it holds a control,
   * format or separator character, a non-UTF-8 byte or a backslash).
   */
  toString(): string {
    const c = this.containment;
    const notes: string[] = [];
    if (c && c.forksRefused > 0) {
      notes.push(`the process limit of ${c.limits.processes.value} refused ${c.forksRefused} fork${c.forksRefused === 1 ? "" : "s"}`);
    }
    // When the kill did not end the run (another process than the sandboxee's was killed), it still happened.
    if (c && c.oomKills > 0 && !this.reason.includes("memory limit")) {
      const limit = c.limits.memory ? `memory limit of ${formatBytes(c.limits.memory.value)}` : "lack of memory";
      notes.push(`the ${limit} killed ${c.oomKills} process${c.oomKills === 1 ? "" : "es"}`);
    }
    return notes.length ? `${this.line()} (${notes.join("; ")})` : this.line();
  }

  private line(): string {
    const v = this.violation;
    switch (this.status) {
      case "OK":
        return `OK: exit code ${this.exitCode ?? 0}`;
      case "VIOLATION": {
        if (!v) return `VIOLATION: ${visible(this.reason)}`;
        if (v.detailMissing) return `VIOLATION: ${visible(v.syscall)} [${visible(v.arch)}] (${visible(v.detailMissing)})`;
        // The decoder and its tables, read only now (README.md, "Start-up").
        const { callText } = require("../monitor/decode.ts") as typeof import("../monitor/decode.ts");
        const call = visible(v.decoded ?? callText(v.syscall, v.args));
        const at = v.ipMapping ? ` at ${visible(v.ipMapping)}` : "";
        const why = v.kind === "ARCH" || v.rule !== "policy" ? ` (${visible(v.rule)})` : "";
        return `VIOLATION: ${call} [${visible(v.arch)}] pid ${v.pid}${at}${why}`;
      }
      case "SETUP_ERROR":
        return `SETUP_ERROR: ${this.setup ? setupText(this.setup) : visible(this.reason)}`;
      default:
        return `${this.status}: ${visible(this.reason)}`;
    }
  }

  toJSON(): Record<string, unknown> {
    const v = this.violation;
    return {
      status: this.status,
      reason: this.reason,
      code: this.code,
      ...(this.exitCode !== undefined ? { exitCode: this.exitCode } : {}),
      ...(this.signal !== undefined ? { signal: this.signal, signalName: signalName(this.signal) } : {}),
      ...(this.setup ? { setup: { ...this.setup } } : {}),
      ...(v
        ? {
            violation: {
              ...v,
              args: v.args.map(hex),
              ip: hex(v.ip),
            },
          }
        : {}),
      ...(this.refused.length
        ? { refused: this.refused.map((r) => ({ ...r, args: r.args.map(hex) })), ...(this.refusedOmitted ? { refusedOmitted: this.refusedOmitted } : {}) }
        : {}),
      rusage: { ...this.rusage },
      wallTimeMs: Math.round(this.wallTimeMs * 1000) / 1000,
      ...(this.pid !== undefined ? { pid: this.pid } : {}),
      ...(this.containment ? { containment: this.containment } : {}),
      ...(this.network ? { network: this.network } : {}),
    };
  }

  static setupError(setup: SetupErrorInfo, wallTimeMs: number): Result {
    return new Result({ status: "SETUP_ERROR", reason: setup.stage, setup, wallTimeMs });
  }
}

/**
 * The setup message, shown. It embeds the detail (a path the sandboxee or the
 * caller may have chosen) as it is, and may end in lines of its own (a hint):
 * each occurrence of the detail is made visible whole, so that a newline in
 * it cannot start a line; bunbox's own lines stay lines.
 */
function setupText(s: SetupErrorInfo): string {
  const own = (text: string) => text.split("\n").map(visible).join("\n");
  return s.detail ? s.message.split(s.detail).map(own).join(visible(s.detail)) : own(s.message);
}
