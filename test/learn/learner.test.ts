/**
 * The Learner (src/learn/learner.ts) on the real kernel: every call of every
 * thread and child recorded through seccomp user notification, the learned
 * policy refusing what the runs did not do, --merge allowing what either
 * did, the safety rules kept, the essential calls added.
 */
import { describe, expect, test } from "bun:test";
import { ESSENTIAL } from "../../src/learn/derive.ts";
import { Learner, learn } from "../../src/learn/learner.ts";
import { mergeObservations, readObservations } from "../../src/learn/observations.ts";
import { MAX_VARIANTS } from "../../src/learn/recorder.ts";
import { PolicyBuilder } from "../../src/policy/builder.ts";
import { policyFromJson } from "../../src/policy/file.ts";
import { Executor } from "../../src/sandbox/executor.ts";
import { Sandbox } from "../../src/sandbox/sandbox.ts";
import { FX, testPolicy } from "../helpers.ts";

const LEARNEE = `${FX}/learnee`;
const ex = (...argv: string[]) => new Executor(argv[0]!, argv);

describe("recording", () => {
  test("every thread's calls are recorded", async () => {
    const l = new Learner({ policy: testPolicy() });
    const r = await l.run(ex(LEARNEE, "threads", "5"));
    expect(r.result.toString()).toBe("OK: exit code 0");
    const s = l.observations.syscalls;
    // Each of the 5 threads calls getppid once; nothing else in the program does.
    expect(s.getppid!.count).toBe(5);
    const clone = s.clone!.variants!.map((v) => v.args.clone_flags as string);
    expect(clone.some((f) => f.split("|").includes("CLONE_THREAD"))).toBe(true);
    expect(s.getppid!.first).toMatch(/^libc\.so\.6\+0x/);
  });

  test("a child's calls are recorded, and the exec of another program too", async () => {
    const l = new Learner({ policy: testPolicy() });
    await l.run(ex(LEARNEE, "fork"));
    expect(l.observations.syscalls.getppid!.count).toBe(1);
    expect(l.observations.syscalls.wait4).toBeDefined();
    // sh calls getppid itself: the program it runs adds one per thread.
    const shOnly = new Learner({ policy: testPolicy() });
    await shOnly.run(ex("/bin/sh", "-c", "/bin/true; true"));
    const sh = new Learner({ policy: testPolicy() });
    await sh.run(ex("/bin/sh", "-c", `${LEARNEE} threads 3; true`));
    expect(sh.observations.syscalls.getppid!.count - (shOnly.observations.syscalls.getppid?.count ?? 0)).toBe(3);
    expect(sh.observations.paths[LEARNEE]!.ops).toContain("exec");
  });

  test("paths: made absolute from the cwd, with what was done to them", async () => {
    const l = new Learner({ policy: testPolicy() });
    const e = new Executor(LEARNEE, [LEARNEE, "create", "out.txt"], { cwd: "/tmp" });
    await l.run(e);
    expect(l.observations.paths["/tmp/out.txt"]!.ops).toEqual(["change"]);
    expect(l.observations.paths["/etc/ld.so.cache"]!.ops).toEqual(["read"]);
    // What the exec itself needed, with no syscall for the filter to see: the program and its ld.so.
    expect(l.observations.paths[LEARNEE]!.ops).toEqual(["exec"]);
    expect(Object.keys(l.observations.paths).some((p) => /ld-linux/.test(p))).toBe(true);
  });

  test("the learning run behaves as a plain one (same output, same ending)", async () => {
    const plain = await new Sandbox(ex("/bin/sh", "-c", "echo $$; ls / | wc -l; exit 3"), testPolicy()).run();
    const l = await new Learner({ policy: testPolicy() }).run(ex("/bin/sh", "-c", "echo $$; ls / | wc -l; exit 3"));
    expect(l.result.status).toBe(plain.status);
    expect(l.result.exitCode).toBe(3);
  });
});

