/**
 * The sandboxee's terminal on the command line (README.md, "Terminals").
 *
 * When stdin, stdout or stderr is a terminal (or with --tty), the sandboxee
 * gets a pseudo-terminal of its own, from the sandbox's devpts, on those std
 * fds: its controlling terminal, so job control, /dev/tty, stty and
 * full-screen programs work, while the caller's terminal fd never enters the
 * sandbox (a sandboxee that could reach it could set its modes or its line
 * discipline, and they would stay so after bunbox exits). bunbox relays
 * bytes between the two (csrc/relay.c, a thread of the shim), forwards
 * window-size changes, and puts the caller's terminal in raw mode while
 * relaying input from it; its modes are put back on every way out bunbox
 * has: the run's end (whatever ended it), an error, process.exit. Only a
 * SIGKILL of bunbox itself leaves them raw (`stty sane` mends them).
 */
import { writeSync } from "../native/fs.ts";
import { BunboxError } from "../errors.ts";
import { describeErrno } from "../native/errno.ts";
import { EPOLLIN, watch } from "../native/reactor.ts";
import { closeFd } from "../native/sys.ts";
import { copyTerminalSize, exitNow, inForeground, isTerminal as isatty, makeRaw, RELAY_EOF_TO_VEOF, restoreModes, type SavedModes, startRelay, terminalSize } from "../native/tty.ts";
import type { TerminalOptions } from "../sandbox/executor.ts";

export type TtyChoice = "auto" | "tty" | "no-tty";

export interface TerminalPlan {
  /** The sandboxee's std fds that get its pty. */
  stdio: (0 | 1 | 2)[];
  /** The caller's fd the pty's input comes from (-1: none) and the one its output goes to. */
  input: number;
  output: number;
  /** The caller's terminal whose size the pty follows (-1: none). */
  sizeFrom: number;
  /** The caller's stdin is a terminal whose input is relayed: raw mode while relaying. */
  raw: boolean;
}

const STD = [0, 1, 2] as const;

/**
 * Whether the run gets a pty, and how it is wired. auto: the std fds that
 * are terminals get it (a pipe or a file stays what it is); --tty: all
 * three, relayed to bunbox's stdin and stdout (stderr joins stdout, as with
 * docker -t); --no-tty: none.
 */
export function planTerminal(choice: TtyChoice): TerminalPlan | undefined {
  if (choice === "no-tty") return undefined;
  const ttys = STD.filter((fd) => isatty(fd));
  if (choice === "auto" && ttys.length === 0) return undefined;
  const stdio = choice === "tty" ? [...STD] : ttys;
  const input = stdio.includes(0) ? 0 : -1;
  // Only stdin is a terminal (`bunbox run -- cmd > file`): the pty's echo goes back to that terminal.
  const output = stdio.includes(1) ? 1 : stdio.includes(2) ? 2 : 0;
  const sizeFrom = ttys.includes(output as 0) ? output : (ttys[0] ?? -1);
  return { stdio, input, output, sizeFrom, raw: input === 0 && ttys.includes(0) };
}

/** The Executor's `tty` for a plan: its std fds, and the caller's size to start with. */
export function terminalOptions(plan: TerminalPlan): TerminalOptions {
  const size = plan.sizeFrom >= 0 ? terminalSize(plan.sizeFrom) : -1;
  return { stdio: plan.stdio, ...(size > 0 ? { rows: size >>> 16, cols: size & 0xffff } : {}) };
}

/** How often a run started in the background looks whether it is in the foreground yet. */
const BACKGROUND_RECHECK_MS = 200;

/** How long the relay may go on draining after the Result, before it is stopped. */
const DRAIN_MS = 2000;

/** The relay of one run: started once the sandboxee runs, finished after its Result. */
export class TerminalRelay {
  private saved: SavedModes | undefined;
  private fds: { done: number; stop: number } | undefined;
  private ended: Promise<void> = Promise.resolve();
  private readonly onExit = () => this.restore();
  private readonly onResize = () => {
    if (this.master >= 0) copyTerminalSize(this.plan.sizeFrom, this.master);
  };
  private master = -1;

  constructor(private readonly plan: TerminalPlan) {}

  private background: ReturnType<typeof setInterval> | undefined;
  private startedInBackground = false;
  /**
   * Raw mode, once bunbox is in the terminal's foreground: started in the
   * background (`bunbox run … &`), changing the modes would stop it
   * (SIGTTOU), so they stay as they are until `fg`: seen at the SIGCONT
   * that continues a stopped job, or within BACKGROUND_RECHECK_MS (bash's
   * `fg` of a running job sends none). The relay reads the caller's input
   * only in the foreground too (csrc/relay.c).
   */
  private readonly toRaw = () => {
    if (this.saved || this.master < 0 || !inForeground(0)) return;
    clearInterval(this.background);
    // Registered first: from the moment the modes change, every exit puts them back.
    process.on("exit", this.onExit);
    const saved = makeRaw(0);
    if (typeof saved !== "number") this.saved = saved;
  };

  /** Raw mode (if the caller's stdin is relayed), window-size forwarding, the relay thread. */
  start(master: number): void {
    this.master = master;
    if (this.plan.raw) {
      this.toRaw();
      if (!this.saved) {
        this.startedInBackground = true;
        process.on("SIGCONT", this.toRaw);
        this.background = setInterval(this.toRaw, BACKGROUND_RECHECK_MS);
      }
    }
    if (this.plan.sizeFrom >= 0) {
      process.on("SIGWINCH", this.onResize);
      this.onResize(); // it may have changed while the sandbox was set up
    }
    const relay = startRelay(master, this.plan.input, this.plan.output, this.plan.input >= 0 && !isatty(this.plan.input) ? RELAY_EOF_TO_VEOF : 0);
    if (typeof relay === "number") {
      this.restore();
      throw new BunboxError("terminal", `cannot relay the sandboxee's terminal: ${describeErrno(-relay)}`);
    }
    this.fds = relay;
    this.ended = new Promise((resolve) => {
      const w = watch(relay.done, EPOLLIN, () => {
        w.close();
        resolve();
      });
    });
  }

  /**
   * After the Result: the relay ends by itself once the sandbox's last
   * process is gone (the master reads EIO) after passing on what was left;
   * stopped if it has not within DRAIN_MS. Then the modes come back.
   */
  async finish(): Promise<void> {
    if (this.fds) {
      const { done, stop } = this.fds;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([this.ended, new Promise<void>((r) => (timer = setTimeout(r, DRAIN_MS)))]);
      clearTimeout(timer);
      try {
        writeSync(stop, "s");
      } catch {
        // it ended meanwhile (EPIPE)
      }
      await this.ended;
      closeFd(done);
      closeFd(stop);
      this.fds = undefined;
    }
    this.restore();
    if (this.master >= 0) closeFd(this.master);
    this.master = -1;
    // Bun saved the terminal's modes when bunbox started and writes them back
    // at exit. Started in the background, those were the shell's line
    // editor's (no echo, no canonical mode), and bash keeps the modes a job
    // leaves: the shell would go on without echo. So bunbox's exit skips
    // that (its own output is written synchronously: nothing is left to flush).
    if (this.startedInBackground) process.once("exit", (code) => exitNow(code));
  }

  /** The caller's modes back (once); safe from an exit handler. */
  restore(): void {
    process.off("SIGWINCH", this.onResize);
    process.off("SIGCONT", this.toRaw);
    clearInterval(this.background);
    if (!this.saved) return;
    restoreModes(this.saved);
    this.saved = undefined;
    process.off("exit", this.onExit);
  }
}
