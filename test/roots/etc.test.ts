/**
 * The /etc files bunbox generates in an image root that lacks them
 * (src/sandbox/etc.ts): hosts and resolv.conf for the network mode, passwd
 * and group entries for the sandbox's ids; an image's own entries kept, and
 * its files read with the image as "/", so a link to /etc/shadow never brings
 * the host's.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bunbox, describeUnless, IS_ROOT, NEEDS_ROOT, testUnless } from "../helpers.ts";
import { NO_STAGE, STAGE_PATH, stage, stageCopy } from "./stage.ts";

const run = (root: string, opts: string[], script: string, nobody = false) =>
  bunbox(["run", "--root", root, "--env", STAGE_PATH, ...opts, "--", "sh", "-c", script], { bare: true, nobody });

describeUnless(NO_STAGE)(`generated /etc`, () => {
  test("id, whoami and ls -l have names; hosts knows localhost and the hostname; no resolver", async () => {
    const r = await run(stage(), ["--hostname", "box"], "id; whoami; ls -ld /tmp | cut -c 1-10; grep -c localhost /etc/hosts; grep box /etc/hosts; cat /etc/resolv.conf");
    expect(r.stderr).toBe("");
    const uid = IS_ROOT ? 65534 : process.getuid!();
    const lines = r.stdout.split("\n");
    expect(lines[0]).toMatch(new RegExp(`^uid=${uid}\\([a-z_][a-z0-9_.-]*\\) gid=\\d+\\([a-z_][a-z0-9_.-]*\\)`));
    expect(lines[1]).toMatch(/^[a-z_]/);
    expect(lines.slice(3, 5)).toEqual(["2", "127.0.1.1\tbox"]);
    expect(r.stdout).toContain("no network to resolve names on");
  });

  test("--uid: the entry is for that uid", async () => {
    const r = await run(stage(), ["--uid", "4242", "--gid", "4243"], "id -u; id -un; grep :4242: /etc/passwd | cut -d: -f3,4");
    expect(r.stdout.split("\n").slice(0, 3)).toEqual(["4242", "user", "4242:4243"]);
  });

  test("an image's own passwd entry for the uid is left as it is", async () => {
    const root = stageCopy();
    const uid = IS_ROOT ? 65534 : process.getuid!();
    writeFileSync(join(root, "etc", "passwd"), `root:x:0:0::/root:/bin/sh\nbuilder:x:${uid}:${uid}::/home:/bin/sh\n`, { mode: 0o644 });
    const r = await run(root, [], "whoami; cat /etc/passwd | wc -l");
    expect(r.stdout).toBe("builder\n2\n");
  });

  test("an image's etc/passwd -> /etc/shadow: its own shadow, never the host's", async () => {
    const root = stageCopy();
    symlinkSync("/etc/shadow", join(root, "etc", "passwd"));
    writeFileSync(join(root, "etc", "shadow"), "imageuser:x:5000:5000::/:/bin/sh\n", { mode: 0o644 });
    const r = await run(root, [], "cat /etc/passwd");
    expect(r.stdout).toContain("imageuser:x:5000:5000");
    if (IS_ROOT) {
      const host = readFileSync("/etc/shadow", "utf8").split("\n")[0]!;
      expect(r.stdout).not.toContain(host);
    }
  });

  test("--net host: the host's hosts and resolv.conf", async () => {
    const r = await run(stage(), ["--net", "host"], "cat /etc/hosts");
    expect(r.stdout).toBe(readFileSync("/etc/hosts", "utf8"));
  });

  testUnless(NEEDS_ROOT)("as nobody too", async () => {
    const r = await run(stage(), [], "id -un", true);
    expect(r.stdout).toBe("nobody\n");
  });
});
