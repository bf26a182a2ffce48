/**
 * The always-on safety rules (src/policy/safety.ts) through real
 * programs on the real kernel: each attempt by the probe fixture must end as
 * a VIOLATION (159) naming the syscall, or get the errno the rules give it,
 * whatever the profile. A policy can turn a dangerous syscall into an errno,
 * but allowing it takes dangerAllowUnsafe(), which `run -v` lists.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { DANGEROUS_SYSCALLS } from "../../src/policy/safety.ts";
import { bunbox, describeModes, DIR, expectViolation, HOST_ARCH, json, type Mode, probe, runProbe, testPolicy, testUnless } from "../helpers.ts";

/** The probe's attempt is a VIOLATION (159); its Result JSON when the mode reports details. */
async function violation(mode: Mode, args: string[], syscall: string, kind = "SYSCALL", runOpts: string[] = []) {
  const r = await probe(args, ["--json", ...runOpts]);
  expect(r.code).toBe(159);
  const res = json(r.stderr);
  return expectViolation(mode, res, syscall, kind) ? res : undefined;
}

describeModes("dangerous syscalls are violations under every profile", (mode) => {
  test("ptrace, with its arguments", async () => {
    const res = await violation(mode, ["ptrace-args"], "ptrace");
    if (res) {
      expect(res.violation.args.slice(0, 4)).toEqual(["0x4206", "0x1", "0xdead", "0xbeef"]);
      expect(res.violation.rule).toBe("safety rule");
    }
  });
  test("io_uring_setup", () => violation(mode, ["io_uring"], "io_uring_setup"));
  test("bpf", () => violation(mode, ["bpf"], "bpf"));
  test("userfaultfd", () => violation(mode, ["userfaultfd"], "userfaultfd"));
  test("perf_event_open", () => violation(mode, ["perf"], "perf_event_open"));
  test("keyctl", () => violation(mode, ["keyctl"], "keyctl"));
  test("mount", () => violation(mode, ["mount"], "mount"));
  test("setns", () => violation(mode, ["setns"], "setns"));
  test("unshare of a namespace", () => violation(mode, ["unshare-user"], "unshare"));
  test("unshare(CLONE_NEWNET) too", () => violation(mode, ["unshare-net"], "unshare"));
  test("clone with a namespace flag", () => violation(mode, ["clone-newns"], "clone"));
  test("seccomp with a user-notification listener", () => violation(mode, ["seccomp-listener"], "seccomp"));
  test("TIOCSTI", () => violation(mode, ["tiocsti"], "ioctl"));
  test("TIOCSTI with the high 32 bits set (compared on the low 32)", async () => {
    const res = await violation(mode, ["tiocsti-high"], "ioctl");
    if (res) expect(res.violation.args[1]).toBe("0x100005412");
  });
  test("under the minimal-most profiles too", () => violation(mode, ["ptrace"], "ptrace", "SYSCALL", ["--profile", "shell"]));
});

const nr = (name: string) => String(HOST_ARCH.syscalls[name]);
const CLONE_SIGCHLD = 17;
const NAMESPACE_FLAGS = {
  CLONE_NEWNS: 0x00020000,
  CLONE_NEWCGROUP: 0x02000000,
  CLONE_NEWUTS: 0x04000000,
  CLONE_NEWIPC: 0x08000000,
  CLONE_NEWUSER: 0x10000000,
  CLONE_NEWPID: 0x20000000,
  CLONE_NEWNET: 0x40000000,
};

// Through the library, many at once, under a policy that allows each call
// plainly: only a safety rule can stop it (else a syscall left off the
// safety list would still be a violation of the profile). Each call has
// zero or harmless arguments, so that one let through fails on its own
// (EPERM, EFAULT) and the run ends OK instead of VIOLATION.
// The list is written out here, not imported: a name dropped from
// src/policy/safety.ts must fail this test, not leave it.
const ALWAYS_DANGEROUS = [
  "ptrace", "process_vm_readv", "process_vm_writev", "bpf", "io_uring_setup", "io_uring_enter", "io_uring_register",
  "userfaultfd", "perf_event_open", "keyctl", "add_key", "request_key", "kexec_load", "kexec_file_load",
  "init_module", "finit_module", "delete_module", "mount", "umount2", "pivot_root", "setns", "fsopen", "fsconfig",
  "fsmount", "fspick", "move_mount", "open_tree", "open_tree_attr", "mount_setattr", "reboot", "swapon", "swapoff",
  "open_by_handle_at", "acct", "quotactl", "quotactl_fd",
];

test("the safety list here is the code's (a name added there is added here)", () => {
  expect<string[]>([...DANGEROUS_SYSCALLS].sort()).toEqual([...ALWAYS_DANGEROUS].sort());
});

