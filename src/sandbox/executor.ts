/**
 * The executor says *what* runs: the program, argv, environment, working
 * directory, the fds it gets, and the limits. It is never sandboxed itself.
 *
 *   const executor = new Executor("/bin/cat", ["cat"], { limits: { wallTimeMs: 2000 } });
 *   executor.ipc.mapFd(fileFd, 0);
 *
 * The environment starts empty but for PATH (DESIGN.md: env cleared unless
 * passed). A program name without a slash is looked up in that PATH inside
 * the sandbox, as execvp does.
 */
import { UsageError } from "../errors.ts";
import { checkDestination } from "./mounts.ts";
import { Limits, type LimitsInit } from "./limits.ts";

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface ExecutorOptions {
  /** Environment of the sandboxee. Default: only PATH. */
  env?: Record<string, string>;
  /** Working directory inside the sandbox. Default "/". */
  cwd?: string;
  limits?: Partial<LimitsInit> | Limits;
}

/** Host fd → sandboxee fd mappings (Sandbox2's IPC). */
export class Ipc {
  readonly fds: { hostFd: number; targetFd: number }[] = [];

  /** The sandboxee gets `hostFd` (which stays open in bunbox) as `targetFd`. */
  mapFd(hostFd: number, targetFd: number): this {
    for (const [name, v] of [["hostFd", hostFd], ["targetFd", targetFd]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) throw new UsageError(`mapFd ${name}`, `bad fd ${v}`);
    }
    if (this.fds.some((m) => m.targetFd === targetFd)) {
      throw new UsageError("mapFd targetFd", `fd ${targetFd} is already mapped`);
    }
    if (this.fds.length >= 256) throw new UsageError("mapFd", "at most 256 fds can be mapped");
    this.fds.push({ hostFd, targetFd });
    return this;
  }
}

export class Executor {
  readonly path: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly limits: Limits;
  readonly ipc = new Ipc();

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
  }
}
