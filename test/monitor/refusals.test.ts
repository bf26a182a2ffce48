/**
 * Calls outside the policy that do not end the run, through seccomp user
 * notification: `"onRefusal": "errno"` (the default profile: EPERM, ENOSYS
 * for a number the arch does not name, listed in the Result) and audit mode
 * (let through and listed); the safety rules stay violations in both. And
 * what every report now says of a call: its arguments by name, its paths
 * read from the waiting sandboxee's memory, the change that would allow it.
 */
import { describe, expect, test } from "bun:test";
import { closeSync, readSync, writeFileSync } from "node:fs";
import { TaskMemory } from "../../src/monitor/memory.ts";
import type { Notification } from "../../src/native/sys.ts";
import { PolicyBuilder } from "../../src/policy/builder.ts";
import { profilePolicy } from "../../src/policy/precompiled.ts";
import { REFUSE, TRACE } from "../../src/policy/rules.ts";
import { Executor } from "../../src/sandbox/executor.ts";
import { Sandbox } from "../../src/sandbox/sandbox.ts";
import { bunbox, DIR, FX, HOST_ARCH, runProbe, testPolicy } from "../helpers.ts";

const LEARNEE = `${FX}/learnee`;
/** The static build: no ld.so, so the static profile runs it up to the call under test. */
const LEARNEE_STATIC = `${FX}/learnee-static`;
const nr = (name: string) => String(HOST_ARCH.syscalls[name]);
const lastJson = (stderr: string) => JSON.parse(stderr.trim().split("\n").at(-1)!);

function run(argv: string[], policy = testPolicy("default"), options: { notify?: boolean } = {}) {
  return new Sandbox(new Executor(argv[0]!, argv), policy, {}, options).run();
}

