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
