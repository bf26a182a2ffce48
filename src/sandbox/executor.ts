/**
 * The executor says *what* runs: the program, argv, environment, working
 * directory, the fds it gets, and the limits. It is never sandboxed itself.
 *
 *   const executor = new Executor("/bin/cat", ["cat"], { limits: { wallTimeMs: 2000 } });
 *   executor.ipc.mapFd(fileFd, 0);
 *
 * The environment starts empty but for PATH (README.md, "What the sandboxee
 * sees by default"). A program name without a slash is looked up in that
 * PATH inside the sandbox, as execvp does.
 */
import { fstatSync } from "../native/fs.ts";
import type { Comms, CommsOptions } from "../comms/comms.ts";
import { BunboxError, UsageError } from "../errors.ts";
import { socketpair } from "../native/comms.ts";
import { describeErrno } from "../native/errno.ts";
import { closeFd } from "../native/sys.ts";
import { checkDestination } from "./mounts.ts";
import { Limits, type LimitsInit } from "./limits.ts";

/** Highest fd number a sandboxee can be given (the shim's fd handling stops at 65535 on old kernels). */
const MAX_TARGET_FD = 65535;

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface ExecutorOptions {
  /**
   * false: "sandbox me here" — the program starts in its namespaces and
   * mounts with no seccomp filter and applies its policy itself by calling
   * bunbox_sandbox_me_here() (C) / sandboxMeHere() (TypeScript); until then
   * the run counts as setup. Default true (the filter is in before execve).
   */
  sandboxBeforeExec?: boolean;
  /** Environment of the sandboxee. Default: only PATH. */
  env?: Record<string, string>;
  /** Working directory inside the sandbox. Default "/". */
  cwd?: string;
  limits?: Partial<LimitsInit> | Limits;
  /**
   * A pseudo-terminal of the sandbox's own (csrc/child_a.c open_terminal):
   * the sandboxee's controlling terminal, on the std fds named (default all
   * three) in place of bunbox's. Its master is `Sandbox.terminal` once the
   * run started, the caller's to relay and to close (src/cli/tty.ts relays
   * it to the caller's terminal). Not for a fork-server child.
   */
  tty?: TerminalOptions;
}

export interface TerminalOptions {
  /** The std fds the terminal replaces (default [0, 1, 2]). */
  stdio?: readonly (0 | 1 | 2)[];
  /** Its size at the start (the master's TIOCSWINSZ changes it later); default unset (0x0). */
  rows?: number;
  cols?: number;
}

/** The fd where the sandboxee finds its comms channel (Sandbox2's kSandbox2ClientCommsFD). */
export const COMMS_FD = 1023;
/** The variable that tells the sandboxee its named fds: "name=fd,name=fd". */
export const FDS_ENV = "BUNBOX_FDS";

/**
 * What the sandboxee gets besides stdio (Sandbox2's IPC): host fds mapped to
 * chosen numbers, fds it sends back (receiveFd), and a comms channel.
 * Names given to fds are passed in BUNBOX_FDS, which the client libraries
 * read (bunbox_fd("name") in C, namedFd("name") in TypeScript).
 */
export class Ipc {
  readonly fds: { hostFd: number; targetFd: number; name?: string }[] = [];
  /** Ends of socketpairs that belong to the sandboxee: closed here after the spawn. */
  private readonly peerEnds: number[] = [];
  private commsChannel: Comms | undefined;

  /** The sandboxee gets `hostFd` (which stays open in bunbox) as `targetFd`. */
  mapFd(hostFd: number, targetFd: number, name?: string): this {
    for (const [what, v] of [["hostFd", hostFd], ["targetFd", targetFd]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) throw new UsageError(`mapFd ${what}`, `bad fd ${v}`);
    }
    if (targetFd > MAX_TARGET_FD) throw new UsageError("mapFd targetFd", `fd ${targetFd} is out of range (0..${MAX_TARGET_FD})`);
    try {
      fstatSync(hostFd);
    } catch {
      throw new UsageError("mapFd hostFd", `fd ${hostFd} is not open in this process`);
    }
    if (this.fds.some((m) => m.targetFd === targetFd)) {
      throw new UsageError("mapFd targetFd", `fd ${targetFd} is already mapped`);
    }
    if (name !== undefined && !/^[A-Za-z0-9_.-]+$/.test(name)) {
      throw new UsageError("mapFd name", `"${name}" is not a name (letters, digits, _ . -)`);
    }
    if (name !== undefined && this.fds.some((m) => m.name === name)) {
      throw new UsageError("mapFd name", `"${name}" is already used`);
    }
    if (this.fds.length >= 256) throw new UsageError("mapFd", "at most 256 fds can be mapped");
    this.fds.push({ hostFd, targetFd, ...(name !== undefined ? { name } : {}) });
    return this;
  }

