/**
 * PolicyBuilder: sticky errors (build() lists every problem at once), a
 * builder builds once, syscalls by name or number, conflicts caught, every
 * Sandbox2 helper family allowing exactly its syscalls with its argument
 * checks — read through the interpreter against the compiled program.
 */
import { describe, expect, test } from "bun:test";
import { ARCHES } from "../../src/policy/arch.ts";
import { RET } from "../../src/policy/bpf.ts";
import { PolicyBuilder, PolicyError } from "../../src/policy/builder.ts";
import { FAMILIES, type FamilyName, FUTEX } from "../../src/policy/families.ts";
import { evaluate } from "../../src/policy/interpreter.ts";
import type { Policy } from "../../src/policy/policy.ts";
import { ALLOW, arg, errno, jeq, KILL, TRACE } from "../../src/policy/rules.ts";
import { DANGEROUS_SYSCALLS } from "../../src/policy/safety.ts";
import { profileBuilder } from "../../src/policy/profiles.ts";

const X = ARCHES.x86_64;

function verdict(p: Policy, name: string, args: (number | bigint)[] = []): string {
  const nr = p.arch.syscalls[name];
  if (nr === undefined) throw new Error(`no ${name} on ${p.arch.name}`);
  const ret = evaluate(p.filter(true).insns, { nr, arch: p.arch.audit, args: args.map(BigInt) }).ret >>> 0;
  const action = (ret & RET.ACTION_FULL) >>> 0;
  if (action === RET.ALLOW) return "allow";
  if (action === RET.ERRNO) return `errno ${ret & RET.DATA}`;
  return "kill";
}

function problems(b: PolicyBuilder): string[] {
  const r = b.tryBuild();
  return r.problems ?? [];
}

