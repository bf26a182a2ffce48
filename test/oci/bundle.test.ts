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

/** The starter config, as bundle() starts from. */
const c0 = () => starterConfig() as Record<string, any>;
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

  // RLIMIT_NOFILE 2 waited 10 s, then SETUP_ERROR EMFILE (exit 125); RLIMIT_AS 1
  // was a SIGSEGV in exec; mode=abc and mode=99999 were dropped unsaid (NaN);
  // process.cwd, process.args and process.user.uid were named cwd, command, setUid.
  test("values bunbox run refuses are refused in a bundle too, each naming the bundle's field", () => {
    expect(refused((c) => {
      c.process.rlimits = [{ type: "RLIMIT_NOFILE", soft: 2, hard: 2 }, { type: "RLIMIT_AS", soft: 1, hard: 1 }];
      c.mounts[2].options = ["mode=abc", "mode=99999", "mode=1777"];
      c.process.user.uid = 4294967295;
    })).toEqual([
      "mounts.2.options.0: mode=abc is not an octal mode (0 to 7777)",
      "mounts.2.options.1: mode=99999 is not an octal mode (0 to 7777)",
      "process.rlimits.0 (RLIMIT_NOFILE): 2 cannot work: the sandboxee needs stdin, stdout, stderr and the seccomp listener it creates before exec (at least 4)",
      "process.rlimits.1 (RLIMIT_AS): 1 is below 1M, the smallest limit bunbox accepts: exec alone maps a 128K stack, the vDSO and the program (a C program needs a few M)",
      "process.user.uid: bad uid 4294967295",
    ]);
    expect(refused((c) => (c.process.cwd = "relative"))).toEqual(["process.cwd: relative: sandbox paths must be absolute (start with /)"]);
    expect(refused((c) => (c.process.args = [""]))).toEqual(["process.args.0: no program given"]);
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

  // The problems were one line joined by a literal "\n" (the error path made
  // every newline visible but a policy's), and the builder's were named for
  // its methods (setRoot(/), bind(/data), maskPath(x)), not the bundle's fields.
  test("the command line: a line per problem, each naming the bundle's field", async () => {
    const dir = bundle((c) => {
      c.root = { path: "/", readonly: false };
      c.mounts.push({ destination: "/data", type: "bind", source: "/no/such", options: ["rbind", "ro"] });
      c.linux.maskedPaths.push("relative/x");
      c.hostname = "bad host";
    });
    const r = await bunbox(["oci", "run", dir], { bare: true });
    expect(r.code).toBe(2);
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines[0]).toBe(`bunbox: error: ${dir}: the bundle cannot run as written:`);
    expect(lines.slice(1).map((l) => l.split(":")[0])).toEqual(["  - root.path", "  - mounts.3", `  - linux.maskedPaths.${c0().linux.maskedPaths.length}`, "  - hostname"]);
    expect(lines[1]).toContain("/ as the sandbox's root would show the host's /proc");
    expect(lines[2]).toContain("/no/such does not exist on the host");
  });
});

