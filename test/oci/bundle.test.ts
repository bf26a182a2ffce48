/**
 * `bunbox oci run BUNDLE` and `bunbox oci spec`, against the real kernel:
 * a bundle whose root is the staged busybox root; its seccomp profile
 * denying mkdir with EPERM, or killing on it; containers-common's real
 * profile; and every field bunbox does not carry out refused by name.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { starterConfig } from "../../src/cli/oci.ts";
import { loadBundle } from "../../src/oci/bundle.ts";
import { OCI_FIELDS } from "../../src/oci/spec.ts";
import { bunbox, describeUnless, NEEDS_ROOT, testUnless } from "../helpers.ts";
import { NO_STAGE, scratchDir, stage } from "../roots/stage.ts";

const CONTAINERS = "/usr/share/containers/seccomp.json";
const NO_CONTAINERS = existsSync(CONTAINERS) ? undefined : `no ${CONTAINERS} (apt-get install golang-github-containers-common)`;

/**
 * A bundle: the starter config with `edit` applied; its root the staged root
 * (by its absolute path), or with `copy` a copy of it as rootfs/ (the
 * starter's relative path).
 */
function bundle(edit: (c: Record<string, any>) => void = () => {}, copy = false): string {
  const dir = scratchDir("bundle");
  const c = starterConfig() as Record<string, any>;
  if (copy) cpSync(stage(), join(dir, "rootfs"), { recursive: true, verbatimSymlinks: true });
  else c.root.path = stage();
  c.process.env = ["PATH=/bin"];
  edit(c);
  writeFileSync(join(dir, "config.json"), JSON.stringify(c, null, 2));
  return dir;
}

const sh = (script: string) => (c: Record<string, any>) => (c.process.args = ["sh", "-c", script]);
const oci = (dir: string, opts: string[] = [], nobody = false) => bunbox(["oci", "run", ...opts, dir], { bare: true, nobody });

describeUnless(NO_STAGE)(`oci run`, () => {
  for (const nobody of [false, true]) {
    testUnless(nobody ? NEEDS_ROOT : undefined)(`the starter config runs: its root read-only, hostname, uid 0 inside, masked and read-only paths${nobody ? " (as nobody)" : ""}`, async () => {
      const dir = bundle(sh("id -u; hostname; touch /x 2>/dev/null || echo root-ro; wc -c < /proc/timer_list; echo 1 2>/dev/null > /proc/sys/kernel/ns_last_pid || echo sys-ro; touch /tmp/ok && echo tmp-ok"), true);
      const r = await oci(dir, [], nobody);
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe("0\nbunbox\nroot-ro\n0\nsys-ro\ntmp-ok\n");
      expect(r.code).toBe(0);
    });
  }

  test("process.terminal: a pty of its own, of consoleSize", async () => {
    const dir = bundle((c) => {
      sh("tty; stty size")(c);
      c.process.terminal = true;
      c.process.consoleSize = { height: 30, width: 100 };
    });
    const r = await oci(dir);
    expect(r.stdout.replaceAll("\r", "")).toBe("/dev/pts/0\n30 100\n");
    expect(r.code).toBe(0);
  });

  test("a profile that denies mkdir with EPERM (errnoRet) and allows the rest", async () => {
    const dir = bundle((c) => {
      sh("mkdir /tmp/d 2>&1; echo rc=$?; touch /tmp/f && echo touched")(c);
      c.linux.seccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }] };
    });
    const r = await oci(dir, ["-v"]);
    expect(r.stdout).toBe("mkdir: can't create directory '/tmp/d': Operation not permitted\nrc=1\ntouched\n");
    expect(r.stderr).toContain("relaxation: dangerDefaultAllowAll");
  });

  test("a profile that kills on mkdir: a violation naming the call", async () => {
    const dir = bundle((c) => {
      sh("mkdir /tmp/d; echo not reached")(c);
      c.linux.seccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_KILL_PROCESS" }] };
    });
    const r = await oci(dir, ["--json"]);
    expect(r.code).toBe(159);
    expect(r.stdout).toBe("");
    const result = JSON.parse(r.stderr.trim().split("\n").at(-1)!);
    expect(result.status).toBe("VIOLATION");
    expect(result.violation.syscall).toMatch(/^mkdir(at)?$/);
  });

  testUnless(NO_CONTAINERS)("containers-common's profile runs sh -c 'ls /'", async () => {
    const dir = bundle((c) => {
      sh("ls /")(c);
      c.linux.seccomp = JSON.parse(readFileSync(CONTAINERS, "utf8"));
    });
    const r = await oci(dir);
    expect(r.stderr).toBe("");
    expect(r.stdout.split("\n").filter(Boolean)).toEqual(["bin", "dev", "etc", "lib", "lib64", "proc", "srv", "tmp", "usr"]);
  });

  test("bind mounts from the bundle, relative sources, read-only unless rw", async () => {
    const dir = bundle((c) => {
      sh("cat /data/in; echo out > /out/f && echo wrote; echo x > /data/y 2>/dev/null || echo data-ro")(c);
      c.mounts.push({ destination: "/data", type: "bind", source: "data", options: ["rbind", "ro"] });
      c.mounts.push({ destination: "/out", type: "none", source: "out", options: ["bind", "rw"] });
    });
    mkdirSync(join(dir, "data"), { mode: 0o755 });
    writeFileSync(join(dir, "data", "in"), "in\n");
    mkdirSync(join(dir, "out"));
    chmodSync(join(dir, "out"), 0o777);
    const r = await oci(dir);
    expect(r.stdout).toBe("in\nwrote\ndata-ro\n");
    expect(readFileSync(join(dir, "out", "f"), "utf8")).toBe("out\n");
  });

  test("oci spec writes a config.json once; a second time is an error", async () => {
    const dir = scratchDir("spec");
    const first = await bunbox(["oci", "spec", "--bundle", dir], { bare: true });
    expect(first.code).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).ociVersion).toBe("1.2.0");
    const again = await bunbox(["oci", "spec", "--bundle", dir], { bare: true });
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("exists: remove it first");
  });
});