describe("the learned policy", () => {
  test("passes the run it was learned from, on an empty root, and refuses another behaviour of the same program", async () => {
    const { result, file, policy } = await learn(ex(LEARNEE, "socket", "1", "1"), { policy: testPolicy() });
    expect(result.ok).toBe(true);
    expect(file.allowIf).toMatchObject({ socket: [{ family: "AF_UNIX", type: "SOCK_STREAM", protocol: 0 }] });
    expect((file.filesystem as { base: string }).base).toBe("empty");
    const again = await new Sandbox(ex(LEARNEE, "socket", "1", "1"), policy).run();
    expect(again.toString()).toBe("OK: exit code 0");
    const other = await new Sandbox(ex(LEARNEE, "socket", "2", "1"), policy).run();
    expect(other.status).toBe("VIOLATION");
    expect(other.violation!.decoded).toBe("socket(AF_INET, SOCK_STREAM, 0)");
  });

  test("holds the calls every run may need, seen or not", async () => {
    const { file } = await learn(ex(LEARNEE, "threads", "2"), { policy: testPolicy() });
    for (const name of ESSENTIAL) expect(file.allow).toContain(name);
    // Whether a lock was contended is timing: a program seen using futex gets the lock operations, contended or not.
    const ops = (file.allowIf as Record<string, { op: string[] }[]>).futex![0]!.op;
    for (const op of ["FUTEX_WAIT|FUTEX_PRIVATE_FLAG", "FUTEX_WAKE|FUTEX_PRIVATE_FLAG", "FUTEX_WAIT_BITSET|FUTEX_PRIVATE_FLAG|FUTEX_CLOCK_REALTIME"]) expect(ops).toContain(op);
    expect(ops).not.toContain("FUTEX_LOCK_PI");
    // clone3 stays the safety rule's ENOSYS: nothing learned for it.
    expect(JSON.stringify(file.allow)).not.toContain("clone3");
  });

  test("merge: two runs, a policy that allows both, and still not a third", async () => {
    const l = new Learner({ policy: testPolicy() });
    await l.run(ex(LEARNEE, "socket", "1", "1"));
    await l.run(ex(LEARNEE, "socket", "10", "2"));
    const policy = l.policy();
    for (const [f, t] of [["1", "1"], ["10", "2"]]) {
      expect((await new Sandbox(ex(LEARNEE, "socket", f!, t!), policy).run()).status).toBe("OK");
    }
    expect((await new Sandbox(ex(LEARNEE, "socket", "10", "1"), policy).run()).status).toBe("VIOLATION");
    expect(l.observations.syscalls.socket!.runs).toEqual([1, 2]);
    // The same through the notes a file keeps: a learner started from them adds a third run.
    const again = new Learner({ policy: testPolicy(), merge: readObservations(JSON.parse(JSON.stringify(l.policyFile())), "p.json") });
    await again.run(ex(LEARNEE, "socket", "2", "2"));
    expect(again.observations.runs).toHaveLength(3);
    expect(again.policyFile().allowIf).toMatchObject({
      socket: [
        { family: "AF_INET", type: "SOCK_DGRAM", protocol: 0 },
        { family: "AF_INET6", type: "SOCK_DGRAM", protocol: 0 },
        { family: "AF_UNIX", type: "SOCK_STREAM", protocol: 0 },
      ],
    });
  });

  test("a safety-list call ends the learning run, is reported, and is not learned", async () => {
    const l = new Learner({ policy: testPolicy() });
    const r = await l.run(ex(`${FX}/probe`, "ptrace"));
    expect(r.result.status).toBe("VIOLATION");
    expect(l.observations.safety).toEqual([{ run: 1, call: "ptrace(0, 0, 0, 0)", rule: "safety rule", relax: "ptrace" }]);
    expect(l.policyFile().allow).not.toContain("ptrace");
    expect(l.policyFile().dangerAllowUnsafe).toBeUndefined();
  });

  test("unless the learning sandbox relaxes that rule: then the learned policy relaxes it too", async () => {
    const relaxed = testPolicy("default", (b) => b.dangerAllowUnsafe("ptrace"));
    const l = new Learner({ policy: relaxed });
    const r = await l.run(ex(`${FX}/probe`, "ptrace"));
    expect(r.result.status).toBe("OK");
    const file = l.policyFile();
    expect(file.dangerAllowUnsafe).toEqual(["ptrace"]);
    expect(file.allow).toContain("ptrace");
    expect(policyFromJson(file, "p.json").relaxations).toEqual([`dangerAllowUnsafe("ptrace"): a safety rule is off`]);
  });

  test("onRefusal errno: a call outside it fails and is listed instead of ending the run", async () => {
    const { policy } = await learn(ex(LEARNEE, "socket", "1", "1"), { policy: testPolicy(), onRefusal: "errno" });
    const r = await new Sandbox(ex(LEARNEE, "socket", "2", "1"), policy).run();
    expect(r.status).toBe("OK");
    expect(r.refused).toMatchObject([{ decoded: "socket(AF_INET, SOCK_STREAM, 0)", answer: "EPERM" }]);
  });

  test("the learned policy is tighter than default", async () => {
    const { policy } = await learn(ex(LEARNEE, "threads", "2"), { policy: testPolicy() });
    const def = testPolicy();
    expect(policy.rules.size).toBeLessThan(def.rules.size / 3);
  });

  test("observations merge: counts add up, runs renumber, and the files are a function of the notes", () => {
    const a = { learnedBy: "bunbox learn", version: 1, arch: "x86_64", runs: [{ command: ["a"], result: "OK" }], safety: [],
      syscalls: { read: { count: 2, runs: [1] } }, paths: { "/x": { ops: ["read"], count: 1, runs: [1] } } } as const;
    const b = { ...a, runs: [{ command: ["b"], result: "OK" }], syscalls: { read: { count: 3, runs: [1] }, write: { count: 1, runs: [1] } },
      paths: { "/x": { ops: ["write"], count: 1, runs: [1] } } } as const;
    const m = mergeObservations(structuredClone(a) as never, structuredClone(b) as never);
    expect(m.syscalls.read).toEqual({ count: 5, runs: [1, 2] });
    expect(m.syscalls.write).toEqual({ count: 1, runs: [2] });
    expect(m.paths["/x"]).toEqual({ ops: ["read", "write"], count: 2, runs: [1, 2] });
    expect(() => readObservations({ allow: [] }, "hand.json")).toThrow(/hand\.json: not a policy bunbox learn wrote/);
  });

  test("a program making endless distinct calls cannot grow the learner without bound: what is past the bound is said", async () => {
    const l = new Learner({ policy: testPolicy() });
    const r = await l.run(ex(LEARNEE, "ioctls", String(MAX_VARIANTS + 100)));
    expect(r.result.ok).toBe(true);
    expect(l.observations.syscalls.ioctl!.variants).toHaveLength(MAX_VARIANTS);
    expect(r.problems).toContain(`more than ${MAX_VARIANTS} distinct argument values of one syscall: the rest are not learned`);
  });

  test("PolicyBuilder takes the portable form the TS output uses", () => {
    const p = new PolicyBuilder().allowPortable(["read"], { ioctl: { cmd: "TCGETS" } }).build();
    expect(p.rules.size).toBe(2);
  });
});
