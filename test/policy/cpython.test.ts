/**
 * The default profile runs what people run: CPython's own regression tests
 * for the OS interfaces (Debian's libpython3.11-testsuite) inside `bunbox
 * run`, with nothing but the defaults. A call outside the allow-list that is
 * not on the safety list fails with EPERM (chroot, clock_settime: calls an
 * unprivileged process could never complete) instead of killing the run, so
 * every test runs; the few that fail need what the sandbox withholds on
 * purpose, each listed below with why. Skipped, saying so, where the test
 * suite is not installed.
 */
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { bunbox, describeUnless } from "../helpers.ts";

const SUITE = "/usr/lib/python3.11/test/test_os.py";
const missing = existsSync(SUITE) && existsSync("/usr/bin/python3.11") ? undefined : `${SUITE} is missing (apt-get install libpython3.11-testsuite)`;

/** Tests that need what a default sandbox withholds, and what. */
const WITHHELD: Record<string, string> = {
  "test_chown_without_permission (test.test_os.ChownFileTests.test_chown_without_permission)": "uid 0 is not mapped in the sandbox's user namespace (EINVAL)",
  "test_invalid_offset (test.test_os.TestSendfile.test_invalid_offset)": "no network (--net none): the test serves on 127.0.0.1",
  "test_keywords (test.test_os.TestSendfile.test_keywords)": "no network",
  "test_offset_overflow (test.test_os.TestSendfile.test_offset_overflow)": "no network",
  "test_send_at_certain_offset (test.test_os.TestSendfile.test_send_at_certain_offset)": "no network",
  "test_send_whole_file (test.test_os.TestSendfile.test_send_whole_file)": "no network",
};

describeUnless(missing)("CPython's OS tests under the default profile", () => {
  test(
    "test_os, test_time, test_signal, test_threading, test_select, test_posix: every test runs; no run is killed; the failures are the withheld privileges",
    async () => {
      const tests = ["test_os", "test_time", "test_signal", "test_threading", "test_select", "test_posix"];
      const r = await bunbox(["run", "--json", "--time-limit", "300", "--", "python3", "-m", "test", "-v", "-j2", ...tests], { bare: true });
      const result = JSON.parse(r.stderr.trim().split("\n").at(-1)!);
      // Ended by the program itself (exit 2: some tests failed), never by bunbox.
      expect(result.status).toBe("OK");
      const failed = [...r.stdout.matchAll(/^(?:ERROR|FAIL): (.*)$/gm)].map((m) => m[1]!);
      expect(failed.filter((t) => !(t in WITHHELD))).toEqual([]);
      for (const name of ["test_time", "test_signal", "test_threading", "test_select", "test_posix"]) expect(r.stdout).toMatch(new RegExp(`${name} passed`));
      // What made that possible: the calls refused, each listed with its path by name.
      const refused = result.refused.map((x: { syscall: string; answer: string }) => `${x.syscall} ${x.answer}`).sort();
      // chmod: test_os sets S_ISGID/S_ISUID on a file of its own; the setid-bits safety rule refuses it, listed too.
      expect(refused).toEqual(["chmod EPERM", "chroot EPERM", "clock_settime EPERM"]);
    },
    300_000,
  );
});