describe("sticky errors", () => {
  test("build() throws one PolicyError listing every problem", () => {
    const b = new PolicyBuilder({ arch: "x86_64" })
      .allowSyscall("opne")
      .blockSyscallWithErrno("read", "ENOPE")
      .addTmpfs("relative")
      .setHostname("bad host")
      .dangerAllowUnsafe("everything");
    let e: unknown;
    try {
      b.build();
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(PolicyError);
    const list = (e as PolicyError).problems;
    expect(list).toHaveLength(5);
    expect(list.join("\n")).toContain('unknown syscall "opne"');
    expect(list.join("\n")).toContain('"ENOPE" is not an errno');
    expect(list.join("\n")).toContain("relative: sandbox paths must be absolute");
    expect(list.join("\n")).toContain('"bad host" is not a hostname');
    expect(list.join("\n")).toContain('"everything" is not a safety rule');
  });

  test("a builder builds once", () => {
    const b = new PolicyBuilder().allowExit();
    b.build();
    expect(() => b.build()).toThrow("already built");
  });

  test("conflicting actions for one syscall are an error; the same one twice is not", () => {
    expect(problems(new PolicyBuilder().allowSyscall("read").allowSyscall("read"))).toEqual([]);
    expect(problems(new PolicyBuilder().allowSyscall("read").blockSyscallWithErrno("read", 1))[0]).toContain(
      "read is already ALLOW; it cannot also be errno(1)",
    );
  });

  test("an argument rule after an outright allow is unreachable, and said so", () => {
    const p = problems(new PolicyBuilder().allowSyscall("write").addPolicyOnSyscall("write", [arg(0), jeq(1, KILL)]));
    expect(p[0]).toContain("unreachable");
  });

  test("defaultAction(ALLOW) must be spelled dangerDefaultAllowAll()", () => {
    expect(problems(new PolicyBuilder().defaultAction(ALLOW))[0]).toContain("dangerDefaultAllowAll");
    const p = new PolicyBuilder().dangerDefaultAllowAll().build();
    expect(verdict(p, "getppid")).toBe("allow");
    expect(verdict(p, "ptrace")).toBe("kill");
    expect(p.relaxations.join()).toContain("dangerDefaultAllowAll");
  });

  test("syscalls by number too; numbers out of range are errors", () => {
    const p = new PolicyBuilder({ arch: "x86_64" }).allowSyscall(110).build();
    expect(verdict(p, "getppid")).toBe("allow");
    expect(problems(new PolicyBuilder().allowSyscall(-1))[0]).toContain("out of range");
  });

  test("errno by name or number; defaultAction errno and TRACE", () => {
    const p = new PolicyBuilder({ arch: "x86_64" }).blockSyscallWithErrno("open", "ENOENT").blockSyscallWithErrno("stat", 13).defaultAction(errno(1)).build();
    expect(verdict(p, "open")).toBe("errno 2");
    expect(verdict(p, "stat")).toBe("errno 13");
    expect(verdict(p, "getpid")).toBe("errno 1");
    const t = new PolicyBuilder().defaultAction(TRACE).build();
    expect(t.usesTrace()).toBe(true);
    // Read off the compiled filter: TRACE deep in an argument rule counts, an
    // errno or a kill does not, and a rule-less policy answers without its rules.
    const nested = new PolicyBuilder().addPolicyOnSyscall("write", [arg(0), jeq(1, TRACE), ALLOW]).build();
    expect(nested.usesTrace()).toBe(true);
    expect(new PolicyBuilder().addPolicyOnSyscall("write", [arg(0), jeq(1, KILL), errno(5)]).build().usesTrace()).toBe(false);
    expect(new PolicyBuilder().build().usesTrace()).toBe(false);
  });

  test("a dangerous syscall stays a violation when allowed plainly, an errno when blocked", () => {
    for (const name of DANGEROUS_SYSCALLS.filter((n) => n in X.syscalls)) {
      const allowed = new PolicyBuilder({ arch: "x86_64" }).allowSyscall(name).build();
      expect(`${name}:${verdict(allowed, name)}`).toBe(`${name}:kill`);
      const blocked = new PolicyBuilder({ arch: "x86_64" }).blockSyscallWithErrno(name, 1).build();
      expect(`${name}:${verdict(blocked, name)}`).toBe(`${name}:errno 1`);
      const relaxed = new PolicyBuilder({ arch: "x86_64" }).allowSyscall(name).dangerAllowUnsafe(name).build();
      expect(`${name}:${verdict(relaxed, name)}`).toBe(`${name}:allow`);
    }
  });

  test("unknown architecture", () => {
    expect(problems(new PolicyBuilder({ arch: "mips" as "x86_64" }))[0]).toContain('unknown architecture "mips"');
  });
});

describe("helper families", () => {
  const only = (name: FamilyName, arch: "x86_64" | "aarch64" = "x86_64") =>
    new PolicyBuilder({ arch }).allowFamily(name).build();

  test.each(Object.keys(FAMILIES) as FamilyName[])("%s allows its syscalls and nothing else", (name) => {
    for (const archName of ["x86_64", "aarch64"] as const) {
      const p = only(name, archName);
      const listed = new Set(
        (FAMILIES[name]() as readonly (string | readonly [string, unknown])[]).map((x) => (typeof x === "string" ? x : x[0])),
      );
      const present = [...listed].filter((s) => s in p.arch.syscalls);
      expect(present.length).toBeGreaterThan(0);
      for (const s of present) {
        // some argument combination must be allowed (or an errno for probes)
        expect(`${archName}:${s}:${p.rules.has(p.arch.syscalls[s]!)}`).toBe(`${archName}:${s}:true`);
      }
      for (const [other, nr] of Object.entries(p.arch.syscalls)) {
        if (!listed.has(other) && !p.rules.has(nr)) {
          expect(verdict(p, other)).not.toBe("allow");
        }
      }
    }
  });

  test("safeFcntl: F_GETFL yes, F_SETOWN (signals to others) no", () => {
    const p = only("safeFcntl");
    expect(verdict(p, "fcntl", [3, 3])).toBe("allow");
    expect(verdict(p, "fcntl", [3, 1030])).toBe("allow");
    expect(verdict(p, "fcntl", [3, 8])).toBe("kill"); // F_SETOWN
    expect(verdict(p, "fcntl", [3, 1024])).toBe("kill"); // F_SETLEASE
  });

  test("tcgets: TCGETS only", () => {
    const p = only("tcgets");
    expect(verdict(p, "ioctl", [0, 0x5401])).toBe("allow");
    expect(verdict(p, "ioctl", [0, 0x5413])).toBe("kill");
  });

  test("getRlimit: prlimit64 only without a new limit", () => {
    const p = only("getRlimit");
    expect(verdict(p, "prlimit64", [0, 7, 0, 0x7fff0000])).toBe("allow");
    expect(verdict(p, "prlimit64", [0, 7, 0x7fff0000, 0])).toBe("kill");
  });

  test("getRandom: no GRND_RANDOM", () => {
    const p = only("getRandom");
    expect(verdict(p, "getrandom", [0, 16, 1])).toBe("allow");
    expect(verdict(p, "getrandom", [0, 16, 2])).toBe("kill");
  });

  test("mmapWithoutExec: PROT_EXEC refused", () => {
    const p = only("mmapWithoutExec");
    expect(verdict(p, "mmap", [0, 4096, 3, 0x22])).toBe("allow");
    expect(verdict(p, "mmap", [0, 4096, 5, 0x22])).toBe("kill");
    expect(verdict(p, "mprotect", [0, 4096, 7])).toBe("kill");
  });

  test("mprotectWithoutExec: PROT_EXEC refused; mprotect: anything", () => {
    expect(verdict(only("mprotectWithoutExec"), "mprotect", [0, 4096, 1])).toBe("allow");
    expect(verdict(only("mprotectWithoutExec"), "mprotect", [0, 4096, 5])).toBe("kill");
    expect(verdict(only("mprotect"), "mprotect", [0, 4096, 7])).toBe("allow");
  });

  test("prctlSetName: PR_SET_NAME and PR_GET_NAME only", () => {
    const p = only("prctlSetName");
    expect(verdict(p, "prctl", [15])).toBe("allow");
    expect(verdict(p, "prctl", [16])).toBe("allow");
    expect(verdict(p, "prctl", [22])).toBe("kill"); // PR_SET_SECCOMP
  });

  test("futex: lock ops (private and clock flags) but not PI", () => {
    const p = only("futex");
    expect(verdict(p, "futex", [0, FUTEX.WAIT | 128])).toBe("allow");
    expect(verdict(p, "futex", [0, FUTEX.WAKE | 128 | 256])).toBe("allow");
    expect(verdict(p, "futex", [0, FUTEX.LOCK_PI])).toBe("kill");
    const pi = new PolicyBuilder().allowFutexOp(FUTEX.LOCK_PI).build();
    expect(verdict(pi, "futex", [0, FUTEX.LOCK_PI | 128])).toBe("allow");
  });

  test("staticStartup: arch_prctl probes of unknown ops get EINVAL, not a violation", () => {
    const p = only("staticStartup");
    expect(verdict(p, "arch_prctl", [0x1002])).toBe("allow");
    expect(verdict(p, "arch_prctl", [0x3001])).toBe("errno 22");
  });

  test("aarch64 has no open(): allowOpen uses openat there", () => {
    const p = only("open", "aarch64");
    expect(verdict(p, "openat")).toBe("allow");
    expect("open" in p.arch.syscalls).toBe(false);
  });
});

describe("filesystem and namespaces", () => {
  test("addFile/addDirectory/addTmpfs build on the default view", () => {
    const p = new PolicyBuilder().addDirectory("/var/lib", { writable: true }).addTmpfs("/scratch", { size: "8M" }).build();
    const d = p.mountPlan().describe().join("\n");
    expect(d).toContain("rw /var/lib");
    expect(d).toContain("tmpfs /scratch size=8388608");
    expect(d).toContain("ro /usr");
  });

  test("emptyFilesystem starts from nothing", () => {
    const p = new PolicyBuilder().emptyFilesystem().addFile("/etc/hostname").build();
    expect(p.mountPlan().describe()).toEqual(["ro /etc/hostname"]);
  });

  test("addFile takes files and addDirectory directories; a policy file's bind takes either", () => {
    expect(problems(new PolicyBuilder().addFile("/etc"))[0]).toBe("addFileAt(/etc): /etc is a directory: use addDirectory");
    expect(problems(new PolicyBuilder().addDirectoryAt("/etc/hostname", "/h"))[0]).toBe(
      "addDirectoryAt(/h): /etc/hostname is not a directory: use addFile",
    );
    expect(() => new PolicyBuilder().addPathAt("/etc/hostname", "/h").addPathAt("/var/lib", "/v").build()).not.toThrow();
  });

  test("addFile of a path the default view already shows adds nothing", () => {
    const p = new PolicyBuilder().addFile("/etc/localtime").build();
    expect(p.mountPlan().describe().filter((l) => l.includes("localtime"))).toEqual([]);
  });

  test("setNetwork, setUid, setGid are validated; host network is a relaxation", () => {
    expect(problems(new PolicyBuilder().setNetwork("wifi" as "host"))[0]).toContain('"wifi" is not one of');
    expect(problems(new PolicyBuilder().setUid(-1))[0]).toContain("bad uid");
    const p = new PolicyBuilder().setNetwork("host").setUid(1000).setGid(1000).build();
    expect(p.relaxations.join()).toContain("network host");
    expect([p.uid, p.gid]).toEqual([1000, 1000]);
  });

  test("relaxations are read off the policy, so a changed copy cannot keep a stale one", () => {
    const p = new PolicyBuilder().setNetwork("host").dangerAllowUnsafe("ptrace").dangerDefaultAllowAll().build();
    expect(p.relaxations).toEqual([
      "dangerDefaultAllowAll: every syscall not otherwise ruled is allowed",
      'dangerAllowUnsafe("ptrace"): a safety rule is off',
      "network host: the sandboxee shares the host's network",
    ]);
    expect(p.derive({ net: "none" }).relaxations).toEqual(p.relaxations.slice(0, 2));
    expect(new PolicyBuilder().build().derive({ net: "host" }).relaxations).toEqual([p.relaxations[2]!]);
  });

  test("where bunbox run starts the command is a setting (the build profile's), not read from the origin", () => {
    const work = `${process.env.BUNBOX_TEST_DIR}/work`;
    expect(profileBuilder("build", { cwd: work }).build().workdir).toBe(work);
    expect(profileBuilder("default", { cwd: work }).build().workdir).toBeUndefined();
    // The origin is for messages only.
    expect(new PolicyBuilder().setOrigin("profile build").build().workdir).toBeUndefined();
    expect(new PolicyBuilder().setWorkdir("/srv").build().derive({ hostname: "x" }).workdir).toBe("/srv");
    expect(problems(new PolicyBuilder().setWorkdir("relative"))[0]).toContain('setWorkdir: "relative" is not an absolute path');
  });
});
