/**
 * System-wide budgets leave the default profiles (README.md "Containment"):
 * io_setup takes from fs.aio-max-nr, one count for the whole host, so 64
 * sandboxed calls of io_setup(1024) would leave every libaio user on the host
 * with EAGAIN. No built-in profile allows an AIO call, root and unprivileged
 * alike: `default` refuses it with EPERM (its onRefusal is "errno") and lists
 * it in the Result, the killing profiles end the run with a VIOLATION.
 */
import { describe, expect, test } from "bun:test";
import { bunbox, DIR, FX, IS_ROOT, json } from "../helpers.ts";

/** default answers EPERM and lists the call; the run goes on and ends with the program's own exit. */
function expectRefused(r: { code: number; stdout: string; stderr: string }) {
  expect(r.stdout).toContain("io_setup: -1 EPERM");
  expect(r.code).toBe(0);
  const refused = json(r.stderr).refused as { syscall: string; answer: string }[];
  expect(refused.map((c) => [c.syscall, c.answer])).toEqual([["io_setup", "EPERM"]]);
}

describe("AIO is refused", () => {
  test("io_setup under --profile default fails with EPERM and is listed", async () => {
    expectRefused(await bunbox(["run", "--profile", "default", "--json", "--cwd", "/", "--", `${FX}/hog`, "aio", "1024"], { cwd: `${DIR}/work` }));
  });

  test("io_setup under --profile build is a violation", async () => {
    const r = await bunbox(["run", "--profile", "build", "--json", "--cwd", "/", "--", `${FX}/hog`, "aio", "1024"], { cwd: `${DIR}/work` });
    expect(r.stdout).not.toContain("io_setup: ok");
    expect(r.code).toBe(159);
    expect(json(r.stderr).violation.syscall).toBe("io_setup");
  });

  test.if(IS_ROOT)("as user nobody too", async () => {
    expectRefused(await bunbox(["run", "--json", "--", `${FX}/hog`, "aio", "1024"], { nobody: true }));
  });
});
