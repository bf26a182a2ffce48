/**
 * Terminals, through a real pty: util-linux's `script` gives bunbox a
 * terminal (its pty's slave) and relays our pipe to its master, as a person
 * at a terminal would type. The sandboxee gets a pty of its own, from the
 * sandbox's devpts (csrc/child_a.c open_terminal), relayed by bunbox
 * (csrc/relay.c, src/cli/tty.ts); the caller's terminal never enters, so
 * what the sandboxee does to its terminal stays in the sandbox, and the
 * caller's modes come back however the run ends. Each test waits for what
 * the sandboxee prints before it types or signals: order, not timing.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { BUNBOX, bunbox, DIR, FX } from "../helpers.ts";

const TTY = `${DIR}/tty`; // the fixture on the host
const IN_BOX = `${FX}/tty`; // and inside the sandbox
const RUN = `${BUNBOX} run --ro ${DIR}:${FX}`;

/** A shell command line run by `script` on a fresh pty, driven through its stdin and read from its stdout. */
class Terminal {
  private out = "";
  private readonly proc;
  private readonly reading: Promise<void>;

  constructor(command: string, env: Record<string, string> = {}) {
    this.proc = Bun.spawn(["script", "-qfec", command, "/dev/null"], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      env: { PATH: "/usr/bin:/bin", TERM: "xterm", ...env },
    });
    const stdout = this.proc.stdout;
    this.reading = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of stdout) this.out += dec.decode(chunk, { stream: true });
    })();
  }

  /** Resolves once `what` has been printed (after `from`); rejects with the screen so far after 20 s. */
  async waitFor(what: string | RegExp, from = 0): Promise<number> {
    for (let i = 0; i < 2000; i++) {
      const text = this.out.slice(from);
      const at = typeof what === "string" ? text.indexOf(what) : text.search(what);
      if (at >= 0) return from + at + 1;
      await Bun.sleep(10);
    }
    throw new Error(`never printed ${what}; screen:\n${JSON.stringify(this.out)}`);
  }

  type(text: string): void {
    this.proc.stdin.write(text);
    this.proc.stdin.flush();
  }

  async exit(): Promise<{ code: number; screen: string }> {
    const code = await this.proc.exited;
    await this.reading;
    this.proc.stdin.end();
    return { code, screen: this.out };
  }
}

