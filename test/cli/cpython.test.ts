/**
 * CPython's own regression tests (Debian's libpython3.11-testsuite) inside
 * `bunbox run` with its defaults, as a user would run them: test_pty needs
 * a devpts of the sandbox's own (/dev/ptmx, /dev/pts), and
 * test_multiprocessing_forkserver talks to itself over localhost (the
 * sandbox's own lo, up). The managers' cases (TCP on localhost) and the
 * listener's run always; the whole of test_multiprocessing_forkserver
 * (about 100 s on 2 CPUs) with BUNBOX_SLOW_TESTS=1.
 */
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { bunbox } from "../helpers.ts";

const PYTHON = "/usr/bin/python3.11";
const SUITE = "/usr/lib/python3.11/test/test_pty.py";
const missing = !existsSync(PYTHON) || !existsSync(SUITE);
if (missing) console.log(`SKIP CPython's tests: ${PYTHON} or ${SUITE} is missing (apt-get install libpython3.11-testsuite)`);
const slow = process.env.BUNBOX_SLOW_TESTS === "1";
if (!missing && !slow) console.log("SKIP the whole of test_multiprocessing_forkserver: BUNBOX_SLOW_TESTS=1 runs it (about 100 s)");

async function pythonTest(args: string[], timeLimit = "300"): Promise<void> {
  const r = await bunbox(["run", "--time-limit", timeLimit, "--cwd", "/tmp", "--", PYTHON, "-m", "test", ...args], { bare: true });
  if (r.code !== 0) console.log(r.stdout.slice(-3000), r.stderr.slice(-2000));
  expect(r.stdout).toContain("Tests result: SUCCESS");
  expect(r.code).toBe(0);
}

describe.skipIf(missing)("CPython's tests inside bunbox run", () => {
  test("test_pty", () => pythonTest(["test_pty"]), 120_000);

  test("test_multiprocessing_forkserver: managers over TCP on localhost, listeners and clients", () =>
    pythonTest(["test_multiprocessing_forkserver", "-m", "*RemoteManager*", "-m", "*ManagerRestart*", "-m", "*ListenerClient*"]), 120_000);

  test.skipIf(!slow)("test_multiprocessing_forkserver, all of it", () => pythonTest(["test_multiprocessing_forkserver"], "900"), 900_000);
});