describe('"onRefusal": "errno" (the default profile)', () => {
  test("chroot fails with EPERM, the program goes on, and the Result lists the call with its path", async () => {
    const r = await bunbox(["run", "--json", "--", "python3", "-c", 'import os\ntry: os.chroot("/tmp")\nexcept PermissionError as e: print("EPERM", e.errno)']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("EPERM 1\n");
    const refused = lastJson(r.stderr).refused;
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ syscall: "chroot", decoded: 'chroot("/tmp")', answer: "EPERM", count: 1, pid: 2, suggestion: { policy: { allow: ["chroot"] } } });
    expect(refused[0].ipMapping).toMatch(/^libc\.so\.6\+0x/);
    expect(r.stderr).toContain("bunbox: refused 1 call outside the policy (EPERM or ENOSYS), the run went on: chroot; -v or --json lists them");
  });

  test("the refused call does not run: a socket() the kernel would give is EPERM instead", async () => {
    const file = `${DIR}/work/refuse-socket-${process.pid}.json`;
    writeFileSync(file, JSON.stringify({ profile: "dynamic", onRefusal: "errno" }));
    const r = await bunbox(["run", "--policy", file, "--", LEARNEE, "socket", "2", "1"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("socket: -1 EPERM\n");
  });

  test("a number the arch does not name gets ENOSYS, so that libc falls back", async () => {
    const r = await runProbe(["syscall", "1000"]);
    expect(r.status).toBe("OK");
    expect(r.refused).toMatchObject([{ syscall: "syscall 1000", nr: 1000, answer: "ENOSYS", suggestion: { policy: { allow: [1000] } } }]);
  });

  test("alike calls are one entry with a count; different argument values are different entries", async () => {
    // shell's rules (which have no socket()), refusing instead of killing.
    const tight = testPolicy("dynamic").derive({ defaultAction: REFUSE });
    const t = await run([LEARNEE, "sockets", "2:1", "2:1", "2:1", "10:1"], tight);
    expect(t.status).toBe("OK");
    expect(t.refused.map((x) => [x.decoded, x.count])).toEqual([
      ["socket(AF_INET, SOCK_STREAM, 0)", 3],
      ["socket(AF_INET6, SOCK_STREAM, 0)", 1],
    ]);
  });

  test("a safety-list call is still a violation", async () => {
    const r = await runProbe(["ptrace"]);
    expect(r.status).toBe("VIOLATION");
    expect(r.violation!.rule).toBe("safety rule");
    expect(r.violation!.suggestion).toEqual({ policy: { dangerAllowUnsafe: ["ptrace"] }, safety: 'dangerAllowUnsafe("ptrace") turns a safety rule off' });
  });

  test("without user notification the filter answers EPERM itself (nothing to list)", async () => {
    const r = await run([`${FX}/probe`, "syscall", nr("chroot"), "0"], testPolicy("default"), { notify: false });
    expect(r.status).toBe("OK");
    expect(r.refused).toEqual([]);
  });

  test("policy files choose: onRefusal kill on the default profile makes the same call a violation", async () => {
    const file = `${DIR}/work/onrefusal-${process.pid}.json`;
    writeFileSync(file, JSON.stringify({ profile: "default", onRefusal: "kill" }));
    const r = await bunbox(["run", "--policy", file, "--", `${FX}/probe`, "syscall", nr("chroot"), "0"]);
    expect(r.code).toBe(159);
    expect(r.stderr).toContain("VIOLATION: chroot(");
    const v = await bunbox(["run", "-v", "--", "/bin/true"]);
    expect(v.stderr).toContain("refusals fail with EPERM/ENOSYS and are listed (onRefusal errno)");
    const e = await bunbox(["policy", "explain", "--profile", "default"], { bare: true });
    expect(e.stdout).toContain("default action refuse (onRefusal errno");
  });
});

describe("audit mode", () => {
  test("calls the policy refuses run and are listed, the run ends OK; -v names the relaxation", async () => {
    const r = await bunbox(["run", "--profile", "dynamic", "--audit", "-v", "--json", "--", LEARNEE, "socket", "2", "1"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("socket: 3\n");
    expect(r.stderr).toContain("relaxation: audit: calls the policy refuses run anyway and are recorded; only the safety rules are enforced");
    expect(r.stderr).toContain("audit: calls the policy would refuse, let through: 1");
    expect(r.stderr).toMatch(/socket\(AF_INET, SOCK_STREAM, 0\) → allowed \(audit\) at libc\.so\.6\+0x[0-9a-f]+; to allow: "allowIf": \{"socket":\[\{"family":"AF_INET","type":"SOCK_STREAM","protocol":0\}\]\}/);
    expect(lastJson(r.stderr).refused).toMatchObject([{ syscall: "socket", answer: "allowed (audit)", count: 1 }]);
  });

  test("a safety-list call is still refused: a violation", async () => {
    const r = await bunbox(["run", "--profile", "shell", "--audit", "--", `${FX}/probe`, "ptrace"]);
    expect(r.code).toBe(159);
    expect(r.stderr).toContain("(safety rule)");
  });

  test('"audit": true in a policy file; audit without user notification is refused, not silently enforcing', async () => {
    const file = `${DIR}/work/audit-${process.pid}.json`;
    writeFileSync(file, JSON.stringify({ profile: "dynamic", audit: true }));
    const r = await bunbox(["run", "--policy", file, "--", LEARNEE, "socket", "2", "1"]);
    expect(r.code).toBe(0);
    const policy = new PolicyBuilder().allowExit().setAudit().build();
    expect(() => new Sandbox(new Executor("/bin/true"), policy, {}, { notify: false }).runAsync()).toThrow(/audit mode needs seccomp user notification/);
  });
});

describe("decoded calls", () => {
  const tight = () => testPolicy("static", (b) => b.allowIf("openat", { flags: { subsetOf: "O_RDONLY|O_CLOEXEC" } }));

  test("a path is read from the waiting sandboxee, flags by name, and the suggestion allows the next run", async () => {
    const v = await run([LEARNEE_STATIC, "create", "/tmp/out"], tight());
    expect(v.status).toBe("VIOLATION");
    expect(v.violation!.decoded).toBe('openat(AT_FDCWD, "/tmp/out", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 420)');
    expect(v.toString()).toContain('VIOLATION: openat(AT_FDCWD, "/tmp/out", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 420) [');
    expect(v.violation!.suggestion!.policy).toEqual({ allowIf: { openat: [{ flags: "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC" }] } });
    const fixed = testPolicy("static", (b) =>
      b.allowIf("openat", [{ flags: { subsetOf: "O_RDONLY|O_CLOEXEC" } }, { flags: "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC" }]),
    );
    const again = await run([LEARNEE_STATIC, "create", "/tmp/out"], fixed);
    expect(again.status).toBe("OK");
  });

  test("a path is read up to an unmapped page, and across into a mapped one; one that never ends is cut at 4096 bytes and marked", async () => {
    const long = `/tmp/${"d".repeat(40)}/file`;
    for (const mode of ["page-end", "page-cross"]) {
      const a = await run([LEARNEE_STATIC, mode, long], testPolicy("static"));
      expect(a.violation?.decoded).toBe(`openat(AT_FDCWD, "${long}", O_RDONLY|O_CLOEXEC, 0)`);
    }
    const b = await run([LEARNEE_STATIC, "unterminated"], testPolicy("static"));
    const m = /^openat\(AT_FDCWD, "(\/a+)…", O_RDONLY\|O_CLOEXEC, 0\)$/.exec(b.violation!.decoded!);
    expect(m?.[1]).toHaveLength(4096);
  });

  test("a path with control characters is kept exact in the Result and shown escaped", async () => {
    const v = await run([LEARNEE_STATIC, "create", "/tmp/a\x1b[2Kb\nc"], testPolicy("static"));
    expect(v.violation!.decoded).toContain('"/tmp/a\x1b[2Kb\nc"');
    expect(v.toString()).toContain('"/tmp/a\\x1b[2Kb\\nc"');
  });

  test("memory is read only while the notification is pending: once answered, nothing (the pid may be another process's)", async () => {
    let first: { n: Notification; memory: TaskMemory } | undefined;
    const seen: (string | undefined)[] = [];
    const policy = testPolicy("dynamic", (b) => b.addPolicyOnSyscall("openat", [TRACE]));
    const r = await new Sandbox(new Executor(LEARNEE, [LEARNEE, "open", "/etc/hostname"]), policy, {
      onRecord(n, memory) {
        if (n.nr !== HOST_ARCH.syscalls.openat) return;
        if (!first) {
          first = { n, memory };
          seen.push(memory.string(n.args[1]!));
        } else if (seen.length === 1) {
          // The same task, alive and waiting again, its memory unchanged: but the first notification was answered.
          seen.push(first.memory.string(first.n.args[1]!), memory.string(n.args[1]!));
        }
      },
    }).run();
    expect(r.status).toBe("OK");
    expect(seen[0]).toBe("/etc/ld.so.cache");
    expect(seen[1]).toBeUndefined();
    expect(seen[2]).toMatch(/^\/lib\/x86_64-linux-gnu\/|^\/lib\/aarch64-linux-gnu\/|libc\.so\.6$/);
  });

  test("a signal that comes after the monitor took the call does not cut it short (WAIT_KILLABLE_RECV, Linux 5.19)", async () => {
    // The hook answers 300 ms late; SIGUSR1 (a handler without SA_RESTART) comes after 100 ms.
    const policy = testPolicy("dynamic", (b) => b.addPolicyOnSyscall("getppid", [TRACE]).allowSyscalls(["rt_sigreturn"]));
    const stdout = new Executor(LEARNEE, [LEARNEE, "usr1-getppid"]);
    const out = stdout.ipc.receiveFd(1);
    const sandbox = new Sandbox(stdout, policy, {
      onSyscall: () => new Promise((resolve) => setTimeout(() => resolve("allow"), 300)),
    });
    setTimeout(() => sandbox.signal(10), 100);
    const r = await sandbox.run();
    expect(r.toString()).toBe("OK: exit code 0");
    const buf = Buffer.alloc(256);
    const n = readSync(out, buf);
    closeSync(out);
    // Without the flag: "getppid: -1 EINTR".
    expect(buf.subarray(0, n).toString()).toBe("getppid: 1\nusr1: 1\n");
  });

  test("the default profile's policy is what the executable precompiles (its default action included)", () => {
    expect(profilePolicy("default", "/").onRefusal).toBe("errno");
    expect(profilePolicy("shell", "/").onRefusal).toBe("kill");
  });
});