describe("a terminal of its own", () => {
  test("tty inside prints a pts of the sandbox's own devpts; /dev/tty opens; the caller's terminal is not among its fds", async () => {
    const t = new Terminal(`${RUN} -- /bin/sh -c 'tty; ${IN_BOX} ctty'`);
    const { code, screen } = await t.exit();
    expect(code).toBe(0);
    expect(screen).toContain("/dev/pts/0");
    expect(screen).toContain("ctty ok /dev/pts/0 own");
  });

  test("a hostile sandboxee (stty -echo -icanon -isig, TIOCSETD N_NULL) leaves the caller's modes and line discipline as they were", async () => {
    const t = new Terminal(`${TTY} state; ${RUN} -- ${IN_BOX} hostile; echo "exit=$?"; ${TTY} state`);
    const { code, screen } = await t.exit();
    expect(code).toBe(0);
    // It did all of it to its own terminal (exit 0: every call worked) ...
    expect(screen).toContain("hostile start");
    expect(screen).toContain("exit=0");
    // ... and the caller's terminal is as before, line discipline N_TTY (0).
    const states = screen.match(/lflag=\S+ iflag=\S+ oflag=\S+ ldisc=\d+/g)!;
    expect(states).toHaveLength(2);
    expect(states[1]).toBe(states[0]!);
    expect(states[0]).toEndWith("ldisc=0");
  });

  test("bash -i: job control works, and the exit code comes through", async () => {
    const t = new Terminal(`${RUN} -- /bin/bash --norc -i`);
    let at = await t.waitFor("$ ");
    t.type("sleep 100 &\n");
    at = await t.waitFor(/\[1\] \d+/, at);
    t.type("jobs\n");
    at = await t.waitFor(/\[1\]\+ +Running +sleep 100 &/, at);
    // Whether bash prints "[1]+ Terminated" for a job `wait` reaped is a
    // race in bash itself; the job's status is not: 128 + SIGTERM.
    t.type("kill %1; wait %1; echo status=$?\n");
    at = await t.waitFor("status=143", at);
    t.type("exit 7\n");
    const { code, screen } = await t.exit();
    expect(code).toBe(7);
    expect(screen).not.toContain("no job control");
    expect(screen).not.toContain("cannot set terminal process group");
  });

  test("bunbox run … & in an interactive shell runs on in the background (as make & would), and takes the terminal at fg", async () => {
    // The shell on the caller's terminal; bunbox a job of it. What is waited
    // for is computed ($((6*7))), so that the echo of the typed line does not match it.
    const t = new Terminal("PS1='$ ' /bin/bash --norc -i");
    let at = await t.waitFor("$ ");
    t.type(`${TTY} state\n`);
    at = await t.waitFor(/ldisc=\d+/, at);
    // In the background it neither stops (SIGTTOU at raw mode) nor reads the terminal: its output shows, it ends.
    t.type(`${RUN} -- /bin/sh -c 'echo bg-$((6*7)); sleep 0.3; echo done-$((6*7))' &\n`);
    at = await t.waitFor("done-42", at);
    t.type("wait; echo status=$((0+$?))\n");
    at = await t.waitFor("status=0", at);
    // A job that reads: at fg it gets the terminal, typed input included.
    t.type(`${RUN} -- /bin/sh -c 'echo reading-$((6*7)); read x; echo "got-$x"' &\n`);
    at = await t.waitFor("reading-42", at);
    t.type("fg\n");
    at = await t.waitFor("read x", at); // bash names the job it brought to the foreground
    t.type("typed\n");
    at = await t.waitFor("got-typed", at);
    t.type(`echo status=$((0+$?)); ${TTY} state; exit 0\n`);
    const { code, screen } = await t.exit();
    expect(code).toBe(0);
    expect(screen.slice(at)).toContain("status=0");
    expect(screen).not.toMatch(/Stopped/);
    const states = screen.match(/lflag=\S+ iflag=\S+ oflag=\S+ ldisc=\d+/g)!;
    expect(states).toHaveLength(2);
    expect(states[1]).toBe(states[0]!);
  });

  test("Ctrl-C reaches the sandboxee as SIGINT through its terminal (and Ctrl-\\ as SIGQUIT)", async () => {
    const t = new Terminal(`${RUN} -- ${IN_BOX} signals 2`);
    const at = await t.waitFor("ready");
    t.type("\x03");
    const next = await t.waitFor("SIGINT", at);
    t.type("\x1c");
    await t.waitFor("SIGQUIT", next);
    expect((await t.exit()).code).toBe(0); // caught both, then exited
    // Not caught, it ends a plain reader: 128 + SIGINT.
    const r = new Terminal(`${RUN} -- ${IN_BOX} read; echo "exit=$?"`);
    await r.waitFor("ready");
    r.type("\x03");
    expect((await r.exit()).screen).toContain("exit=130");
  });

  test("full-screen programs: less, vi (writes its file), top (quit with q)", async () => {
    const dir = `${DIR}/work/vi-${process.pid}`;
    mkdirSync(dir, { mode: 0o777 });
    chmodSync(dir, 0o777);
    const less = new Terminal(`stty rows 24 cols 80; ${RUN} -- less /etc/os-release; echo "exit=$?"`);
    await less.waitFor("(END)");
    less.type("q");
    expect((await less.exit()).screen).toContain("exit=0");

    const vi = new Terminal(`stty rows 24 cols 80; ${RUN} --rw ${dir}:/w -- vi -u NONE /w/out.txt; echo "exit=$?"`);
    await vi.waitFor("out.txt");
    vi.type("ihello from vi");
    await vi.waitFor("hello from vi");
    vi.type("\x1b");
    await Bun.sleep(50); // vi tells a lone Esc from an escape sequence by a pause
    vi.type(":wq\r");
    expect((await vi.exit()).screen).toContain("exit=0");
    expect(readFileSync(`${dir}/out.txt`, "utf8")).toBe("hello from vi\n");
    rmSync(dir, { recursive: true });

    const top = new Terminal(`stty rows 24 cols 80; ${RUN} -- top -d 0.2; echo "exit=$?"`);
    await top.waitFor("PID");
    top.type("q");
    expect((await top.exit()).screen).toContain("exit=0");
  });

  test("typed input reaches it, echoed by its own terminal", async () => {
    const t = new Terminal(`${RUN} -- ${IN_BOX} read`);
    await t.waitFor("ready");
    t.type("hello\r");
    const { code, screen } = await t.exit();
    expect(code).toBe(0);
    expect(screen).toContain("got hello");
  });

  test("the window size: the caller's at the start, and its changes (SIGWINCH)", async () => {
    const ttyFile = `${DIR}/work/ttyname-${process.pid}`;
    const t = new Terminal(`tty > ${ttyFile}; stty rows 30 cols 100; ${RUN} -- ${IN_BOX} winch 41 120`);
    const at = await t.waitFor("ready size 30x100");
    const caller = readFileSync(ttyFile, "utf8").trim();
    rmSync(ttyFile);
    // Resizing the caller's terminal signals its foreground group: bunbox.
    // stty sets rows, then columns: two SIGWINCHs, each passed on; the
    // sandboxee reports each until it sees the final size.
    Bun.spawnSync(["stty", "-F", caller, "rows", "41", "cols", "120"]);
    await t.waitFor("resized 41x120", at);
    expect((await t.exit()).code).toBe(0);
  });

  test("raw mode is undone when bunbox gets SIGTERM (forwarded; the sandboxee ends)", async () => {
    const pidFile = `${DIR}/work/bunbox-pid-${process.pid}`;
    const t = new Terminal(`${TTY} state; ${RUN} -- ${IN_BOX} signals & echo $! > ${pidFile}; wait; ${TTY} state`);
    await t.waitFor("ready");
    const pid = Number(readFileSync(pidFile, "utf8"));
    rmSync(pidFile);
    process.kill(pid, "SIGTERM");
    const { code, screen } = await t.exit();
    expect(code).toBe(0);
    expect(screen).toContain("SIGTERM");
    const states = screen.match(/lflag=\S+ iflag=\S+ oflag=\S+ ldisc=\d+/g)!;
    expect(states).toHaveLength(2);
    expect(states[1]).toBe(states[0]!);
  });

  test("raw mode is undone when the sandboxee is killed (wall-time limit)", async () => {
    const t = new Terminal(`${TTY} state; ${RUN} --time-limit 0.5 -- ${IN_BOX} read; echo "exit=$?"; ${TTY} state`);
    const { screen } = await t.exit();
    expect(screen).toContain("TIMEOUT");
    expect(screen).toContain("exit=124");
    const states = screen.match(/lflag=\S+ iflag=\S+ oflag=\S+ ldisc=\d+/g)!;
    expect(states).toHaveLength(2);
    expect(states[1]).toBe(states[0]!);
  });

  test("no wall-time limit by default when stdin is a terminal; -v says which limit applies", async () => {
    const t = new Terminal(`${RUN} -v -- /bin/true`);
    expect((await t.exit()).screen).toContain("wall-time limit: none (none by default: stdin is a terminal)");
    const piped = await bunbox(["run", "-v", "--", "/bin/true"]);
    expect(piped.stderr).toContain("wall-time limit: 120 s (the default for a run whose stdin is not a terminal)");
  });

  test("TERM is passed to a terminal", async () => {
    const t = new Terminal(`${RUN} -- /bin/sh -c 'echo "term=$TERM"'`, { TERM: "vt220" });
    expect((await t.exit()).screen).toContain("term=vt220");
  });
});

