/**
 * Mount destinations inside an image are resolved inside it (openat2
 * RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS on the new root's fd:
 * csrc/resolve.c), never against the host: an image's absolute symlinks,
 * ".." chains and magic links cannot steer a mount, or a file bunbox
 * generates, to a host path. Each case plants the trap in a copy of the
 * staged root and checks both sides: what the sandboxee sees, and that the
 * host path is untouched.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bunbox, describeUnless, IS_ROOT, NEEDS_ROOT, testUnless } from "../helpers.ts";
import { NO_STAGE, STAGE_PATH, scratchDir, stageCopy } from "./stage.ts";

const run = (root: string, opts: string[], script: string, nobody = false) =>
  bunbox(["run", "--root", root, "--env", STAGE_PATH, ...opts, "--", "sh", "-c", script], { bare: true, nobody });

async function throughAbsoluteLink(root: string, host: string, nobody: boolean): Promise<void> {
  symlinkSync(host, join(root, "data")); // /data -> the host directory's path
  const opts = ["--tmpfs", "/data/scratch", "--file", "/etc/hostname:/data/file"];
  // The image has no such directory: the link dangles there, and the mount is refused.
  const refused = await run(root, opts, "true", nobody);
  expect(refused.code).toBe(125);
  expect(refused.stderr).toContain("mount /data/scratch: a dangling symlink in the sandbox's tree");
  // Given one, the mounts go into the image's directory (on an overlay point), not the host's.
  mkdirSync(join(root, host), { recursive: true, mode: 0o755 });
  const r = await run(root, opts, "ls -d /data/scratch; ls -d /data/file; readlink /data", nobody);
  expect(r.stderr).toBe("");
  expect(r.stdout).toBe(`/data/scratch\n/data/file\n${host}\n`);
  expect(existsSync(join(host, "scratch"))).toBe(false);
  expect(existsSync(join(host, "file"))).toBe(false);
  expect(existsSync(join(root, host, "scratch"))).toBe(false); // nor in the image on the host
}

describeUnless(NO_STAGE)(`symlinks in an image stay in the image`, () => {
  for (const nobody of [false, true]) {
    const as = nobody ? " (as nobody)" : "";

    testUnless(nobody ? NEEDS_ROOT : undefined)(`etc/passwd -> /etc/shadow: the image's own shadow, or nothing; never the host's${as}`, async () => {
      const root = stageCopy();
      symlinkSync("/etc/shadow", join(root, "etc", "passwd"));
      const mine = join(scratchDir("passwd"), "passwd");
      writeFileSync(mine, "mine:x:1:1::/:/bin/sh\n", { mode: 0o644 });
      // Without etc/shadow in the image the link dangles: reading it, and mounting onto it, fail.
      const read = await run(root, [], "cat /etc/passwd 2>&1; echo rc=$?", nobody);
      expect(read.stdout).toContain("rc=1");
      expect(read.stdout).not.toContain("root:");
      const onto = await run(root, ["--ro", `${mine}:/etc/passwd`], "true", nobody);
      expect(onto.code).toBe(125);
      expect(onto.stderr).toContain("mount /etc/passwd: a dangling symlink in the sandbox's tree");
      // With one, the bind lands on the image's etc/shadow.
      writeFileSync(join(root, "etc", "shadow"), "image shadow\n", { mode: 0o644 });
      const r = await run(root, ["--ro", `${mine}:/etc/passwd`], "cat /etc/shadow /etc/passwd", nobody);
      expect(r.stdout).toBe("mine:x:1:1::/:/bin/sh\nmine:x:1:1::/:/bin/sh\n");
      if (IS_ROOT) expect(readFileSync("/etc/shadow", "utf8")).not.toContain("mine:");
    });

    testUnless(nobody ? NEEDS_ROOT : undefined)(`a destination through an absolute symlink to a host directory lands in the image${as}`, async () => {
      const root = stageCopy();
      // Outside /tmp, which the sandbox has a tmpfs of its own on.
      const host = mkdtempSync("/var/tmp/bunbox-host-target-");
      chmodSync(host, 0o777);
      try {
        await throughAbsoluteLink(root, host, nobody);
      } finally {
        rmSync(host, { recursive: true, force: true });
      }
    });

    testUnless(nobody ? NEEDS_ROOT : undefined)(`".." chains stop at the image's root${as}`, async () => {
      const root = stageCopy();
      symlinkSync("../../../../../../../../etc", join(root, "srv", "up"));
      const name = `bunbox-escape-${process.pid}`;
      const r = await run(root, ["--dir", `/srv/up/${name}`], `ls -d /etc/${name}`, nobody);
      expect(r.stdout).toBe(`/etc/${name}\n`);
      expect(existsSync(`/etc/${name}`)).toBe(false);
    });
  }

  test("a magic link (/proc/self/root) in a destination is refused", async () => {
    const root = stageCopy();
    const r = await run(root, ["--tmpfs", "/proc/self/root/x"], "true");
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("mount /proc/self/root/x");
    expect(r.stderr).toContain("magic link");
  });

  test("the default view: a destination through a symlink of a bound host directory stays in the sandbox", async () => {
    const dir = scratchDir("view");
    mkdirSync(join(dir, "real"));
    const outside = scratchDir("outside");
    symlinkSync(outside, join(dir, "link"));
    const r = await bunbox(["run", "--ro", `${dir}:/d`, "--tmpfs", "/d/link/t", "--", "/bin/true"], { bare: true });
    // /d/link -> OUTSIDE, a path under /tmp, which in the sandbox is its own empty tmpfs: the link dangles there.
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("mount /d/link/t: a dangling symlink in the sandbox's tree");
    expect(existsSync(join(outside, "t"))).toBe(false);
  });
});