describe("what a bundle asks and bunbox does not do is an error naming the field", () => {
  const refused = (edit: (c: Record<string, any>) => void) => {
    const dir = bundle(edit);
    try {
      loadBundle(dir);
    } catch (e) {
      return (e as { problems: string[] }).problems;
    }
    return [];
  };

  test("fields bunbox does not carry out, keys the spec does not have, and what it refuses by value", () => {
    const problems = refused((c) => {
      c.linux.sysctl = { "net.ipv4.ip_forward": "1" };
      c.hooks = { prestart: [{ path: "/bin/true" }] };
      c.linux.bogus = 1;
      c.process.capabilities = { bounding: ["CAP_KILL"] };
      c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== "pid");
      c.mounts.push({ destination: "/sys", type: "sysfs", source: "sysfs" });
      c.process.rlimits.push({ type: "RLIMIT_MEMLOCK", soft: 1, hard: 1 });
    });
    expect(problems).toEqual(["linux.bogus: not a field of the OCI runtime spec"]);
    const rest = refused((c) => {
      c.linux.sysctl = { "net.ipv4.ip_forward": "1" };
      c.hooks = { prestart: [{ path: "/bin/true" }] };
      c.process.capabilities = { bounding: ["CAP_KILL"] };
      c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== "pid");
      c.mounts.push({ destination: "/sys", type: "sysfs", source: "sysfs" });
      c.process.rlimits.push({ type: "RLIMIT_MEMLOCK", soft: 1, hard: 1 });
    });
    for (const p of [
      "hooks: not supported by bunbox (bunbox runs no hooks)",
      "linux.sysctl: not supported by bunbox (not supported)",
      "mounts.3.type: sysfs is not supported (proc, tmpfs, bind)",
      "linux.namespaces: no pid namespace: sharing the host's pids is refused",
      "process.capabilities.bounding: bunbox grants no capabilities (CAP_KILL)",
      "process.rlimits.1.type: RLIMIT_MEMLOCK is not supported (RLIMIT_AS, RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_CORE)",
    ]) {
      expect(rest).toContain(p);
    }
  });

  test("every field the spec lists as unsupported is refused when set", () => {
    for (const [field, [supported]] of Object.entries(OCI_FIELDS)) {
      if (supported) continue;
      const problems = refused((c) => {
        const parts = field.split(".");
        let node = c;
        for (const [i, part] of parts.entries()) {
          const name = part.replace("[]", "");
          if (i === parts.length - 1) node[name] = { set: true };
          else if (part.endsWith("[]")) node = node[name][0];
          else node = node[name] ??= {};
        }
      });
      expect([field, problems.some((p) => p.startsWith(`${field}: not supported by bunbox`))]).toEqual([field, true]);
    }
  });

  test("the command line: exit 2 and every problem listed", async () => {
    const dir = bundle((c) => {
      c.linux.sysctl = { a: "b" };
      c.domainname = "example.org";
    });
    const r = await bunbox(["oci", "run", dir], { bare: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("the bundle cannot run as written");
    expect(r.stderr).toContain("  - domainname: not supported by bunbox");
    expect(r.stderr).toContain("  - linux.sysctl: not supported by bunbox");
  });
});
