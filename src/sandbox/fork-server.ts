/**
 * Fork server mode (Sandbox2's custom fork server): a prepared program is
 * started once, in its namespaces and mounts but without a filter, and calls
 * bunbox_fork_server_loop(); each Sandbox run through it gets a fresh child
 * of that program, already initialised, with its own policy, rlimits, comms
 * and Result. Protocol: csrc/client/bunbox_sandbox.c.
 *
 *   const server = await ForkServer.start(new Executor("/srv/worker", ["worker"]), policy);
 *   const result = await new Sandbox(server.executor(), childPolicy).run();
 *   server.close();
 *
 * Requests are written whole (four frames) one at a time, and replies carry
 * the request id, so many runs can fork at once. The server reaps its
 * children and reports each end (status and rusage) over comms; the host
 * watches each child through the pidfd the server sends. Children share the
 * server's namespaces: use one server per trust domain.
 */
import type { Comms } from "../comms/comms.ts";
import { BunboxError } from "../errors.ts";
import { describeErrno } from "../native/errno.ts";
import { closeFd, pidfdGetfd, pidfdInnerPid, pidfdSignal } from "../native/sys.ts";
import { encode } from "../policy/bpf.ts";
import type { Policy } from "../policy/policy.ts";
import type { Report } from "../monitor/monitor.ts";
import type { Executor, ExecutorOptions } from "./executor.ts";
import { type Limits, SETUP_TIMEOUT_MS } from "./limits.ts";
import { ForkExecutor, ServerLauncher } from "./launch/fork.ts";
import type { ArmedFilter } from "./launch/launcher.ts";
import { packRlimits } from "./request.ts";
import { Sandbox } from "./sandbox.ts";

export interface Forked {
  /** The child's pid inside the sandbox. */
  pid: number;
  pidfd: number;
  listener: number;
  /** The fd number of the child's own copy of its listener (taken from it when it confirms). */
  theirListenerFd: number;
  /** bunbox's end of the child's own comms socket. */
  commsFd: number;
}

interface Pending {
  resolve: (f: Forked) => void;
  reject: (e: Error) => void;
}

type ServerMessage =
  | { op: "forked"; id: number; pid: number; listener_fd: number }
  | { op: "fork_failed"; id: number; error: string }
  | { op: "exit"; pid: number; wstatus: number; utime_us: number; stime_us: number; maxrss_kb: number };

