/**
 * The core cases again with bunbox run by an unprivileged user (nobody,
 * through setpriv): an unprivileged user namespace maps only the caller's own
 * ids, and every other property must hold all the same.
 */
import { expect, test } from "bun:test";
import { describeModes, NEEDS_ROOT, probe } from "../helpers.ts";

const opts = { nobody: true };

describeModes("as user nobody", (mode) => {
  test("runs, as pid 2, with the caller's ids mapped", async () => {
    const r = await probe(["pid"], [], opts);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("pid=2 ppid=1");
    const m = await probe(["read", "/proc/self/uid_map"], [], opts);
    expect(m.stdout.trim().split(/\s+/).map(Number)).toEqual([65534, 65534, 1]);
  });

  test("no capabilities, no_new_privs, seccomp; only lo", async () => {
    const r = await probe(["read", "/proc/self/status"], [], opts);
    for (const set of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) {
      expect(r.stdout).toMatch(new RegExp(`^${set}:\\s+0000000000000000$`, "m"));
    }
    expect(r.stdout).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(r.stdout).toMatch(/^Seccomp:\s+2$/m);
    const n = await probe(["read", "/proc/net/dev"], [], opts);
    expect(n.stdout.split("\n").slice(2).filter(Boolean).map((l) => l.split(":")[0]!.trim())).toEqual(["lo"]);
  });

  test("read-only root and binds; writable /tmp", async () => {
    expect((await probe(["write", "/usr/x", "1"], [], opts)).stdout).toBe("write: -1 EROFS\n");
    expect((await probe(["write", "/x", "1"], [], opts)).stdout).toBe("write: -1 EROFS\n");
    expect((await probe(["write", "/tmp/x", "1"], [], opts)).stdout).toBe("write: 1\n");
  });

  test("exit code, signal, timeout, violation, not found", async () => {
    expect((await probe(["exit", "7"], [], opts)).code).toBe(7);
    expect((await probe(["signal", "6"], [], opts)).code).toBe(134);
    expect((await probe(["sleep", "20"], ["--time-limit", "0.3"], opts)).code).toBe(124);
    const v = await probe(["ptrace"], [], opts);
    expect(v.code).toBe(159);
    expect(v.stderr).toContain(mode.notify ? "VIOLATION: ptrace" : "VIOLATION: unknown syscall [unknown] (killed by SIGSYS");
    expect((await probe(["exec", "/nope"], [], opts)).stdout).toBe("execv: -1 ENOENT\n");
  });

  test("the environment is cleared and no fd leaks", async () => {
    const e = await probe(["env"], [], { ...opts, env: { SECRET: "x" } });
    expect(e.stdout).toMatch(/^PATH=[^\n]*\nHOME=\/tmp\n$/);
    const f = await probe(["fds"], [], opts);
    expect(f.stdout.trim().split("\n").sort()).toEqual(["0", "1", "2"]);
  });
}, NEEDS_ROOT);
