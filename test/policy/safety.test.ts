/**
 * The always-on safety rules (src/policy/safety.ts) through real
 * programs on the real kernel: each attempt by the probe fixture must end as
 * a VIOLATION (159) naming the syscall, or get the errno the rules give it,
 * whatever the profile. A policy can turn a dangerous syscall into an errno,
 * but allowing it takes dangerAllowUnsafe(), which `run -v` lists.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { bunbox, DIR, HOST_ARCH, probe } from "../helpers.ts";

const json = (stderr: string) => JSON.parse(stderr.trim().split("\n").filter((l) => l.startsWith("{")).pop()!);

async function violation(mode: string[], syscall: string, kind = "SYSCALL", runOpts: string[] = []) {
  const r = await probe(mode, ["--json", ...runOpts]);
  expect(r.code).toBe(159);
  const res = json(r.stderr);
  expect(res.status).toBe("VIOLATION");
  expect(res.violation.kind).toBe(kind);
  expect(res.violation.syscall).toBe(syscall);
  return res;
}

describe("dangerous syscalls are violations under every profile", () => {
  test("ptrace, with its arguments", async () => {
    const res = await violation(["ptrace-args"], "ptrace");
    expect(res.violation.args.slice(0, 4)).toEqual(["0x4206", "0x1", "0xdead", "0xbeef"]);
    expect(res.violation.rule).toBe("safety rule");
  });
  test("io_uring_setup", () => violation(["io_uring"], "io_uring_setup"));
  test("bpf", () => violation(["bpf"], "bpf"));
  test("userfaultfd", () => violation(["userfaultfd"], "userfaultfd"));
  test("perf_event_open", () => violation(["perf"], "perf_event_open"));
  test("keyctl", () => violation(["keyctl"], "keyctl"));
  test("mount", () => violation(["mount"], "mount"));
  test("setns", () => violation(["setns"], "setns"));
  test("unshare of a namespace", () => violation(["unshare-user"], "unshare"));
  test("unshare(CLONE_NEWNET) too", () => violation(["unshare-net"], "unshare"));
  test("clone with a namespace flag", () => violation(["clone-newns"], "clone"));
  test("seccomp with a user-notification listener", () => violation(["seccomp-listener"], "seccomp"));
  test("TIOCSTI", () => violation(["tiocsti"], "ioctl"));
  test("TIOCSTI with the high 32 bits set (compared on the low 32)", async () => {
    const res = await violation(["tiocsti-high"], "ioctl");
    expect(res.violation.args[1]).toBe("0x100005412");
  });
  test("under the minimal-most profiles too", () => violation(["ptrace"], "ptrace", "SYSCALL", ["--profile", "shell"]));
});

/** Whether this machine lets int 0x80 through at all (some VMs fault it before any syscall). */
const ia32 = HOST_ARCH.name === "x86_64" && Bun.spawnSync([`${DIR}/probe`, "i386"]).exitCode === 0;

describe.if(HOST_ARCH.name === "x86_64")("foreign architectures", () => {
  // Where the kernel faults int 0x80 (no IA32 emulation, or a VM that
  // removes the gate), no syscall is made to filter; the interpreter tests in
  // compiler.test.ts cover the arch check itself.
  test.if(ia32)("i386 int 0x80 is an ARCH violation", async () => {
    const res = await violation(["i386"], "getpid", "ARCH");
    expect(res.violation.arch).toBe("i386");
  });
  test("x32 syscall numbers are an ARCH violation", async () => {
    const res = await violation(["x32"], "getpid (x32)", "ARCH");
    expect(res.violation.rule).toBe("x32 ABI");
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

describe("allowed where harmless", () => {
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

describe("a policy relaxes only by errno, or loudly", () => {
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