export class ForkServer {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly exits = new Map<number, Report>();
  private readonly exitWaiters = new Map<number, (r: Report | undefined) => void>();
  /** Children handed out and not yet reported ended. */
  private readonly live = new Set<number>();
  private sending: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly sandbox: Sandbox,
    readonly comms: Comms,
    /** The server's pid inside its sandbox. */
    readonly pid: number,
  ) {
    void this.readLoop();
  }

  /**
   * Starts `executor`'s program as a fork server inside `policy`'s
   * namespaces and filesystem (its syscall rules do not apply to the server,
   * which never gets a filter; each child gets its own policy).
   */
  static async start(executor: Executor, policy: Policy, options: { timeoutMs?: number } = {}): Promise<ForkServer> {
    const comms = executor.ipc.comms();
    const sandbox = new Sandbox(executor, policy, {}, { launcher: new ServerLauncher() });
    sandbox.runAsync();
    const ended = sandbox.awaitResult();
    try {
      const early = ended.then((r) => {
        throw new BunboxError("fork-server", `the fork server ended before it was ready: ${r.toString()}`);
      });
      const hello = await Promise.race([comms.recvJson<{ op?: string; pid?: number }>({ timeoutMs: options.timeoutMs ?? SETUP_TIMEOUT_MS }), early]);
      if (hello?.op !== "fork_server_ready" || typeof hello.pid !== "number") {
        throw new BunboxError("fork-server", `expected {"op":"fork_server_ready"}, got ${JSON.stringify(hello)}`);
      }
      return new ForkServer(sandbox, comms, hello.pid);
    } catch (e) {
      // A server that is not ready is of no use: it goes, with its channel,
      // before the caller hears (nothing of it stays open).
      sandbox.kill();
      comms.close();
      await ended;
      if (e instanceof BunboxError && e.stage === "fork-server") throw e;
      throw new BunboxError("fork-server", `the fork server did not say it was ready: ${(e as Error).message}`);
    }
  }

  /** An Executor whose runs fork from this server (its limits are the only option a child takes). */
  executor(options: Pick<ExecutorOptions, "limits"> = {}): Executor {
    return new ForkExecutor(this, options);
  }

  /** Asks for one child with `armed` (a notify filter with its exec magic) and `limits`. */
  fork(armed: ArmedFilter, limits: Limits): Promise<Forked> {
    if (this.closed) return Promise.reject(new BunboxError("fork-server", "the fork server is closed"));
    const id = this.nextId++;
    const rlimits = packRlimits(limits);
    const program = encode(armed.program);
    const reply = new Promise<Forked>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    // The frames of a request must not interleave with another's.
    this.sending = this.sending.then(async () => {
      await this.comms.sendUint32(id);
      await this.comms.sendBytes(rlimits);
      await this.comms.sendBytes(program);
      await this.comms.sendUint64(armed.magic);
    }).catch((e: Error) => this.failAll(e));
    return reply;
  }

  /** The report of child `pid` (undefined if the server went away first). */
  exitReport(pid: number): Promise<Report | undefined> {
    const done = this.exits.get(pid);
    if (done) {
      this.exits.delete(pid);
      return Promise.resolve(done);
    }
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.exitWaiters.set(pid, resolve));
  }

  /** Kills the server and, with its pid namespace, every child. */
  close(): void {
    this.shutdown(new BunboxError("fork-server", "the fork server is closed"));
  }

  /** The server goes (and its children with its pid namespace), its channel too; every pending call fails with `e`. */
  private shutdown(e: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.sandbox.kill();
    this.comms.close();
    this.failAll(e);
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    for (const w of this.exitWaiters.values()) w(undefined);
    this.exitWaiters.clear();
  }

  private async readLoop(): Promise<void> {
    try {
      for (;;) {
        const msg = await this.comms.recvJson<ServerMessage>({ timeoutMs: Infinity });
        if (msg.op === "forked") {
          const fds = await this.comms.recvFds({ timeoutMs: 5000 });
          const p = this.pending.get(msg.id);
          this.pending.delete(msg.id);
          // The pidfd must be the child's (a server could name any process
          // of its sandbox, init included, for us to take an fd from).
          const ours = fds.length === 2 && pidfdInnerPid(fds[0]!) === msg.pid && msg.pid > 1 &&
            Number.isInteger(msg.listener_fd) && msg.listener_fd >= 0;
          // The child is non-dumpable, so the server cannot take its listener;
          // bunbox can (CAP_SYS_PTRACE over the user namespace it made).
          const listener = p && ours ? pidfdGetfd(fds[0]!, msg.listener_fd) : -1;
          if (!p || listener < 0) {
            // It would wait in its confirming execveat for ever.
            if (ours) pidfdSignal(fds[0]!, 9);
            fds.forEach(closeFd);
            const why = !ours ? "the server's reply names another process" : `taking the child's seccomp listener: ${describeErrno(-listener)}`;
            p?.reject(new BunboxError("fork-server", why));
            continue;
          }
          this.live.add(msg.pid);
          p.resolve({ pid: msg.pid, pidfd: fds[0]!, listener, theirListenerFd: msg.listener_fd, commsFd: fds[1]! });
        } else if (msg.op === "fork_failed") {
          this.pending.get(msg.id)?.reject(new BunboxError("fork-server", `fork failed in the server: ${msg.error}`));
          this.pending.delete(msg.id);
        } else if (msg.op === "exit" && this.live.delete(msg.pid)) {
          const report: Report = { wstatus: msg.wstatus, userUs: msg.utime_us, sysUs: msg.stime_us, maxRssKb: msg.maxrss_kb };
          const w = this.exitWaiters.get(msg.pid);
          if (w) {
            this.exitWaiters.delete(msg.pid);
            w(report);
          } else {
            this.exits.set(msg.pid, report);
          }
        }
      }
    } catch (e) {
      // The channel broke (or the server ended): a server we cannot talk to
      // is of no use, and must not stay open until the caller's close().
      this.shutdown(e instanceof Error ? e : new Error(String(e)));
    }
  }
}
