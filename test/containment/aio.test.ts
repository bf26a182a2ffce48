/**
 * System-wide budgets leave the default profiles (README.md "Containment"):
 * io_setup takes from fs.aio-max-nr, one count for the whole host, so 64
 * sandboxed calls of io_setup(1024) would leave every libaio user on the host
 * with EAGAIN. Each AIO call is now a VIOLATION under every built-in profile,
 * root and unprivileged alike.
 */
import { describe, expect, test } from "bun:test";
import { bunbox, DIR, FX, IS_ROOT } from "../helpers.ts";

const json = (stderr: string) => JSON.parse(stderr.trim().split("\n").filter((l) => l.startsWith("{")).pop()!);

describe("AIO is refused", () => {
  for (const profile of ["default", "build"]) {
    test(`io_setup under --profile ${profile} is a violation`, async () => {
      const r = await bunbox(["run", "--profile", profile, "--json", "--cwd", "/", "--", `${FX}/hog`, "aio", "1024"], { cwd: `${DIR}/work` });
      expect(r.stdout).not.toContain("io_setup: ok");
      expect(r.code).toBe(159);
      expect(json(r.stderr).violation.syscall).toBe("io_setup");
    });
  }

  test.if(IS_ROOT)("as user nobody too", async () => {
    const r = await bunbox(["run", "--json", "--", `${FX}/hog`, "aio", "1024"], { nobody: true });
    expect(r.code).toBe(159);
    expect(json(r.stderr).violation.syscall).toBe("io_setup");
  });
});
