/**
 * The executable in the wild (src/native/library.ts, src/policy/module.ts):
 * it loads its embedded shim from a memfd, so a TMPDIR that is noexec, or
 * missing, does not matter; where memfds cannot be executed
 * (vm.memfd_noexec=2, set here in a pid namespace of the test's own, where
 * the sysctl is private) it falls back to a private file. A .ts policy
 * module that imports "bunbox" gets this bunbox, with nothing installed
 * beside it.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { BUNBOX, bunbox, DIR, IS_ROOT } from "../helpers.ts";

describe("the shim from a memfd", () => {
  test("TMPDIR that does not exist: runs (nothing is written there)", async () => {
    const r = await bunbox(["run", "--", "/bin/echo", "ran"], { bare: true, env: { TMPDIR: "/no/such/tmpdir" } });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("ran\n");
  });

  test.skipIf(!IS_ROOT)("TMPDIR on a noexec tmpfs: runs (needs root to mount one)", async () => {
    const dir = mkdtempSync(`${DIR}/work/noexec-`);
    expect(Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "noexec,size=4M", "tmpfs", dir]).exitCode).toBe(0);
    try {
      const r = await bunbox(["run", "--", "/bin/echo", "ran"], { bare: true, env: { TMPDIR: dir } });
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe("ran\n");
    } finally {
      Bun.spawnSync(["umount", dir]);
      rmSync(dir, { recursive: true });
    }
  });

  test.skipIf(!IS_ROOT)("vm.memfd_noexec=2: the shim comes from a private file of TMPDIR, removed at once (needs root for the sysctl)", () => {
    const tmp = mkdtempSync(`${DIR}/work/tmpdir-`);
    // The sandbox's init is a memfd too: that run fails, at the init stage, after the shim loaded.
    const r = Bun.spawnSync(
      ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", `echo 2 > /proc/sys/vm/memfd_noexec && exec "${BUNBOX}" run -- /bin/true`],
      { env: { PATH: "/usr/bin:/bin", TMPDIR: tmp } },
    );
    const stderr = r.stderr.toString();
    expect(stderr).not.toContain("cannot load the native shim");
    expect(stderr).toContain("SETUP_ERROR: init memfd for the sandbox init: EACCES");
    expect(readdirSync(tmp)).toEqual([]);
    rmSync(tmp, { recursive: true });
  });

  test.skipIf(!IS_ROOT)("vm.memfd_noexec=2 and a noexec TMPDIR: one line saying so, exit 125, nothing left there (needs root)", () => {
    const dir = mkdtempSync(`${DIR}/work/noexec-`);
    const missing = `${DIR}/work/no-such-tmpdir`;
    // A mount namespace of its own too: the noexec tmpfs goes with it (what is left in it is listed on stdout).
    const r = (tmpdir: string) =>
      Bun.spawnSync(
        ["unshare", "--pid", "--mount", "--fork", "--mount-proc", "sh", "-c", `echo 2 > /proc/sys/vm/memfd_noexec && mount -t tmpfs -o noexec,size=4M tmpfs "${dir}" && { "${BUNBOX}" run -- /bin/true; c=$?; ls -A "${dir}"; exit $c; }`],
        { env: { PATH: "/usr/bin:/bin", TMPDIR: tmpdir } },
      );
    try {
      for (const [tmpdir, why] of [[dir, `${dir} is mounted noexec?): set TMPDIR`], [missing, `${missing} is not usable (ENOENT): set TMPDIR`]] as const) {
        const run = r(tmpdir);
        const stderr = run.stderr.toString();
        expect({ tmpdir, code: run.exitCode, lines: stderr.trim().split("\n").length }).toEqual({ tmpdir, code: 125, lines: 1 });
        expect(stderr).toContain("cannot load the embedded native shim: memfds cannot be executed here (vm.memfd_noexec=2?)");
        expect(stderr).toContain(why);
        expect(stderr).not.toContain("not a bunbox shim");
        expect(run.stdout.toString()).toBe("");
      }
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe("policy modules", () => {
  test('a .ts policy importing "bunbox" loads in the compiled executable, with no node_modules beside it', async () => {
    const dir = `${DIR}/work/policy-module-${process.pid}`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      `${dir}/policy.ts`,
      `import { PolicyBuilder } from "bunbox";\nexport default new PolicyBuilder().allowDynamicStartup().allowRead().allowWrite().allowExit();\n`,
    );
    writeFileSync(`${dir}/fn.js`, `import { PolicyBuilder } from "bunbox";\nexport const policy = () => new PolicyBuilder().allowDynamicStartup().allowRead().allowWrite().allowExit().build();\n`);
    for (const file of ["policy.ts", "fn.js"]) {
      const r = await bunbox(["run", "--policy", `${dir}/${file}`, "--", "/bin/echo", "ran"], { bare: true, cwd: dir });
      expect({ file, stderr: r.stderr, stdout: r.stdout }).toEqual({ file, stderr: "", stdout: "ran\n" });
    }
    const check = await bunbox(["policy", "check", `${dir}/policy.ts`], { bare: true });
    expect(check.code).toBe(0);
    expect(check.stdout).toContain("valid");
    rmSync(dir, { recursive: true });
  });

  test("a module whose top-level await never settles: an error (125), not an exit 0 without the command", async () => {
    const dir = `${DIR}/work/policy-hang-${process.pid}`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/hang.ts`, "await new Promise(() => {});\nexport default 1;\n");
    const r = await bunbox(["run", "--policy", `${dir}/hang.ts`, "--", "/bin/echo", "ran"], { bare: true });
    expect(r).toEqual({ code: 125, stdout: "", stderr: "bunbox: error: internal error: bunbox stopped before the run ended (an await that never settles: in a policy module?)\n" });
    rmSync(dir, { recursive: true });
  });

  test("a module that calls process.exit() as it loads, or in its policy function: a usage error (2), not bunbox ending with its code", async () => {
    const dir = `${DIR}/work/policy-exit-${process.pid}`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/top.ts`, "process.exit(0);\nexport default 1;\n");
    writeFileSync(`${dir}/fn.ts`, "export default () => process.exit(3);\n");
    const top = await bunbox(["run", "--policy", `${dir}/top.ts`, "--", "/bin/echo", "ran"], { bare: true });
    expect(top.code).toBe(2);
    expect(top.stdout).toBe("");
    expect(top.stderr).toContain(`--policy: ${dir}/top.ts: cannot load the module: it called process.exit(0) (a policy module gives a policy; bunbox would have ended without running the command)`);
    const fn = await bunbox(["run", "--policy", `${dir}/fn.ts`, "--", "/bin/echo", "ran"], { bare: true });
    expect(fn.code).toBe(2);
    expect(fn.stderr).toContain(`--policy: ${dir}/fn.ts: its policy function failed: it called process.exit(3)`);
    // bunbox's own exit is its own again afterwards: a good module still runs the command, with its code.
    writeFileSync(`${dir}/ok.ts`, 'import { PolicyBuilder } from "bunbox";\nexport default new PolicyBuilder().allowDynamicStartup().allowRead().allowWrite().allowExit();\n');
    expect(await bunbox(["run", "--policy", `${dir}/ok.ts`, "--", "/bin/echo", "ran"], { bare: true })).toMatchObject({ code: 0, stdout: "ran\n" });
    rmSync(dir, { recursive: true });
  });
});
