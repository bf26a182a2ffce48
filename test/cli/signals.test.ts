/**
 * Signals a supervisor passes on (src/cli/run.ts FORWARDED): each one sent
 * to bunbox reaches the sandboxee's process group through its init, in
 * order, and the run goes on; SIGTERM ends it, and the Result says how.
 * The sandbox's init is in a session of its own, so a signal the caller's
 * terminal sends its foreground group reaches the sandboxee once, through
 * bunbox. A SIGPIPE death (the reader went away) is said only with -v.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { BUNBOX, DIR, FX } from "../helpers.ts";

const IN_BOX = `${FX}/tty`;

/** bunbox running `tty signals`, read line by line. */
function start(extra: string[] = []) {
  const proc = Bun.spawn([BUNBOX, "run", "--json", ...extra, "--ro", `${DIR}:${FX}`, "--", IN_BOX, "signals"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const reading = (async () => {
    const dec = new TextDecoder();
    for await (const c of proc.stdout) out += dec.decode(c, { stream: true });
  })();
  return {
    proc,
    async line(text: string): Promise<void> {
      for (let i = 0; i < 2000 && !out.split("\n").includes(text); i++) await Bun.sleep(10);
      expect(out.split("\n")).toContain(text);
    },
    lines: async () => {
      await reading;
      return out.trim().split("\n");
    },
  };
}

/** The fields of /proc/PID/stat after the command name ([] for a process gone meanwhile). */
function stat(pid: number): string[] {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2).split(" ");
  } catch {
    return [];
  }
}

describe("signals to bunbox", () => {
  test("INT, HUP, QUIT, USR1, USR2, CONT reach the sandboxee in order; TERM ends it; the Result is its exit", async () => {
    const run = start();
    await run.line("ready");
    for (const sig of ["SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGCONT"] as const) {
      run.proc.kill(sig);
      await run.line(sig);
    }
    run.proc.kill("SIGTERM");
    expect(await run.proc.exited).toBe(0);
    expect(await run.lines()).toEqual(["ready", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGCONT", "SIGTERM"]);
    const stderr = await new Response(run.proc.stderr).text();
    expect(JSON.parse(stderr.trim().split("\n").pop()!)).toMatchObject({ status: "OK", exitCode: 0 });
  });

  test("the sandbox's init is not in bunbox's session or process group (a terminal's signals reach the sandboxee once)", async () => {
    const run = start();
    await run.line("ready");
    const [, pgrp, session] = stat(run.proc.pid);
    const children = readdirSync("/proc").filter((e) => /^\d+$/.test(e) && stat(Number(e))[1] === String(run.proc.pid));
    const cmdline = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8");
      } catch {
        return "";
      }
    };
    const init = children.map(Number).find((pid) => cmdline(pid).startsWith("bunbox-init"));
    expect(init).toBeDefined();
    const [, initPgrp, initSession] = stat(init!);
    expect(initSession).not.toBe(session);
    expect(initPgrp).not.toBe(pgrp);
    run.proc.kill("SIGTERM");
    expect(await run.proc.exited).toBe(0);
  });
});

/**
 * A stop: SIGTERM, or SIGHUP with the caller's terminal hung up. A
 * sandboxee that ignores it is killed STOP_GRACE_S (10 s) later, where no
 * wall-time limit would end it (--time-limit 0; a terminal's stdin).
 */
describe("a sandboxee that ignores the stop", () => {
  const IGNORING = (sig: string) => ["/bin/sh", "-c", `trap '' ${sig}; echo ready; exec /bin/sleep 1000`];

  /** bunbox with `args`, once its sandboxee printed "ready"; the rest of stdout in `more()`. */
  async function started(args: string[]) {
    const proc = Bun.spawn([BUNBOX, "run", "--time-limit", "0", "--", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const reader = proc.stdout.getReader();
    const dec = new TextDecoder();
    const more = async () => dec.decode((await reader.read()).value);
    expect(await more()).toBe("ready\n");
    return { proc, more };
  }

  /** Through a pty of the test's own, bunbox its session leader; the master closed once the sandboxee runs: a hang-up. Its exit code. */
  async function hungUp(args: string[]): Promise<string> {
    const py = [
      "import os, pty, sys, termios, fcntl",
      "m, s = pty.openpty()",
      "pid = os.fork()",
      "if pid == 0:",
      "    os.setsid(); fcntl.ioctl(s, termios.TIOCSCTTY, 0)",
      "    [os.dup2(s, fd) for fd in (0, 1, 2)]; os.close(m); os.close(s)",
      "    os.execv(sys.argv[1], sys.argv[1:])",
      "os.close(s)",
      "out = b''",
      "while b'ready' not in out: out += os.read(m, 100)",
      "os.close(m)",
      "print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))",
    ].join("\n");
    const proc = Bun.spawn(["python3", "-c", py, BUNBOX, "run", "--", ...args], { stdio: ["ignore", "pipe", "inherit"] });
    return new Response(proc.stdout).text();
  }

  // One test, its three cases at once: each waits out the grace (10 s).
  test("killed 10 s after a SIGTERM, or a SIGHUP of a hung-up terminal; a SIGHUP with the terminal there (a daemon's reload) is passed on only", async () => {
    // The reload's SIGHUP first: the SIGTERM case, 10 s from its own signal, ends after that grace would have.
    const { proc: daemon, more } = await started(["/bin/sh", "-c", "trap 'echo reload' HUP; echo ready; while :; do sleep 0.1; done"]);
    daemon.kill("SIGHUP");
    expect(await more()).toBe("reload\n");
    const term = (async () => {
      const { proc } = await started(IGNORING("TERM"));
      proc.kill("SIGTERM");
      return { code: await proc.exited, stderr: await new Response(proc.stderr).text() };
    })();
    const reload = (async () => {
      await term;
      const running = daemon.exitCode === null;
      daemon.kill("SIGKILL");
      await daemon.exited;
      return running;
    })();
    const hangup = hungUp(IGNORING("HUP"));
    expect(await term).toEqual({ code: 137, stderr: "bunbox: EXTERNAL_KILL: still running 10 s after bunbox got SIGTERM\n" });
    expect(await reload).toBe(true);
    expect(await hangup).toBe("137\n");
  }, 40_000);
});

describe("SIGPIPE", () => {
  const pipeline = (flags: string) =>
    Bun.spawnSync(["/bin/sh", "-c", `"${BUNBOX}" run ${flags} -- /usr/bin/yes 2>"${DIR}/work/yes-err-$$" | head -n 1; cat "${DIR}/work/yes-err-$$"; rm -f "${DIR}/work/yes-err-$$"`]);

  test("yes | head: the SIGPIPE death is the shell's normal case, said nothing of", () => {
    const r = pipeline("");
    expect(r.stdout.toString()).toBe("y\n");
    expect(r.stderr.toString()).toBe("");
  });

  test("-v says it", () => {
    const r = pipeline("-v");
    expect(r.stdout.toString()).toContain("SIGNALED: SIGPIPE");
  });
});