describeModes("the whole safety list", (mode) => {
  test("every always-dangerous syscall of this arch is a violation, even allowed plainly", async () => {
    const names = ALWAYS_DANGEROUS.filter((n) => HOST_ARCH.syscalls[n] !== undefined);
    expect(names.length).toBeGreaterThan(30);
    const policy = testPolicy("default", (b) => b.allowSyscalls(names));
    const results = await Promise.all(names.map((n) => runProbe(["syscall", nr(n)], { policy })));
    names.forEach((n, i) => {
      expect(`${n}: ${results[i]!.status}`).toBe(`${n}: VIOLATION`);
      if (expectViolation(mode, results[i]!, n)) expect(results[i]!.violation!.rule).toBe("safety rule");
    });
  });

  const nsPolicy = () => testPolicy("default", (b) => b.allowSyscalls(["clone", "unshare", "ioctl"]));

  test("clone with each namespace flag, and unshare with each (CLONE_NEWTIME too), are violations", async () => {
    const cases: [string, string, number][] = Object.entries(NAMESPACE_FLAGS).flatMap(([flag, v]) => [
      ["clone", flag, v | CLONE_SIGCHLD],
      ["unshare", flag, v],
    ]);
    cases.push(["unshare", "CLONE_NEWTIME", 0x80]);
    const policy = nsPolicy();
    const results = await Promise.all(cases.map(([call, , flags]) => runProbe(["syscall", nr(call), String(flags)], { policy })));
    cases.forEach(([call, flag], i) => {
      expect(`${call}(${flag}): ${results[i]!.status}`).toBe(`${call}(${flag}): VIOLATION`);
      expectViolation(mode, results[i]!, call);
    });
  });

  test("TIOCLINUX, the other ioctl that types into a terminal", async () => {
    expectViolation(mode, await runProbe(["syscall", nr("ioctl"), "0", String(0x541c), "0"], { policy: nsPolicy() }), "ioctl");
  });
});

/** Whether this machine lets int 0x80 through at all (some VMs fault it before any syscall). */
const ia32 = HOST_ARCH.name === "x86_64" && Bun.spawnSync([`${DIR}/probe`, "i386"]).exitCode === 0;

const NOT_X86_64 = HOST_ARCH.name === "x86_64" ? undefined : `not x86_64 but ${HOST_ARCH.name} (no i386 or x32 ABI to call)`;

describeModes("foreign architectures", (mode) => {
  // Where the kernel faults int 0x80 (no IA32 emulation, or a VM that
  // removes the gate), no syscall is made to filter; the interpreter tests in
  // compiler.test.ts cover the arch check itself.
  testUnless(NOT_X86_64 ?? (ia32 ? undefined : "int 0x80 faults on this machine before any syscall is made (no IA32 emulation)"))("i386 int 0x80 is an ARCH violation", async () => {
    const res = await violation(mode, ["i386"], "getpid", "ARCH");
    if (res) expect(res.violation.arch).toBe("i386");
  });
  testUnless(NOT_X86_64)("x32 syscall numbers are an ARCH violation", async () => {
    const res = await violation(mode, ["x32"], "getpid (x32)", "ARCH");
    if (res) expect(res.violation.rule).toBe("x32 ABI");
  });
});

