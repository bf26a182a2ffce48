/**
 * --root DIR: a host directory as the sandbox's "/" (read-only unless
 * --root-rw), with a fresh /proc, a minimal /dev and a /tmp tmpfs mounted
 * into it on overlay points where the image lacks them (csrc/points.c), and
 * nothing of it changed on the host. As root and as user nobody, from the
 * command line, a policy file and the library.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PolicyBuilder } from "../../src/policy/builder.ts";
import { Executor } from "../../src/sandbox/executor.ts";
import { Sandbox } from "../../src/sandbox/sandbox.ts";
import { bunbox, describeUnless, NEEDS_ROOT, testUnless } from "../helpers.ts";
import { NO_STAGE, STAGE_PATH, scratchDir, stage, stageCopy } from "./stage.ts";

const who = [false, true];

describeUnless(NO_STAGE)(`--root`, () => {
  for (const nobody of who) {
    const as = nobody ? " (as nobody)" : "";
    testUnless(nobody ? NEEDS_ROOT : undefined)(`the directory is /, read-only, with /proc, /dev and /tmp of its own${as}`, async () => {
      const root = stage();
      const before = readdirSync(root).sort();
      const r = await bunbox(
        ["run", "--root", root, "--env", STAGE_PATH, "--", "sh", "-c",
          "cat /etc/stage-marker; ls /; echo $$; ls /dev/null /proc/1/status; touch /tmp/ok && echo tmp-ok; touch /x 2>/dev/null || echo root-ro; touch /etc/x 2>/dev/null || echo etc-ro"],
        { bare: true, nobody },
      );
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const lines = r.stdout.split("\n");
      expect(lines[0]).toBe("staged root");
      expect(r.stdout).toContain("/dev/null\n/proc/1/status\n");
      expect(r.stdout).toContain("tmp-ok\nroot-ro\netc-ro\n");
      for (const d of ["bin", "dev", "etc", "proc", "tmp", "usr"]) expect(r.stdout).toMatch(new RegExp(`^${d}$`, "m"));
      expect(lines).toContain("2"); // the shell is pid 2 of its own pid namespace
      // Nothing was made in the image on the host: the mount points are on overlay points.
      expect(readdirSync(root).sort()).toEqual(before);
    });

    testUnless(nobody ? NEEDS_ROOT : undefined)(`--root-rw: the sandboxee's writes reach the directory${as}`, async () => {
      // Its own, as a writable image must be run as nobody (as root, any owner's is idmapped: test/containment/idmap.test.ts).
      const root = stageCopy(65534);
      const r = await bunbox(["run", "--root", root, "--root-rw", "--env", STAGE_PATH, "--", "sh", "-c", "echo hi > /srv/new && cat /srv/new"], { bare: true, nobody });
      expect(r.stdout).toBe("hi\n");
      expect(await Bun.file(join(root, "srv", "new")).text()).toBe("hi\n");
    });
  }

  for (const nobody of who) {
    testUnless(nobody ? NEEDS_ROOT : undefined)(`mount points at several depths of the image, each on a point over the image's own directory${nobody ? " (as nobody)" : ""}`, async () => {
      const root = stageCopy();
      mkdirSync(join(root, "etc", "ssl"), { mode: 0o755 });
      // "/" , "/etc" and "/etc/ssl" each get a point; stacked on one another they would pass overlayfs's depth of two.
      const r = await bunbox(
        ["run", "--root", root, "--env", STAGE_PATH, "--dir", "/newtop", "--file", "/etc/hostname:/etc/motd", "--dir", "/etc/ssl/new", "--",
          "sh", "-c", "ls -d /newtop /etc/ssl/new /etc/motd; echo $(ls /etc); touch /etc/x /newtop2 2>/dev/null || echo points-ro"],
        { bare: true, nobody },
      );
      expect(r.stderr).toBe("");
      // The image's /etc as it is, with the mount points and bunbox's generated files.
      expect(r.stdout).toBe("/etc/motd\n/etc/ssl/new\n/newtop\ngroup hosts motd passwd resolv.conf ssl stage-marker\npoints-ro\n");
    });
  }

  test("a policy file's filesystem.root, and the mounts it adds into the image", async () => {
    const dir = scratchDir("policy");
    const policy = join(dir, "p.json");
    writeFileSync(policy, JSON.stringify({
      profile: "default",
      filesystem: { root: stage(), mounts: [{ tmpfs: "/build", size: "1M" }, { file: "/etc/motd", content: "from the policy\n" }] },
    }));
    const r = await bunbox(["run", "--policy", policy, "--env", STAGE_PATH, "--", "sh", "-c", "cat /etc/motd /etc/stage-marker; touch /build/x && echo build-rw"], { bare: true });
    expect(r.stdout).toBe("from the policy\nstaged root\nbuild-rw\n");
    expect(r.code).toBe(0);
  });

  test('"base": "empty" with a root adds nothing: no /proc, /dev, /tmp unless asked', async () => {
    const dir = scratchDir("policy");
    const policy = join(dir, "p.json");
    writeFileSync(policy, JSON.stringify({ profile: "default", filesystem: { base: "empty", root: stage(), mounts: [{ proc: "/proc" }] } }));
    const r = await bunbox(["run", "--policy", policy, "--env", STAGE_PATH, "--", "/bin/busybox", "ls", "/"], { bare: true });
    expect(r.stdout.split("\n").filter(Boolean).sort()).toEqual(["bin", "etc", "lib", "lib64", "proc", "srv", "usr"]);
  });

  test("the library: PolicyBuilder.setRoot", async () => {
    const policy = new PolicyBuilder().dangerDefaultAllowAll().setRoot(stage()).addTmpfs("/build").build();
    const out = new Executor("/bin/sh", ["sh", "-c", "cat /etc/stage-marker > /dev/null && touch /build/f && exit 7"]);
    const result = await new Sandbox(out, policy).run();
    expect(result.status).toBe("OK");
    expect(result.exitCode).toBe(7);
    expect(policy.mountPlan().describe()[0]).toBe(`root ro ${stage()}`);
  });

  test("a file is no root, and the host's / would show its /proc: usage errors", async () => {
    const file = await bunbox(["run", "--root", "/etc/passwd", "--", "true"], { bare: true });
    expect(file.code).toBe(2);
    expect(file.stderr).toContain("--root /etc/passwd: /etc/passwd: the sandbox's root must be a directory");
    const slash = await bunbox(["run", "--root", "/", "--", "true"], { bare: true });
    expect(slash.code).toBe(2);
    expect(slash.stderr).toContain("would show the host's /proc");
    const rw = await bunbox(["run", "--root-rw", "--", "true"], { bare: true });
    expect(rw.stderr).toContain("--root-rw: makes --root DIR writable: give --root");
  });
});
