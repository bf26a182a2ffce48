/**
 * `bunbox run` isolation, against the real kernel: user, mount, pid, uts,
 * net, ipc and cgroup namespaces, pivot_root onto a read-only tmpfs root,
 * capabilities dropped (bounding and ambient too), no_new_privs, seccomp
 * filter mode, fds and environment cleaned. Each test fails if its property
 * breaks.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { bunbox, DIR, IS_ROOT, probe } from "../helpers.ts";

describe("filesystem view", () => {
  test("only the default view and mapped paths are visible at /", async () => {
    const r = await probe(["ls", "/"]);
    expect(r.code).toBe(0);
    const entries = r.stdout.trim().split("\n").sort();
    const expected = ["bin", "dev", "etc", "fx", "lib", "proc", "sbin", "tmp", "usr"];
    for (const e of expected) expect(entries).toContain(e);
    for (const e of entries) expect([...expected, "lib32", "lib64", "libx32"]).toContain(e);
    expect(entries).not.toContain("root");
    expect(entries).not.toContain("home");
  });

  test("host paths outside the view do not exist inside", async () => {
    const r = await probe(["read", "/root/.bashrc"]);
    expect(r.stdout).toContain("ENOENT");
  });

  test("the root, /usr, /etc and --ro binds are read-only", async () => {
    for (const path of ["/newfile", "/usr/newfile", "/etc/newfile", "/fx/newfile"]) {
      const r = await probe(["write", path, "x"]);
      expect(r.stdout).toMatch(/EROFS/);
    }
  });

  test("--rw binds are writable and the write reaches the host", async () => {
    const name = `rw-${process.pid}`;
    const r = await probe(["write", `/data/${name}`, "hello"], ["--rw", `${DIR}/work:/data`]);
    expect(r.stdout).toContain("write: 5");
    expect(await Bun.file(`${DIR}/work/${name}`).text()).toBe("hello");
  });

  test.if(IS_ROOT)("a symlink a sandboxee planted is not followed by a later run's mount source", async () => {
    const shared = `${DIR}/work/shared-${process.pid}`;
    mkdirSync(shared, { mode: 0o777 });
    chmodSync(shared, 0o777);
    writeFileSync(`${DIR}/work/secret-${process.pid}`, "root only\n", { mode: 0o600 });
    const plant = await bunbox(["run", "--rw", `${shared}:/shared`, "--", "/bin/ln", "-s", `${DIR}/work/secret-${process.pid}`, "/shared/data"], { bare: true });
    expect(plant.code).toBe(0);
    const r = await bunbox(["run", "--ro", `${shared}/data:/data`, "--", "/bin/cat", "/data"], { bare: true });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("is a symlink owned by uid 65534");
  });

  test("/tmp is a writable tmpfs, private to the run", async () => {
    const r = await probe(["write", "/tmp/x", "abc"]);
    expect(r.stdout).toContain("write: 3");
    const mounts = await probe(["read", "/proc/self/mounts"]);
    expect(mounts.stdout).toMatch(/^tmpfs \/tmp tmpfs rw,nosuid,nodev/m);
  });

  test("--tmpfs DST:SIZE is bounded by its size", async () => {
    const r = await probe(["write-big", "/scratch/f", "4"], ["--tmpfs", "/scratch:1M"]);
    expect(r.stdout).toMatch(/write-big: (-1 ENOSPC|\d+)/);
    expect(r.stdout).not.toContain("write-big: 4194304");
  });

  test("--tmpfs DST without a size gets 64 MiB, not the kernel's half of the RAM", async () => {
    const r = await probe(["read", "/proc/self/mounts"], ["--tmpfs", "/scratch"]);
    expect(r.stdout).toMatch(/^tmpfs \/scratch tmpfs rw,nosuid,nodev,[^ ]*size=65536k/m);
  });

  test("every mount is nosuid, and nodev except the /dev nodes", async () => {
    const r = await probe(["read", "/proc/self/mounts"]);
    for (const line of r.stdout.trim().split("\n")) {
      const [, target, , opts] = line.split(" ");
      expect(opts).toContain("nosuid");
      // The devpts is the sandbox's own instance: its nodes are its ptys only.
      const devNode = /^\/dev\/(null|zero|full|random|urandom|tty|pts)$/.test(target!);
      if (!devNode && target !== "/proc" && !opts!.includes("nodev")) throw new Error(`${target} lacks nodev: ${opts}`);
    }
  });

  test("/dev has the minimal nodes and they work", async () => {
    const r = await probe(["ls", "/dev"]);
    for (const n of ["null", "zero", "full", "random", "urandom", "tty"]) expect(r.stdout).toContain(n);
    expect(r.stdout).not.toContain("sda");
    const w = await probe(["write", "/dev/null", "x"]);
    expect(w.stdout).toContain("write: 1");
  });

  test.if(IS_ROOT)("/etc/shadow is unreadable when bunbox runs as root", async () => {
    const r = await probe(["read", "/etc/shadow"]);
    expect(r.stdout).toContain("EACCES");
  });
});

describe("namespaces and credentials", () => {
  test("the sandboxee is pid 2 under bunbox's init, in a new pid namespace", async () => {
    const r = await probe(["pid"]);
    expect(r.stdout.trim()).toBe("pid=2 ppid=1");
  });

  test("hostname is bunbox by default and --hostname sets it", async () => {
    expect((await probe(["read", "/proc/sys/kernel/hostname"])).stdout.trim()).toBe("bunbox");
    expect((await probe(["read", "/proc/sys/kernel/hostname"], ["--hostname", "judge-7"])).stdout.trim()).toBe("judge-7");
  });

  test("the network namespace has only lo, and nothing is reachable", async () => {
    const r = await probe(["read", "/proc/net/dev"]);
    const ifaces = r.stdout.split("\n").slice(2).filter(Boolean).map((l) => l.split(":")[0]!.trim());
    expect(ifaces).toEqual(["lo"]);
    const c = await probe(["net"]);
    expect(c.stdout).toMatch(/ENETUNREACH|EPERM|EACCES/);
  });

  test("no capabilities in any set, no_new_privs, seccomp filter mode", async () => {
    const r = await probe(["read", "/proc/self/status"]);
    for (const set of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) {
      expect(r.stdout).toMatch(new RegExp(`^${set}:\\s+0000000000000000$`, "m"));
    }
    expect(r.stdout).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(r.stdout).toMatch(/^Seccomp:\s+2$/m);
  });

  test.if(IS_ROOT)("as root the kernel uid is 65534, never 0", async () => {
    const r = await probe(["read", "/proc/self/uid_map"]);
    const [inside, outside] = r.stdout.trim().split(/\s+/).map(Number);
    expect(outside).toBe(65534);
    expect(inside).toBe(65534);
    const g = await probe(["read", "/proc/self/status"], ["--uid", "0", "--gid", "0"]);
    expect(g.stdout).toMatch(/^Uid:\s+0\s+0\s+0\s+0$/m);
    const m = await probe(["read", "/proc/self/uid_map"], ["--uid", "0"]);
    expect(m.stdout.trim().split(/\s+/).map(Number)).toEqual([0, 65534, 1]);
  });

  test("bunbox's init (pid 1) is out of reach: no /proc/1/mem, no environ", async () => {
    expect((await probe(["write", "/proc/1/mem", "x"])).stdout).toContain("EACCES");
    expect((await probe(["read", "/proc/1/environ"])).stdout).toContain("EACCES");
    expect((await probe(["read", "/proc/1/cmdline"])).stdout).toBe("bunbox-init\0");
  });

  test("the sandboxee's first instruction runs after pid 1 became bunbox-init (never while it shares bunbox's memory)", async () => {
    // A race: before the fix, pid 1 still ran in bunbox's address space for a
    // moment after the sandboxee started, with bunbox's fds and environment.
    for (const nobody of [false, true]) {
      const runs = await Promise.all(Array.from({ length: 12 }, () => probe(["pid1"], ["--profile", "default"], { nobody, env: { HOST_SECRET: "hunter2" } })));
      for (const r of runs) expect(r.stdout).toBe("pid1=bunbox-init mem=denied environ=denied fds=0\n");
    }
  });

  test("--uid 0 inside gives no capabilities (no root on exec)", async () => {
    const r = await probe(["read", "/proc/self/status"], ["--uid", "0", "--gid", "0"]);
    expect(r.stdout).toMatch(/^CapEff:\s+0000000000000000$/m);
    expect(r.stdout).toMatch(/^CapPrm:\s+0000000000000000$/m);
  });
});

describe("what the sandboxee inherits", () => {
  test("no fd beyond stdio leaks, even one bunbox inherited without CLOEXEC", async () => {
    const fd = openSync("/etc/hostname", "r");
    try {
      const r = await probe(["fds"], [], { extraFds: [fd, fd] });
      expect(r.stdout.trim().split("\n").sort()).toEqual(["0", "1", "2"]);
    } finally {
      closeSync(fd);
    }
  });

  test("the environment is cleared but for PATH and HOME; --env and --keep-env pass values", async () => {
    const r = await probe(["env"], ["--env", "A=1", "--keep-env", "KEEP"], { env: { SECRET: "s3cret", KEEP: "k", TERM: "xterm" } });
    const lines = r.stdout.trim().split("\n").sort();
    expect(lines).toEqual(["A=1", "HOME=/tmp", "KEEP=k", expect.stringMatching(/^PATH=/)]);
    expect(r.stdout).not.toContain("s3cret");
  });

  test("a new session: no controlling terminal to inject into", async () => {
    const r = await bunbox(["run", "--", "/bin/sh", "-c", "cat /proc/self/stat"], { bare: true });
    const fields = r.stdout.slice(r.stdout.lastIndexOf(")") + 2).split(" ");
    const [, , pgrp, session, ttyNr] = fields;
    expect(session).toBe("2");
    expect(pgrp).toBe("2");
    expect(ttyNr).toBe("0");
  });
});
