/**
 * The library API in-process: Executor, PolicyBuilder, Sandbox.run(), the
 * Result, many sandboxes at once from one Bun process (the spawn shim shares
 * Bun's address space with CLONE_VM and never copies it).
 */
import { describe, expect, test } from "bun:test";
import { closeSync, readFileSync, readSync } from "node:fs";
import { Executor, PolicyBuilder, Sandbox } from "../../src/index.ts";
import { DEFAULT_PATH } from "../../src/sandbox/executor.ts";
import { UsageError } from "../../src/errors.ts";
import { MountPlan } from "../../src/sandbox/mounts.ts";
import { BUNBOX, describeModes, DIR, FX, runProbe, runProbeOutput, testPolicy } from "../helpers.ts";

describeModes("Sandbox.run", () => {
  test("/bin/cat runs under a Sandbox2-style policy from the PolicyBuilder", async () => {
    const policy = new PolicyBuilder()
      .allowDynamicStartup().allowRead().allowWrite().allowExit().allowSystemMalloc()
      .allowAvailableSyscalls(["fadvise64", "close"])
      .addFile("/etc/localtime").addTmpfs("/tmp", { size: "16M" })
      .build();
    const executor = new Executor("/bin/cat", ["cat", "/etc/hostname"], { limits: { wallTimeMs: 2000 } });
    // stdout is a socket here: with a regular file, cat would try copy_file_range.
    const out = executor.ipc.receiveFd(1);
    const result = await new Sandbox(executor, policy).run();
    expect(result.toString()).toBe("OK: exit code 0");
    expect(result.code).toBe(0);
    expect(readAll(out)).toBe(readFileSync("/etc/hostname", "utf8"));
  });

  test("exit codes and signals become Results", async () => {
    const ok = await runProbe(["exit", "5"]);
    expect(ok.status).toBe("OK");
    expect(ok.exitCode).toBe(5);
    const sig = await runProbe(["signal", "9"]);
    expect(sig.status).toBe("SIGNALED");
    expect(sig.signal).toBe(9);
    expect(sig.code).toBe(137);
  });

  test("30 concurrent runs each get their own Result", async () => {
    const runs = Array.from({ length: 30 }, (_, i) => runProbe(["exit", String(i)]));
    const results = await Promise.all(runs);
    results.forEach((r, i) => {
      expect(r.status).toBe("OK");
      expect(r.exitCode).toBe(i);
    });
  });

  test("a second run() of the same Sandbox is refused", async () => {
    const s = new Sandbox(new Executor("/bin/true"), testPolicy());
    await s.run();
    expect(() => s.runAsync()).toThrow("already been started");
  });

  test("the environment is only PATH unless the executor says otherwise", async () => {
    const { stdout } = await runProbeOutput(["env"]);
    expect(stdout).toBe(`PATH=${DEFAULT_PATH}\n`);
  });

  test("a read-only tmpfs is read-only", async () => {
    const base = testPolicy();
    const plan = base.mountPlan();
    plan.add({ kind: "tmpfs", dst: "/ro", size: 65536, ro: true });
    const { stdout } = await runProbeOutput(["write", "/ro/x", "1"], { policy: base.derive({ mounts: plan }) });
    expect(stdout).toBe("write: -1 EROFS\n");
  });

  test("toJSON is stable and carries rusage", async () => {
    // The hog touches every page it allocates (the probe's memset of an unused malloc is optimised away).
    const r = await new Sandbox(new Executor(`${FX}/hog`, [`${FX}/hog`, "alloc", "32"]), testPolicy()).run();
    const j = r.toJSON();
    expect(Object.keys(j)).toEqual(["status", "reason", "code", "exitCode", "rusage", "wallTimeMs", "pid", "containment"]);
    // The sandbox's peak memory, from its cgroup (null where none can be made).
    const peak = (j.rusage as { maxRssKb: number | null }).maxRssKb;
    if (peak !== null) expect(peak).toBeGreaterThan(32 * 1024);
  });
});

describe("stdio", () => {
  test("20 MB through stdin and stdout arrive intact", async () => {
    const data = new Uint8Array(20 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
    const proc = Bun.spawn([BUNBOX, "run", "--ro", `${DIR}:${FX}`, "--", `${FX}/probe`, "cat"], {
      stdin: new Blob([data]),
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, code] = await Promise.all([new Response(proc.stdout).arrayBuffer(), proc.exited]);
    expect(code).toBe(0);
    const hash = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("hex");
    expect(out.byteLength).toBe(data.length);
    expect(hash(new Uint8Array(out))).toBe(hash(data));
  });
});

describe("validation", () => {
  test("executor input errors name the field", () => {
    expect(() => new Executor("")).toThrow(UsageError);
    expect(() => new Executor("/bin/x", [])).toThrow("argv");
    expect(() => new Executor("/bin/x", ["x\0y"])).toThrow("NUL");
    expect(() => new Executor("/bin/x", ["x"], { cwd: "relative" })).toThrow("cwd");
    expect(() => new Executor("/bin/x", ["x"], { env: { "A=B": "1" } })).toThrow("env");
    expect(() => new Executor("/bin/x", ["x"], { limits: { openFiles: -1 } })).toThrow("limits.openFiles");
    const ex = new Executor("/bin/x", ["x"]);
    expect(() => ex.ipc.mapFd(1, 1 << 20)).toThrow("mapFd targetFd: fd 1048576 is out of range (0..65535)");
    expect(() => ex.ipc.mapFd(98765, 5)).toThrow("mapFd hostFd: fd 98765 is not open in this process");
    expect(() => ex.ipc.mapFd(1, 65535)).not.toThrow();
  });

  test("mount plan errors name the path", () => {
    const p = new MountPlan();
    expect(() => p.add({ kind: "bind", src: "/no/such", dst: "/x", rw: false })).toThrow("/no/such does not exist");
    expect(() => p.add({ kind: "bind", src: "rel", dst: "/x", rw: false })).toThrow("must be absolute");
    expect(() => p.add({ kind: "bind", src: "/etc", dst: "x", rw: false })).toThrow("must be absolute");
    expect(() => p.add({ kind: "bind", src: "/etc", dst: "/a/../b", rw: false })).toThrow('".."');
    expect(() => p.add({ kind: "tmpfs", dst: "/a\0b" })).toThrow("NUL");
  });
});

/** Reads a socket to EOF and closes it. */
function readAll(fd: number): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (let n; (n = readSync(fd, buf)) > 0; ) chunks.push(Buffer.from(buf.subarray(0, n)));
  closeSync(fd);
  return Buffer.concat(chunks).toString();
}
