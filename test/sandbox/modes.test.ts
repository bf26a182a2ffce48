/**
 * IPC and the three executor modes of Sandbox2, on the real kernel:
 * fds mapped to exact numbers and found by name, receiveFd socketpairs,
 * "sandbox me here" (no filter at execve; the program applies its policy,
 * bunbox takes the seccomp listener through the sandboxee's pidfd), and the
 * fork server (prepared once, each run a fresh sandboxed child).
 */
import { describe, expect, test } from "bun:test";
import { openSync, readdirSync, readFileSync, closeSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Executor } from "../../src/sandbox/executor.ts";
import { ForkServer } from "../../src/sandbox/fork-server.ts";
import { Sandbox } from "../../src/sandbox/sandbox.ts";
import { DIR, eventually, FX, HOST_ARCH, PROBE, testPolicy } from "../helpers.ts";

const MODES = `${FX}/modes`;
const root = resolve(import.meta.dir, "../..");

describe("IPC", () => {
  test("mapFd lands on exactly the requested numbers, and names are found", async () => {
    const a = openSync("/etc/hostname", "r");
    const ex = new Executor(PROBE, [PROBE, "fds"]);
    const out = ex.ipc.receiveFd(1);
    ex.ipc.mapFd(a, 812).mapFd(a, 1022, "config");
    const r = await new Sandbox(ex, testPolicy()).run();
    closeSync(a);
    expect(r.status).toBe("OK");
    const fds = readAll(out).trim().split("\n").sort();
    expect(fds).toEqual(["0", "1", "1022", "2", "812"]);
  });

  test("a named fd: the sandboxee writes to receiveFd(…, name) by name", async () => {
    const ex = new Executor(MODES, [MODES, "named", "results", "hello host"]);
    const fd = ex.ipc.receiveFd(900, "results");
    const r = await new Sandbox(ex, testPolicy()).run();
    expect(r.status).toBe("OK");
    expect(readAll(fd)).toBe("hello host");
  });
});

/** Reads a socket to EOF (the sandboxee's end is closed when it exits). */
function readAll(fd: number): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    let n = 0;
    try {
      n = require("node:fs").readSync(fd, buf) as number;
    } catch {
      break;
    }
    if (n <= 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  closeSync(fd);
  return Buffer.concat(chunks).toString();
}

describe("sandbox me here", () => {
  const policy = () => testPolicy("static", (b) => b.allowComms());

  function meHere(action: string[]) {
    const ex = new Executor(MODES, [MODES, "me-here", ...action], { sandboxBeforeExec: false });
    const out = ex.ipc.receiveFd(1);
    return { sandbox: new Sandbox(ex, policy()), out };
  }

  test("allowed before the call (reading a file), the policy after it (output still works)", async () => {
    const { sandbox, out } = meHere(["ok"]);
    const r = await sandbox.run();
    expect(r.toString()).toBe("OK: exit code 0");
    expect(readAll(out)).toBe("sandboxed\n");
  });

  test("a syscall forbidden after the call is a VIOLATION", async () => {
    const { sandbox, out } = meHere(["open", "/etc/hostname"]);
    const r = await sandbox.run();
    expect(r.status).toBe("VIOLATION");
    expect(r.violation!.syscall).toMatch(/^open/);
    readAll(out);
  });

  test("the sandboxee keeps no copy of its listener (it could answer its own notifications)", async () => {
    const ex = new Executor(MODES, [MODES, "me-here", "scan-fds"], { sandboxBeforeExec: false });
    const out = ex.ipc.receiveFd(1);
    const r = await new Sandbox(ex, testPolicy("default")).run();
    expect(r.status).toBe("OK");
    expect(readAll(out)).toBe("no listener\n");
  });

  test("ready() resolves once the policy is in", async () => {
    const { sandbox, out } = meHere(["ok"]);
    sandbox.runAsync();
    await sandbox.ready();
    expect((await sandbox.awaitResult()).status).toBe("OK");
    readAll(out);
  });

  test("ending without applying the policy is a SETUP_ERROR", async () => {
    const ex = new Executor(MODES, [MODES, "me-here-skip"], { sandboxBeforeExec: false });
    const r = await new Sandbox(ex, policy()).run();
    expect(r.status).toBe("SETUP_ERROR");
    expect(r.setup!.stage).toBe("sandbox-me-here");
    expect(r.code).toBe(125);
  });

  test("a Bun program applies its policy with sandboxMeHere() (TSYNC on every Bun thread)", async () => {
    const script = join(DIR, "work", `me-here-${process.pid}.ts`);
    writeFileSync(
      script,
      `import { ClientComms, sandboxMeHere } from "/bunbox-src/comms/client.ts";\n` +
        `import { libc } from "/bunbox-src/comms/libc.ts";\n` +
        `const comms = ClientComms.open();\n` +
        `const before = require("node:fs").readFileSync("/etc/hostname", "utf8").length > 0;\n` +
        `sandboxMeHere(comms);\n` +
        `comms.sendJson({ before, after: "sandboxed" });\n` +
        `if (process.argv[2] === "violate") libc().syscall(${HOST_ARCH.syscalls.ptrace}, 0, 0, 0, 0, 0, 0);\n`,
    );
    for (const [arg, expected] of [["stay", "OK"], ["violate", "VIOLATION"]] as const) {
      const ex = new Executor(process.execPath, [process.execPath, `${FX}/work/${script.split("/").pop()}`, arg], { sandboxBeforeExec: false });
      const comms = ex.ipc.comms();
      const p = testPolicy("default", (b) => b.addDirectoryAt(join(root, "src"), "/bunbox-src").addFile(process.execPath));
      const s = new Sandbox(ex, p);
      s.runAsync();
      await s.ready();
      expect(await comms.recvJson()).toEqual({ before: true, after: "sandboxed" });
      const r = await s.awaitResult();
      expect(r.status).toBe(expected);
    }
  }, 30_000);
});