describe("linux.resources: memory, pids and cpu are the sandbox cgroup's limits", () => {
  const loaded = (edit: (c: Record<string, any>) => void) => loadBundle(bundle(edit)).executor.limits;
  const problems = (edit: (c: Record<string, any>) => void) => {
    try {
      loadBundle(bundle(edit));
    } catch (e) {
      return (e as { problems: string[] }).problems;
    }
    return [];
  };

  test("memory.limit, pids.limit and cpu quota/period become --memory-limit, --max-procs and --cpus", () => {
    const l = loaded((c) => {
      c.linux.resources = { memory: { limit: 64 * 1024 * 1024, swap: 64 * 1024 * 1024 }, pids: { limit: 32 }, cpu: { quota: 50000, period: 100000 } };
    });
    expect({ memory: l.memory, processes: l.processes, cpus: l.cpus }).toEqual({ memory: 64 * 1024 * 1024, processes: 32, cpus: 0.5 });
    // -1 is the spec's "no limit"; a quota without a period is over runc's 100 ms.
    const none = loaded((c) => (c.linux.resources = { memory: { limit: -1 }, cpu: { quota: 150000 } }));
    expect({ memory: none.memory, cpus: none.cpus }).toEqual({ memory: Infinity, cpus: 1.5 });
    // RLIMIT_NPROC and pids.limit are one limit in bunbox: the smaller, whichever it is.
    const nproc = (rl: number, pids: number) =>
      loaded((c) => {
        c.process.rlimits.push({ type: "RLIMIT_NPROC", soft: rl, hard: rl });
        c.linux.resources = { pids: { limit: pids } };
      }).processes;
    expect([nproc(100, 20), nproc(10, 200)]).toEqual([20, 10]);
  });

  test("what the cgroup cannot carry out as written is refused, naming the field", () => {
    const got = problems((c) => {
      c.linux.resources = { memory: { limit: 1000, swap: -1 }, pids: { limit: -1 }, cpu: { quota: 500, period: 100000 } };
    });
    expect(got).toEqual([
      "linux.resources.memory.limit: 1000 is below 4M, the smallest limit bunbox accepts: the sandbox's cgroup also counts the kernel memory of its init and the sandboxee's first pages",
      "linux.resources.memory.swap: -1: a sandbox gets no swap past its memory limit; leave swap out or make it memory.limit (1000)",
      "linux.resources.cpu (quota/period): 0.005 CPUs cannot be enforced: a CPU limit is from 0.01 (1 ms of each 100 ms, the kernel's smallest quota) to 4096",
      "linux.resources.pids.limit: -1: bunbox always bounds a sandbox's processes; name a number (its default is 4096)",
    ]);
    expect(problems((c) => (c.linux.resources = { cpu: { period: 100000 }, pids: { limit: 5_000_000 } }))).toEqual([
      "linux.resources.cpu.period: 100000 without a quota bounds nothing (set cpu.quota, or leave period out)",
      "linux.resources.pids.limit: 5000000 is more processes than Linux can have (at most 4194304)",
    ]);
    expect(problems((c) => (c.linux.resources = { memory: { limit: "64M" } }))[0]).toStartWith("linux.resources.memory.limit: ");
    expect(problems((c) => (c.linux.resources = { memory: { limits: 1 } }))).toEqual(["linux.resources.memory.limits: not a field of the OCI runtime spec"]);
  });

  testUnless(NO_STAGE ?? NEEDS_ROOT)("as root, on the real kernel: the Result's limits are the bundle's, and pids.limit refuses forks", async () => {
    const dir = bundle((c) => {
      sh("for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done 2>/dev/null; echo done")(c);
      c.linux.resources = { memory: { limit: 64 * 1024 * 1024 }, pids: { limit: 4 }, cpu: { quota: 50000 } };
    });
    const r = await oci(dir, ["--json", "--time-limit", "30"]);
    const result = JSON.parse(r.stderr.trim().split("\n").at(-1)!);
    expect(result.containment.limits.memory.value).toBe(64 * 1024 * 1024);
    expect(result.containment.limits.cpus.value).toBe(0.5);
    expect(result.containment.limits.processes.value).toBe(4);
    expect(result.containment.forksRefused).toBeGreaterThan(0);
  });

  testUnless(NO_STAGE ?? NEEDS_ROOT)("as nobody, with no cgroup: exit 2 naming the bundle's field, or run with --allow-weaker-limits", async () => {
    const dir = bundle((c) => {
      sh("echo ran")(c);
      c.linux.resources = { memory: { limit: 64 * 1024 * 1024 } };
    });
    const r = await oci(dir, [], true);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("linux.resources.memory.limit: a memory limit for the whole sandbox (64M) cannot be enforced");
    expect(r.stderr).toContain("--allow-weaker-limits");
    const weaker = await oci(dir, ["--allow-weaker-limits"], true);
    expect([weaker.code, weaker.stdout]).toEqual([0, "ran\n"]);
  });
});