  /**
   * A socketpair whose one end the sandboxee gets as `targetFd`; returns the
   * other end (the caller closes it). What the sandboxee writes to its fd
   * (its stdout, say) arrives there.
   */
  receiveFd(targetFd: number, name?: string): number {
    const pair = socketpair();
    if (typeof pair === "number") throw new BunboxError("ipc", `socketpair: ${describeErrno(-pair)}`);
    try {
      this.mapFd(pair[1], targetFd, name);
    } catch (e) {
      pair.forEach(closeFd);
      throw e;
    }
    this.peerEnds.push(pair[1]);
    return pair[0];
  }

  /** The comms channel to the sandboxee (its end at fd 1023), made on first use. */
  comms(options: CommsOptions = {}): Comms {
    if (!this.commsChannel) {
      // The comms code is read by a run that has a channel, not at every start (README.md, "Start-up").
      const { Comms } = require("../comms/comms.ts") as typeof import("../comms/comms.ts");
      const { comms, peerFd } = Comms.pairWithFd(options);
      try {
        this.mapFd(peerFd, COMMS_FD, "comms");
      } catch (e) {
        comms.close();
        closeFd(peerFd);
        throw e;
      }
      this.peerEnds.push(peerFd);
      this.commsChannel = comms;
    }
    return this.commsChannel;
  }

  /** The channel, if comms() was called. */
  get channel(): Comms | undefined {
    return this.commsChannel;
  }

  /** BUNBOX_FDS for the sandboxee's environment, if any fd has a name. */
  namesEnv(): string | undefined {
    const named = this.fds.filter((m) => m.name !== undefined);
    return named.length ? named.map((m) => `${m.name}=${m.targetFd}`).join(",") : undefined;
  }

  /** After the spawn: bunbox's copies of the sandboxee's socket ends go. */
  closePeerEnds(): void {
    for (const fd of this.peerEnds.splice(0)) closeFd(fd);
  }
}

export class Executor {
  readonly path: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly limits: Limits;
  readonly ipc = new Ipc();
  readonly sandboxBeforeExec: boolean;
  readonly tty: Readonly<Required<Pick<TerminalOptions, "stdio">> & TerminalOptions> | undefined;

  constructor(path: string, argv: readonly string[] = [path], options: ExecutorOptions = {}) {
    if (typeof path !== "string" || path.length === 0) throw new UsageError("command", "no program given");
    if (path.includes("\0")) throw new UsageError("command", "the program path contains a NUL byte");
    if (!Array.isArray(argv) || argv.length === 0) throw new UsageError("argv", "argv needs at least argv[0]");
    for (const a of argv) {
      if (typeof a !== "string" || a.includes("\0")) {
        throw new UsageError("argv", `${JSON.stringify(a)} is not a string without NUL bytes`);
      }
    }
    const env = options.env ?? { PATH: DEFAULT_PATH };
    for (const [k, v] of Object.entries(env)) {
      if (k.length === 0 || k.includes("=") || k.includes("\0") || typeof v !== "string" || v.includes("\0")) {
        throw new UsageError("env", `${JSON.stringify(k)}=${JSON.stringify(v)} is not a valid variable`);
      }
    }
    this.path = path;
    this.argv = [...argv];
    this.env = { ...env };
    this.cwd = checkDestination(options.cwd ?? "/", "cwd");
    this.limits = options.limits instanceof Limits ? options.limits : new Limits(options.limits);
    this.sandboxBeforeExec = options.sandboxBeforeExec ?? true;
    this.tty = options.tty ? checkTerminal(options.tty) : undefined;
  }
}

function checkTerminal(t: TerminalOptions): Executor["tty"] {
  const stdio = [...new Set(t.stdio ?? [0, 1, 2])] as (0 | 1 | 2)[];
  if (stdio.length === 0 || stdio.some((fd) => fd !== 0 && fd !== 1 && fd !== 2)) {
    throw new UsageError("tty.stdio", `${JSON.stringify(t.stdio)}: std fds (0, 1, 2), at least one`);
  }
  for (const key of ["rows", "cols"] as const) {
    const v = t[key];
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 0xffff)) throw new UsageError(`tty.${key}`, `${v}: not in 0..65535`);
  }
  return { ...t, stdio };
}