describe("without a terminal", () => {
  test("pipes stay pipes: no pty, no controlling terminal, no TERM", async () => {
    const r = await bunbox(["run", "--", IN_BOX, "ctty"], { env: { TERM: "xterm" } });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ctty none/);
  });

  test("--tty gives one anyway, relayed to bunbox's stdin and stdout", async () => {
    const r = await bunbox(["run", "--tty", "--", "/bin/sh", "-c", "tty; read x; echo got $x"], { stdin: "hi\n" });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("/dev/pts/0");
    expect(r.stdout).toContain("got hi");
  });

  test("--tty: the EOF of a piped stdin is the terminal's end of input", async () => {
    const r = await bunbox(["run", "--tty", "--", "/bin/cat"], { stdin: "one\ntwo\n" });
    expect(r.code).toBe(0);
    expect(r.stdout.replaceAll("\r", "")).toContain("one\ntwo\n");
  });

  test("--no-tty on a terminal passes it through, and -v names that relaxation", async () => {
    const t = new Terminal(`${RUN} -v --no-tty -- ${IN_BOX} ctty`);
    const { screen } = await t.exit();
    expect(screen).toContain("relaxation: --no-tty");
    expect(screen).toMatch(/ctty (none|ok \S+ foreign)/);
  });

  test("--tty with --no-tty is a usage error", async () => {
    const r = await bunbox(["run", "--tty", "--no-tty", "--", "/bin/true"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--tty: give --tty or --no-tty, not both");
  });
});
