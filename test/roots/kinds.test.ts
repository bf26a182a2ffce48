/**
 * Every mount kind, on the command line and in a policy file alike (one
 * schema: src/policy/filesystem.ts): bind and bind-try, tmpfs, proc, dev,
 * dir, symlink, file (from a path, an fd or inline), mask and readonly; and
 * a file bound over a file inside a read-only bind, which failed with EACCES
 * before (its mount point was opened for writing; now the existing file is
 * mounted on as it is).
 */
import { describe, expect, test } from "bun:test";
import { closeSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bunbox, NEEDS_ROOT, testUnless } from "../helpers.ts";
import { scratchDir } from "./stage.ts";

const sh = (opts: string[], script: string, nobody = false, extraFds?: number[]) =>
  bunbox(["run", ...opts, "--", "/bin/sh", "-c", script], { bare: true, nobody, ...(extraFds ? { extraFds } : {}) });

describe("a file over a file inside a read-only bind", () => {
  for (const nobody of [false, true]) {
    testUnless(nobody ? NEEDS_ROOT : undefined)(`--ro mypasswd:/etc/passwd${nobody ? " (as nobody)" : ""}`, async () => {
      const mine = join(scratchDir("passwd"), "passwd");
      writeFileSync(mine, "mine:x:7:7::/:/bin/sh\n", { mode: 0o644 });
      const r = await sh(["--ro", `${mine}:/etc/passwd`], "cat /etc/passwd; ls /etc/hostname >/dev/null && echo rest-of-etc", nobody);
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe("mine:x:7:7::/:/bin/sh\nrest-of-etc\n");
    });
  }
});

describe("mount kinds on the command line", () => {
  test("--dir, --symlink, --file (a path and an fd), --proc and --dev elsewhere", async () => {
    const dir = scratchDir("kinds");
    writeFileSync(join(dir, "src"), "copied\n", { mode: 0o644 });
    writeFileSync(join(dir, "fd"), "through fd 3\n");
    const fd = openSync(join(dir, "fd"), "r");
    try {
      const r = await sh(
        ["--dir", "/made/deep", "--symlink", "/made/deep:/lnk", "--file", `${join(dir, "src")}:/tmp/copy`, "--file", "3:/tmp/fromfd",
          "--proc", "/proc2", "--dev", "/dev2"],
        "ls -d /lnk/; readlink /lnk; cat /tmp/copy /tmp/fromfd; ls /proc2/self/status; ls /dev2/null; readlink /dev2/fd; echo x 2>/dev/null > /tmp/copy || echo file-ro",
        false, [fd],
      );
      expect(r.stdout).toBe("/lnk/\n/made/deep\ncopied\nthrough fd 3\n/proc2/self/status\n/dev2/null\n/proc/self/fd\nfile-ro\n");
    } finally {
      closeSync(fd);
    }
    // A copy, not a bind: the source can change or go; the sandbox's file is what it was.
    writeFileSync(join(dir, "src"), "changed\n");
  });

  test("--ro-try and --rw-try skip a missing source; --ro does not", async () => {
    const r = await sh(["--ro-try", "/no/such/dir:/x", "--rw-try", "/no/such/file:/y", "--bind-try", "/etc/hostname:/z"], "ls /x /y 2>&1 | wc -l; cat /z > /dev/null && echo z");
    expect(r.stdout).toBe("2\nz\n");
    const strict = await sh(["--ro", "/no/such/dir:/x"], "true");
    expect(strict.code).toBe(2);
    expect(strict.stderr).toContain("--ro /no/such/dir:/x: /no/such/dir does not exist on the host");
  });

  test("--mask hides a file and a directory; --remount-ro makes a writable bind read-only", async () => {
    const dir = scratchDir("mask");
    writeFileSync(join(dir, "secret"), "secret\n");
    const r = await sh(
      ["--rw", `${dir}:/w`, "--mask", "/w/secret", "--mask", "/etc", "--remount-ro", "/w", "--mask", "/not/there"],
      "cat /w/secret | wc -c; ls /etc | wc -l; touch /w/new 2>/dev/null || echo w-ro",
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("0\n0\nw-ro\n");
  });

  test("a mount point inside a read-only bind is refused with what to do", async () => {
    const r = await sh(["--tmpfs", "/usr/bunbox-new"], "true");
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("mount /usr/bunbox-new: EROFS");
    expect(r.stderr).toContain("hint: that destination lies in a read-only tree of the sandbox");
  });

  test("a name the sandbox's /proc or /sys cannot hold is said as such, not as a dangling symlink", async () => {
    for (const [opts, dst] of [[["--dir", "/proc/bunbox-x"], "/proc/bunbox-x"], [["--tmpfs", "/proc/bunbox-y/z"], "/proc/bunbox-y/z"]] as const) {
      const r = await sh([...opts], "true");
      expect(r.code).toBe(125);
      expect(r.stderr).toContain(`mount ${dst}: cannot be made there, the filesystem of its parent makes no new names (the sandbox's /proc or /sys)`);
      expect(r.stderr).not.toContain("dangling");
    }
  });

  test("usage errors name the option", async () => {
    const cases: [string[], string][] = [
      [["--symlink", "/only-one"], '--symlink: "/only-one" is not TARGET:DESTINATION'],
      [["--file", "/etc/hostname"], '--file: "/etc/hostname" is not SOURCE:DESTINATION'],
      [["--file", "99:/x"], "--file 99:/x: fd 99 cannot be read"],
      [["--dir", "rel"], "--dir rel: rel: sandbox paths must be absolute"],
      [["--danger-allow-host-mount", "kernel"], '--danger-allow-host-mount: "kernel" is not one of proc, sys, dev'],
      [["--overlay"], "--overlay: needs a lower layer: --root DIR"],
    ];
    for (const [opts, message] of cases) {
      const r = await sh(opts, "true");
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(message);
    }
  });
});

describe("mount kinds in a policy file", () => {
  test("the same kinds from filesystem.mounts", async () => {
    const dir = scratchDir("policy");
    writeFileSync(join(dir, "src"), "from source\n", { mode: 0o644 });
    const policy = join(dir, "p.json");
    writeFileSync(policy, JSON.stringify({
      profile: "default",
      filesystem: {
        mounts: [
          { dir: "/made", mode: 0o700 },
          { symlink: "/lnk", target: "/made" },
          { file: "/etc/motd", content: "inline\n" },
          { file: "/tmp/copy", source: join(dir, "src"), mode: 0o600 },
          { proc: "/proc2" },
          { dev: "/dev2" },
          { bind: "/no/such", at: "/x", try: true },
          { mask: "/etc/hostname" },
          { tmpfs: "/scratch", size: "1M" },
          { readonly: "/scratch" },
        ],
      },
    }));
    const r = await sh(["--policy", policy], "stat -c %a /made; readlink /lnk; cat /etc/motd /tmp/copy; stat -c %a /tmp/copy; ls /proc2/1/status; ls /dev2/zero; wc -c < /etc/hostname; touch /scratch/x 2>/dev/null || echo scratch-ro");
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("700\n/made\ninline\nfrom source\n600\n/proc2/1/status\n/dev2/zero\n0\nscratch-ro\n");
  });

  test("a bad entry names its dotted path", async () => {
    const dir = scratchDir("policy");
    const policy = join(dir, "p.json");
    writeFileSync(policy, JSON.stringify({ profile: "default", filesystem: { mounts: [{ file: "/x", content: "a", source: "/etc/hostname" }] } }));
    const r = await sh(["--policy", policy], "true");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("filesystem.mounts.0");
  });
});
