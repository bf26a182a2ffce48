/**
 * Overlay roots (overlayfs in the sandbox's user namespace, Linux 5.11+):
 * --overlay makes the root writable with its changes in a tmpfs, gone with
 * the run; --overlay-upper DIR keeps them in DIR/upper for the next run;
 * --overlay-lower stacks more layers over --root; the overlay mount kind does
 * the same at any destination. The host's directories stay as they were.
 *
 * overlayfs copies a directory up with its owner, which a user namespace can
 * only give to a uid it maps: the image is owned by the sandbox's uid here
 * (65534, as bunbox runs as root or as nobody), as README.md says it must be.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bunbox, describeUnless, NEEDS_ROOT, testUnless } from "../helpers.ts";
import { NO_STAGE, STAGE_PATH, scratchDir, stageCopy } from "./stage.ts";

let image: string | undefined;
/** The image, owned by the sandbox's uid; made once. */
const root = () => (image ??= stageCopy(65534));

const run = (opts: string[], script: string, nobody = false) =>
  bunbox(["run", "--root", root(), "--env", STAGE_PATH, ...opts, "--", "sh", "-c", script], { bare: true, nobody });

describeUnless(NO_STAGE)(`overlay roots`, () => {
  for (const nobody of [false, true]) {
    const as = nobody ? " (as nobody)" : "";

    testUnless(nobody ? NEEDS_ROOT : undefined)(`--overlay: writes go to a tmpfs and vanish with the run${as}`, async () => {
      const r = await run(["--overlay"], "echo written > /srv/new && cat /srv/new && rm /etc/stage-marker 2>/dev/null; ls /srv", nobody);
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe("written\nnew\n");
      expect(existsSync(join(root(), "srv", "new"))).toBe(false);
      const again = await run(["--overlay"], "ls /srv | wc -l; cat /etc/stage-marker", nobody);
      expect(again.stdout).toBe("0\nstaged root\n");
    });

    testUnless(nobody ? NEEDS_ROOT : undefined)(`--overlay-upper DIR: the changes are kept in DIR/upper and seen by the next run${as}`, async () => {
      const upper = scratchDir("upper");
      const first = await run(["--overlay-upper", upper], "echo kept > /srv/kept", nobody);
      expect(first.code).toBe(0);
      expect(await Bun.file(join(upper, "upper", "srv", "kept")).text()).toBe("kept\n");
      expect(existsSync(join(root(), "srv", "kept"))).toBe(false);
      const second = await run(["--overlay-upper", upper], "cat /srv/kept", nobody);
      expect(second.stdout).toBe("kept\n");
    });
  }

  test("--overlay-lower: more layers over --root, the last one on top", async () => {
    const top = scratchDir("lower");
    mkdirSync(join(top, "etc"), { mode: 0o755 });
    writeFileSync(join(top, "etc", "stage-marker"), "overlaid\n");
    writeFileSync(join(top, "etc", "extra"), "extra\n");
    const r = await run(["--overlay", "--overlay-lower", top], "cat /etc/stage-marker /etc/extra; ls /bin/busybox");
    expect(r.stdout).toBe("overlaid\nextra\n/bin/busybox\n");
  });

  test("the overlay kind at a destination, from a policy file", async () => {
    const a = scratchDir("a");
    const b = scratchDir("b");
    writeFileSync(join(a, "f"), "a\n");
    writeFileSync(join(a, "g"), "a\n");
    writeFileSync(join(b, "g"), "b\n");
    const policy = join(scratchDir("policy"), "p.json");
    writeFileSync(policy, JSON.stringify({ profile: "default", filesystem: { mounts: [{ overlay: "/opt/o", lowers: [a, b], writable: true }] } }));
    const r = await bunbox(["run", "--policy", policy, "--", "/bin/sh", "-c", "cat /opt/o/f /opt/o/g; echo new > /opt/o/h && cat /opt/o/h"], { bare: true });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("a\nb\nnew\n");
    expect(readdirSync(a).sort()).toEqual(["f", "g"]);
    expect(readdirSync(b)).toEqual(["g"]);
  });

  testUnless(NEEDS_ROOT)("an overlay the kernel refuses is a setup error at the overlay stage, with its reason", async () => {
    const up = scratchDir("upper");
    const ro = scratchDir("upper-ro");
    expect(Bun.spawnSync(["mount", "--bind", up, ro]).exitCode).toBe(0);
    try {
      expect(Bun.spawnSync(["mount", "-o", "remount,bind,ro", ro]).exitCode).toBe(0);
      const r = await run(["--overlay-upper", ro], "true");
      expect(r.code).toBe(125);
      expect(r.stderr).toContain("SETUP_ERROR: overlay / (the sandbox's root): the overlay's upper directory on the host: EROFS");
    } finally {
      Bun.spawnSync(["umount", ro]);
    }
  });

  test("bad overlay options are usage errors", async () => {
    const cases: [string[], string][] = [
      [["--overlay", "--root-rw"], "--root-rw: an --overlay root is writable already"],
      [["--overlay-upper", "/etc/passwd"], "/etc/passwd: an overlay's upper directory must be a directory"],
      [["--overlay-lower", "/no/such"], "/no/such does not exist on the host"],
    ];
    for (const [opts, message] of cases) {
      const r = await run(opts, "true");
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(message);
    }
  });
});
