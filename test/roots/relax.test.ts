/**
 * A bind that shows the host's /proc, /sys or device nodes is a named
 * relaxation, dangerAllowHostMount("proc" | "sys" | "dev"): refused without
 * it (it once showed the host's /proc while -v said "relaxations: none"),
 * listed by -v and --json with it. Read from the path, the filesystem it is
 * on and what is mounted under it (src/sandbox/exposure.ts).
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { PolicyBuilder, PolicyError } from "../../src/policy/builder.ts";
import { bunbox, NEEDS_ROOT, testUnless } from "../helpers.ts";
import { scratchDir } from "./stage.ts";

const sh = (opts: string[], script = "true") => bunbox(["run", ...opts, "--", "/bin/sh", "-c", script], { bare: true });

describe("dangerAllowHostMount", () => {
  test("binding the host's /proc is refused, and with the relaxation -v and --json name it", async () => {
    const refused = await sh(["--ro", "/proc:/hostproc"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`bind /proc -> /hostproc: shows the host's /proc (every host process, kernel settings); allow it with dangerAllowHostMount("proc")`);
    const allowed = await sh(["--ro", "/proc:/hostproc", "--danger-allow-host-mount", "proc", "-v", "--json"], "test -e /hostproc/1/status && echo host-pid-1");
    expect(allowed.stdout).toBe("host-pid-1\n");
    const note = `dangerAllowHostMount("proc"): the host's /proc (every host process, kernel settings) may be bound into the sandbox (/proc -> /hostproc)`;
    expect(allowed.stderr).toContain(`relaxation: ${note}`);
    const json = JSON.parse(allowed.stderr.trim().split("\n").at(-1)!);
    expect(json.relaxations).toEqual([note]);
  });

  test("/sys, a path under it, a device node and the host's / each need theirs", async () => {
    expect((await sh(["--ro", "/sys/kernel:/k"])).stderr).toContain('dangerAllowHostMount("sys")');
    expect((await sh(["--rw", "/dev/ptmx:/ptmx"])).stderr).toContain('dangerAllowHostMount("dev")');
    const slash = (await sh(["--ro", "/:/host"])).stderr;
    for (const k of ["proc", "sys", "dev"]) expect(slash).toContain(`dangerAllowHostMount("${k}")`);
    // The minimal /dev's nodes are no relaxation.
    const ok = await sh(["--rw", "/dev/null:/n", "-v"], "echo x > /n && echo null-ok");
    expect(ok.stdout).toBe("null-ok\n");
    expect(ok.stderr).toContain("relaxations: none");
  });

  testUnless(NEEDS_ROOT)("a device node outside /dev: unusable without the relaxation's device access, usable with it", async () => {
    const dir = scratchDir("dev");
    const node = join(dir, "null-copy");
    expect(Bun.spawnSync(["mknod", "-m", "666", node, "c", "1", "3"]).exitCode).toBe(0);
    const refused = await sh(["--rw", `${node}:/n`]);
    expect(refused.stderr).toContain('dangerAllowHostMount("dev")');
    const r = await sh(["--rw", `${node}:/n`, "--danger-allow-host-mount", "dev"], "echo x > /n && echo written");
    expect(r.stdout).toBe("written\n");
  });

  test("a policy file: dangerAllowHostMounts in its filesystem", async () => {
    const dir = scratchDir("policy");
    const refused = join(dir, "refused.json");
    writeFileSync(refused, JSON.stringify({ profile: "default", filesystem: { mounts: [{ bind: "/proc", at: "/hp" }] } }));
    expect((await sh(["--policy", refused])).code).toBe(2);
    const allowed = join(dir, "allowed.json");
    writeFileSync(allowed, JSON.stringify({ profile: "default", filesystem: { mounts: [{ bind: "/proc", at: "/hp" }], dangerAllowHostMounts: ["proc"] } }));
    const r = await sh(["--policy", allowed, "-v"], "test -e /hp/1 && echo ok");
    expect(r.stdout).toBe("ok\n");
    expect(r.stderr).toContain('relaxation: dangerAllowHostMount("proc")');
  });

  test("the library: a problem at build(), a relaxation once allowed", () => {
    expect(() => new PolicyBuilder().addDirectoryAt("/proc", "/p").build()).toThrow(PolicyError);
    const p = new PolicyBuilder().addDirectoryAt("/proc", "/p").dangerAllowHostMount("proc").build();
    expect(p.relaxations.join()).toContain('dangerAllowHostMount("proc")');
    // A copy changed to show more is checked too.
    const plain = new PolicyBuilder().build();
    const plan = plain.mountPlan();
    plan.add({ kind: "bind", src: "/sys", dst: "/s", rw: false });
    expect(() => plain.derive({ mounts: plan })).toThrow('dangerAllowHostMount("sys")');
  });
});