describe("syscall(-1) is no syscall (glibc's syscall(-1), a ptracer's skip), on every arch", () => {
  // It used to be caught by x86_64's x32 check (0xffffffff has the x32 bit)
  // and reported as "x32 ABI". It names no syscall: the default action decides.
  test("under a profile that kills on refusal it is a policy violation named for what it is", async () => {
    const r = await probe(["syscall", "-1"], ["--json", "--profile", "shell"]);
    expect(r.code).toBe(159);
    const v = json(r.stderr).violation;
    expect(v).toMatchObject({ kind: "SYSCALL", rule: "policy", syscall: "no syscall", nr: -1 });
    expect(r.stderr).toContain("VIOLATION: no syscall(");
    expect(r.stderr).not.toContain("x32");
  });

  test("under default (onRefusal errno) it fails with ENOSYS, as on a kernel without a filter, and is listed as refused", async () => {
    const r = await probe(["syscall", "-1"], ["--json"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("syscall: -1 ENOSYS");
    expect(json(r.stderr).refused).toMatchObject([{ syscall: "no syscall", nr: -1, answer: "ENOSYS", count: 1 }]);
  });

  test("a policy whose default is an errno gives it that errno", async () => {
    const p = `${DIR}/work/default-enosys-${process.pid}.json`;
    writeFileSync(p, JSON.stringify({ profile: "default", defaultAction: { errno: "EL2HLT" } }));
    const r = await probe(["syscall", "-1"], ["--policy", p]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("syscall: -1 EL2HLT");
  });

  test("bunbox policy explain lists it", async () => {
    const r = await bunbox(["policy", "explain", "--profile", "shell", "--all"], { bare: true });
    expect(r.stdout).toMatch(/\n {2}no syscall \(-1\) +violation: policy\n/);
    const d = await bunbox(["policy", "explain", "--profile", "default", "--all"], { bare: true });
    expect(d.stdout).toMatch(/\n {2}no syscall \(-1\) +REFUSED: EPERM \(ENOSYS for an unnamed number\), recorded\n/);
  });
});

describeModes("allowed where harmless", () => {
  test("clone3 fails with ENOSYS (its flags are out of the filter's reach)", async () => {
    const r = await probe(["clone3"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("clone3: -1 ENOSYS");
  });
  test("unshare without namespace flags is allowed", async () => {
    const r = await probe(["unshare-files"]);
    expect(r.stdout).toContain("unshare: 0");
  });
  test("a plain seccomp filter (no listener) may be installed", async () => {
    const r = await probe(["seccomp-plain"]);
    expect(r.stdout).toContain("seccomp: 0");
  });
  test("ioctl TCGETS is not TIOCSTI", async () => {
    const r = await probe(["tcgets"]);
    expect(r.code).toBe(0);
  });
});

describeModes("a policy relaxes only by errno, or loudly", () => {
  const file = (name: string, body: object) => {
    const p = `${DIR}/work/${name}-${process.pid}.json`;
    writeFileSync(p, JSON.stringify(body));
    return p;
  };

  test("block ptrace with EPERM: the call fails, the run goes on", async () => {
    const p = file("block-ptrace", { profile: "default", block: { ptrace: "EPERM" } });
    const r = await probe(["ptrace"], ["--policy", p]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("ptrace: -1 EPERM");
  });

  test("allowing ptrace plainly still leaves it a violation", async () => {
    const p = file("allow-ptrace", { profile: "default", allow: ["ptrace"] });
    const r = await probe(["ptrace"], ["--policy", p]);
    expect(r.code).toBe(159);
  });

  test("dangerAllowUnsafe lets it through, and -v says so", async () => {
    const p = file("danger-ptrace", { profile: "default", allow: ["ptrace"], dangerAllowUnsafe: ["ptrace"] });
    const r = await probe(["ptrace"], ["--policy", p, "-v"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ptrace: (0|-1 E\w+)/);
    expect(r.stderr).toContain('relaxation: dangerAllowUnsafe("ptrace")');
  });

  test("an errno for unshare covers its namespace flags too", async () => {
    const p = file("block-unshare", { profile: "default", block: { unshare: "EPERM" } });
    const r = await probe(["unshare-user"], ["--policy", p]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("unshare: -1 EPERM");
  });

  test("--net host is one relaxation, in the policy's own words, however it is asked for", async () => {
    const note = "relaxation: network host: the sandboxee shares the host's network";
    const count = (text: string) => text.split(note).length - 1;
    const cli = await probe(["ok"], ["-v", "--net", "host"]);
    expect(cli.code).toBe(0);
    expect(count(cli.stderr)).toBe(1);
    const p = file("net-host", { profile: "default", network: "host" });
    const both = await probe(["ok"], ["-v", "--policy", p, "--net", "host"]);
    expect(count(both.stderr)).toBe(1);
    // A file's host network turned off on the command line is no relaxation.
    const off = await probe(["ok"], ["-v", "--policy", p, "--net", "none"]);
    expect(off.stderr).toContain("relaxations: none");
  });

  test("-v lists no relaxation for a plain profile, and where the set-up's time went", async () => {
    const r = await probe(["ok"], ["-v"]);
    expect(r.stderr).toContain("relaxations: none");
    // Every phase reached; A's in order (released … caps, init), B's in order
    // (sandboxee, lookup), the two side by side; both execs last.
    const m = /set-up \(ms since the clone, at the end of each phase\): (.*)/.exec(r.stderr);
    const t = Object.fromEntries(m![1]!.split(", ").map((p) => p.split(" ")).map(([k, v]) => [k, Number(v)]));
    expect(Object.keys(t)).toEqual(["released", "ids", "mounts", "caps", "sandboxee", "lookup", "init", "exec"]);
    const inOrder = (xs: number[]) => xs.every((x, i) => x > 0 && (i === 0 || x >= xs[i - 1]!));
    expect(inOrder([t.released, t.ids, t.mounts, t.caps, t.init, t.exec])).toBe(true);
    expect(inOrder([t.caps, t.sandboxee, t.lookup, t.exec])).toBe(true);
  });
});
