/**
 * The sandboxlib-style call (src/sandbox/sandboxlib.ts): runSandbox with
 * sandboxlib's vocabulary, capabilities() as probed on this host, and
 * degrade() weakening a config with a warning per guarantee it drops.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { capabilities, type Capabilities, degrade, MAXIMUM_ISOLATION, runSandbox } from "../../src/index.ts";
import { bunbox, describeUnless, IS_ROOT } from "../helpers.ts";
import { NO_STAGE, scratchDir, stage, stageCopy } from "./stage.ts";

const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);
const ENV = { PATH: "/bin:/usr/bin" };

describeUnless(NO_STAGE)(`runSandbox`, () => {
  test("a staged root, one writable path, an extra mount, no network; stdout and stderr captured", async () => {
    const root = stageCopy();
    const r = await runSandbox(["sh", "-c", "echo out; echo err >&2; echo kept > /srv/f; touch /etc/x 2>/dev/null || echo etc-ro; ls /host-usr/bin/gcc >/dev/null && echo usr; exit 3"], {
      filesystemRoot: root,
      filesystemWritablePaths: ["/srv"],
      extraMounts: [{ source: "/usr", target: "/host-usr", type: "bind", options: "ro" }, { target: "/proc", type: "proc" }],
      network: "isolated",
      cwd: "/srv",
      env: ENV,
    });
    expect(r.result.status).toBe("OK");
    expect(r.exitCode).toBe(3);
    expect(text(r.stdout)).toBe(`out\netc-ro\n${existsSync("/usr/bin/gcc") ? "usr\n" : ""}`);
    expect(text(r.stderr)).toBe("err\n");
    expect(await Bun.file(join(root, "srv", "f")).text()).toBe("kept\n");
    expect(r.relaxations).toEqual([]);
  });

  test('stderr "stdout" merges them; "devnull" drops; network "undefined" is the host\'s, a relaxation', async () => {
    const merged = await runSandbox(["sh", "-c", "echo a; echo b >&2"], { filesystemRoot: stage(), stderr: "stdout", env: ENV });
    expect(text(merged.stdout)).toBe("a\nb\n");
    expect(merged.stderr).toBeUndefined();
    const dropped = await runSandbox(["sh", "-c", "echo a"], { filesystemRoot: stage(), stdout: "devnull", network: "undefined", env: ENV });
    expect(dropped.stdout).toBeUndefined();
    expect(dropped.exitCode).toBe(0);
    expect(dropped.relaxations.join()).toContain("network host");
  });

  test("discardWrites: a writable root whose writes vanish", async () => {
    const root = stageCopy(65534); // overlayfs copies up with owners the sandbox maps
    const r = await runSandbox(["sh", "-c", "echo x > /srv/gone && cat /srv/gone"], { filesystemRoot: root, discardWrites: true, env: ENV });
    expect(text(r.stdout)).toBe("x\n");
    expect(existsSync(join(root, "srv", "gone"))).toBe(false);
  });

  test("a C build, sandboxlib's case", async () => {
    if (!existsSync("/usr/bin/gcc")) return;
    const proj = scratchDir("proj");
    writeFileSync(join(proj, "main.c"), 'int main(void) { return 42; }\n');
    const r = await runSandbox(["sh", "-c", "gcc -o app main.c && ./app"], {
      filesystemRoot: stage(),
      extraMounts: [{ source: "/usr", target: "/usr", options: "bind,ro" }, { source: proj, target: "/build", options: "bind,rw" }],
      cwd: "/build",
      env: ENV,
      ...MAXIMUM_ISOLATION,
    });
    expect(text(r.stderr)).toBe("");
    expect(r.exitCode).toBe(42);
  });

  test("settings that are no sandboxlib setting, or ask too much, are usage errors", async () => {
    expect(runSandbox(["true"], { filesystemroot: "/" } as never)).rejects.toThrow("filesystemroot: not a sandboxlib setting");
    expect(runSandbox(["true"], { filesystemWritablePaths: "all" })).rejects.toThrow("bunbox gives no sandbox the host's whole filesystem writable");
    expect(runSandbox(["true"], { extraMounts: [{ target: "/x", type: "nfs" as never }] })).rejects.toThrow("extraMounts.0.type");
  });
});

describe("capabilities and degrade", () => {
  test("capabilities() are this host's, probed once", async () => {
    const a = await capabilities();
    expect(await capabilities()).toBe(a);
    expect(a.userNamespaces).toBe(true); // the suite runs sandboxes
    expect(typeof a.overlayInUserNamespace).toBe("boolean");
    expect(a.idmappedMounts).toBe(IS_ROOT ? a.idmappedMounts : false);
    expect([false, "v1", "v2"]).toContain(a.cgroups);
    expect(a.landlock === false || a.landlock >= 1).toBe(true);
    expect(a.seccompNotify).toBe(true);
    for (const [k, v] of Object.entries(a)) if (v === false) expect(a.why[k as keyof Capabilities["why"]]).toBeString();
  });

  const full: Capabilities = {
    userNamespaces: true, overlayInUserNamespace: true, idmappedMounts: true, cgroups: "v2", landlock: 4, seccompNotify: true, kernel: "6.1", why: {},
  };

  test("degrade() keeps what the host can do, and drops with a warning what it cannot", async () => {
    const config = { filesystemRoot: "/srv/stage", discardWrites: true, network: "isolated" } as const;
    expect(await degrade(config, full)).toEqual({ config, warnings: [] });
    const weak = await degrade(config, { ...full, overlayInUserNamespace: false, seccompNotify: false, why: { overlayInUserNamespace: "refused" } });
    expect(weak.config).toEqual({ filesystemRoot: "/srv/stage", network: "isolated" });
    expect(weak.warnings).toEqual([
      "discardWrites: writes outside the writable paths now fail instead of vanishing with the run (refused; Linux 5.11+)",
      "violations: reported without the syscall and its arguments (no seccomp user notification, Linux 5.0+); still refused",
    ]);
    expect(degrade(config, { ...full, userNamespaces: false, why: { userNamespaces: "clone: EPERM" } })).rejects.toThrow("bunbox cannot make a sandbox on this host: clone: EPERM");
  });
});