describe("fork server", () => {
  const childPolicy = () => testPolicy("static", (b) => b.allowComms().allowGetPids());

  async function server() {
    return ForkServer.start(new Executor(MODES, [MODES, "fork-server"]), testPolicy());
  }

  test("each run is a fresh child of the prepared program, with its own comms and Result", async () => {
    const s = await server();
    try {
      const sandbox = new Sandbox(s.executor(), childPolicy());
      sandbox.runAsync();
      await sandbox.ready();
      const comms = sandbox.comms!;
      await comms.sendString("square 12");
      expect(await comms.recvString()).toMatch(/^144 \(table 500500, pid \d+\)$/);
      await comms.sendString("exit 7");
      const r = await sandbox.awaitResult();
      expect(r.status).toBe("OK");
      expect(r.exitCode).toBe(7);
    } finally {
      s.close();
    }
  });

  test("a child's violation is its own VIOLATION; the server goes on", async () => {
    const s = await server();
    try {
      const bad = new Sandbox(s.executor(), childPolicy());
      bad.runAsync();
      await bad.ready();
      await bad.comms!.sendString("ptrace");
      const r = await bad.awaitResult();
      expect(r.status).toBe("VIOLATION");
      expect(r.violation!.syscall).toBe("ptrace");
      const good = new Sandbox(s.executor(), childPolicy());
      good.runAsync();
      await good.ready();
      await good.comms!.sendString("exit 0");
      expect((await good.awaitResult()).status).toBe("OK");
    } finally {
      s.close();
    }
  });

  test("a child and its descendants cannot leave its process group (killed with it)", async () => {
    const s = await server();
    try {
      const child = new Sandbox(s.executor(), testPolicy("default", (b) => b.allowComms()));
      child.runAsync();
      await child.ready();
      await child.comms!.sendString("leave-group");
      expect(await child.comms!.recvString()).toBe("setsid EPERM, setpgid EPERM");
      await child.comms!.sendString("exit 0");
      expect((await child.awaitResult()).status).toBe("OK");
    } finally {
      s.close();
    }
  });

  test("a child keeps no copy of its listener", async () => {
    const s = await server();
    try {
      const child = new Sandbox(s.executor(), testPolicy("default", (b) => b.allowComms()));
      child.runAsync();
      await child.ready();
      await child.comms!.sendString("scan-fds");
      expect(await child.comms!.recvString()).toBe("no listener");
      await child.comms!.sendString("exit 0");
      expect((await child.awaitResult()).status).toBe("OK");
    } finally {
      s.close();
    }
  });

  test("a child cannot reach into the unfiltered server through /proc/PID/mem", async () => {
    const s = await server();
    try {
      const child = new Sandbox(s.executor(), testPolicy("static", (b) => b.allowComms().allowGetPids().allowOpen()));
      child.runAsync();
      await child.ready();
      await child.comms!.sendString("server-mem");
      expect(await child.comms!.recvString()).toBe("EACCES");
      await child.comms!.sendString("exit 0");
      expect((await child.awaitResult()).status).toBe("OK");
    } finally {
      s.close();
    }
  });

  test("a child cannot reach into another child's memory, which would run it outside its filter", async () => {
    const s = await server();
    try {
      const policy = () => testPolicy("static", (b) => b.allowComms().allowGetPids().allowOpen());
      const victim = new Sandbox(s.executor(), policy());
      victim.runAsync();
      await victim.ready();
      await victim.comms!.sendString("square 2");
      const pid = /pid (\d+)\)$/.exec(await victim.comms!.recvString())![1];
      const attacker = new Sandbox(s.executor(), policy());
      attacker.runAsync();
      await attacker.ready();
      await attacker.comms!.sendString(`sibling-mem ${pid}`);
      expect(await attacker.comms!.recvString()).toBe("EACCES");
      for (const child of [attacker, victim]) {
        await child.comms!.sendString("exit 0");
        expect((await child.awaitResult()).status).toBe("OK");
      }
    } finally {
      s.close();
    }
  });

  test("a server that names another process (init) as its child gets nothing out of bunbox", async () => {
    const s = await ForkServer.start(new Executor(MODES, [MODES, "fork-server-liar"]), testPolicy());
    try {
      const child = new Sandbox(s.executor(), childPolicy());
      const r = await child.run();
      expect(r.status).toBe("SETUP_ERROR");
      expect(r.toString()).toContain("names another process");
      // Nothing was taken from init, nor was init killed: the server runs on.
      await expect(s["sandbox"].awaitResult({ timeoutMs: 300 })).rejects.toThrow("no Result within 300 ms");
    } finally {
      s.close();
    }
  });

  test("what a child sent just before it ended is still there after its Result", async () => {
    const s = await server();
    try {
      const child = new Sandbox(s.executor(), childPolicy());
      child.runAsync();
      await child.ready();
      await child.comms!.sendString("say-and-exit last words");
      expect((await child.awaitResult()).toString()).toBe("OK: exit code 0");
      expect(await child.comms!.recvString()).toBe("last words");
      const after = await child.comms!.recvString().catch((e: Error) => e);
      expect(String(after)).toMatch(/the peer (closed the channel|has ended)/);
      await expect(child.comms!.sendString("more")).rejects.toThrow(/the peer (has ended|closed the channel)/);
    } finally {
      s.close();
    }
  });

  test("a child that ends at once still gets its own Result", async () => {
    const s = await ForkServer.start(new Executor(MODES, [MODES, "fork-server", "quick"]), testPolicy());
    try {
      const results = await Promise.all(Array.from({ length: 5 }, () => new Sandbox(s.executor(), childPolicy()).run()));
      for (const r of results) expect(r.toString()).toBe("OK: exit code 42");
    } finally {
      s.close();
    }
  });

  test("kill() and the wall-time limit end a child", async () => {
    const s = await server();
    try {
      const a = new Sandbox(s.executor(), childPolicy());
      a.runAsync();
      await a.ready();
      a.kill();
      expect((await a.awaitResult()).status).toBe("EXTERNAL_KILL");
      const b = new Sandbox(s.executor({ limits: { wallTimeMs: 300 } }), childPolicy());
      expect((await b.run()).status).toBe("TIMEOUT");
    } finally {
      s.close();
    }
  });

  test("100 forks, many in flight: every Result right, no zombie, no fd leak", async () => {
    const s = await server();
    const fdsBefore = readdirSync("/proc/self/fd").length;
    try {
      const run = async (i: number) => {
        const sandbox = new Sandbox(s.executor(), childPolicy());
        sandbox.runAsync();
        await sandbox.ready();
        await sandbox.comms!.sendString(`square ${i}`);
        const answer = await sandbox.comms!.recvString();
        await sandbox.comms!.sendString(`exit ${i % 100}`);
        const r = await sandbox.awaitResult();
        return `${answer.split(" ")[0]}:${r.status}:${r.exitCode}`;
      };
      for (let batch = 0; batch < 4; batch++) {
        const results = await Promise.all(Array.from({ length: 25 }, (_, j) => run(batch * 25 + j)));
        results.forEach((line, j) => {
          const i = batch * 25 + j;
          expect(line).toBe(`${i * i}:OK:${i % 100}`);
        });
      }
      // Each child is reaped by the server a moment after its Result.
      const serverPid = s.sandbox.pid!;
      const children = () => readFileSync(`/proc/${serverPid}/task/${serverPid}/children`, "utf8").trim();
      await eventually("the server has no child left", () => children() === "");
    } finally {
      s.close();
    }
    await eventually("no fd left behind", () => readdirSync("/proc/self/fd").length <= fdsBefore + 2);
  }, 60_000);
});
