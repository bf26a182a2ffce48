/**
 * Spawning on the calling thread (src/native/spawn.ts spawnOnCallingThread,
 * csrc/spawn.c bb_spawn), as `bunbox run` does: the sandbox is set up on the
 * JavaScript thread, which then waits a little for its end. A command that
 * ends within that first wait is over before its monitor starts, and the
 * monitor watches nothing (no reactor thread needed); a longer one is
 * watched as usual. Process-wide, like the spawner threads it replaces:
 * each test restores the library's way.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { openWatches } from "../../src/native/reactor.ts";
import { spawnOnCallingThread } from "../../src/native/spawn.ts";
import { runProbe } from "../helpers.ts";

afterEach(() => spawnOnCallingThread(false));

/** The probe in `mode`, and how many fds the reactor watched when the sandboxee had started. */
async function run(mode: string[]): Promise<{ status: string; code: number | undefined; watched: number }> {
  let watched = -1;
  const r = await runProbe(mode, { hooks: { onStart: () => void (watched = openWatches()) } });
  return { status: r.status, code: r.exitCode, watched };
}

describe("on the calling thread", () => {
  test("a command that ends within the first wait is never watched", async () => {
    spawnOnCallingThread(5000);
    expect(await run(["exit", "7"])).toEqual({ status: "OK", code: 7, watched: 0 });
  });

  test("a longer one is watched, and ends as usual", async () => {
    spawnOnCallingThread(20);
    const r = await run(["sleep", "1"]);
    expect(r.status).toBe("OK");
    expect(r.watched).toBeGreaterThan(0);
  });

  test("without a first wait, the monitor watches from the start", async () => {
    // A command that cannot be over when its monitor starts (an "exit" could
    // be, on a loaded machine: then nothing is left to watch, rightly).
    spawnOnCallingThread(0);
    const r = await run(["sleep", "1"]);
    expect([r.status, r.watched > 0]).toEqual(["OK", true]);
  });

  test("a setup failure is reported as from the spawner threads", async () => {
    spawnOnCallingThread(50);
    const r = await runProbe(["exit", "0"], { executor: { cwd: "/nonexistent" } });
    expect(r.status).toBe("SETUP_ERROR");
    expect(r.setup?.stage).toBe("cwd");
  });
});
