/**
 * `bunbox run` isolation, against the real kernel: user, mount, pid, uts,
 * net, ipc and cgroup namespaces, pivot_root onto a read-only tmpfs root,
 * capabilities dropped (bounding and ambient too), no_new_privs, seccomp
 * filter mode, fds and environment cleaned. Each test fails if its property
 * breaks.
 */
import { expect, test } from "bun:test";
import { chmodSync, chownSync, closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { libc } from "../../src/comms/libc.ts";
import { Executor } from "../../src/sandbox/executor.ts";
import { Sandbox } from "../../src/sandbox/sandbox.ts";
import { BUNBOX, bunbox, describeModes, DIR, IS_ROOT, NEEDS_ROOT, probe, PROBE, testPolicy, testUnless } from "../helpers.ts";

/** fcntl(2): set the fd flags (here: clear FD_CLOEXEC). */
const F_SETFD = 2;

describeModes("filesystem view", () => {
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
    for (const path of ["/root", "/home", "/var", "/boot", "/work"].filter((p) => existsSync(p))) {
      const r = await probe(["ls", path]);
      expect(`${path}: ${r.stdout}`).toBe(`${path}: opendir: -1 ENOENT\n`);
    }
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

  testUnless(NEEDS_ROOT)("a symlink a sandboxee planted is not followed by a later run's mount source", async () => {
    const shared = mkdtempSync(`${DIR}/work/shared-`);
    chmodSync(shared, 0o777);
    // A user's directory: as root a writable bind is idmapped (its owner is the sandbox's uid), so
    // what the sandboxee plants there belongs to that user (README.md "Containment").
    chownSync(shared, 65534, 65534);
    const secret = `${shared}.secret`;
    writeFileSync(secret, "root only\n", { mode: 0o600 });
    const plant = await bunbox(["run", "--rw", `${shared}:/shared`, "--", "/bin/ln", "-s", secret, "/shared/data"], { bare: true });
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

  test("every mount is nosuid; nodev but the /dev nodes; noexec where nothing is to run (/proc, /dev)", async () => {
    const r = await probe(["read", "/proc/self/mounts"]);
    const mounts = r.stdout.trim().split("\n").map((line) => line.split(" "));
    expect(mounts.map(([, target]) => target)).toEqual(expect.arrayContaining(["/", "/usr", "/proc", "/dev", "/dev/null", "/dev/shm", "/tmp"]));
    for (const [, target, , options] of mounts) {
      const o = new Set(options!.split(","));
      const devNode = /^\/dev\/(null|zero|full|random|urandom|tty|pts)$/.test(target!);
      const noexec = devNode || ["/proc", "/dev", "/dev/shm"].includes(target!);
      const flags = (["nosuid", "nodev", "noexec"] as const).filter((f) => o.has(f));
      expect(`${target}: ${flags}`).toBe(`${target}: ${["nosuid", ...(devNode ? [] : ["nodev"]), ...(noexec ? ["noexec"] : [])]}`);
    }
  });

  test("/dev has the minimal nodes and they work", async () => {
    const r = await probe(["ls", "/dev"]);
    for (const n of ["null", "zero", "full", "random", "urandom", "tty"]) expect(r.stdout).toContain(n);
    expect(r.stdout).not.toContain("sda");
    const w = await probe(["write", "/dev/null", "x"]);
    expect(w.stdout).toContain("write: 1");
  });

  test("the sandbox's devpts holds at most 64 ptys: one sandbox cannot take the host's kernel.pty.max from the others", async () => {
    const py = "import os\nn = 0\ntry:\n    while True: os.open('/dev/ptmx', os.O_RDWR | os.O_NOCTTY); n += 1\nexcept OSError as e: print(n, e.strerror)";
    const r = await bunbox(["run", "--max-files", "4096", "--", "python3", "-c", py], { bare: true });
    expect(r.stdout).toBe("64 No space left on device\n");
  });

  testUnless(NEEDS_ROOT)("/etc/shadow is unreadable when bunbox runs as root", async () => {
    const r = await probe(["read", "/etc/shadow"]);
    expect(r.stdout).toBe("open: -1 EACCES\n");
  });
});

describeModes("namespaces and credentials", () => {
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

  testUnless(NEEDS_ROOT)("as root the kernel uid is the sandbox's own (test/containment/uids.test.ts), never 0; 65534 inside", async () => {
    const r = await probe(["read", "/proc/self/uid_map"]);
    const [inside, outside] = r.stdout.trim().split(/\s+/).map(Number);
    expect(outside).toBeGreaterThanOrEqual(0x7e000000);
    expect(inside).toBe(65534);
    const g = await probe(["read", "/proc/self/status"], ["--uid", "0", "--gid", "0"]);
    expect(g.stdout).toMatch(/^Uid:\s+0\s+0\s+0\s+0$/m);
    const m = await probe(["read", "/proc/self/uid_map"], ["--uid", "0"]);
    expect(m.stdout.trim().split(/\s+/).map(Number)[0]).toBe(0);
  });

  test("bunbox's init (pid 1) is out of reach: no /proc/1/mem, no environ", async () => {
    expect((await probe(["write", "/proc/1/mem", "x"])).stdout).toContain("EACCES");
    expect((await probe(["read", "/proc/1/environ"])).stdout).toContain("EACCES");
    expect((await probe(["read", "/proc/1/cmdline"])).stdout).toBe("bunbox-init\0");
  });

  // A race: before the fix, pid 1 still ran in bunbox's address space for a
  // moment after the sandboxee started, with bunbox's fds and environment.
  const firstInstruction = async (nobody: boolean) => {
    const runs = await Promise.all(Array.from({ length: 12 }, () => probe(["pid1"], ["--profile", "default"], { nobody, env: { HOST_SECRET: "hunter2" } })));
    for (const r of runs) expect(r.stdout).toBe("pid1=bunbox-init mem=denied environ=denied fds=0\n");
  };
  test("the sandboxee's first instruction runs after pid 1 became bunbox-init (never while it shares bunbox's memory)", () => firstInstruction(false));
  testUnless(NEEDS_ROOT)("the same, with bunbox run by user nobody", () => firstInstruction(true));

  testUnless(NEEDS_ROOT)("no supplementary groups, though bunbox (root) has some: they would still grant access", async () => {
    const proc = Bun.spawn(["setpriv", "--groups", "4,27", BUNBOX, "run", "--", "/bin/cat", "/proc/self/status"], { stdout: "pipe", stderr: "pipe" });
    const [out, , code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect(code).toBe(0);
    expect(out).toMatch(/^Groups:\s*$/m);
  });

  test("securebits: root inside never gets capabilities back, locked", async () => {
    // NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE, each with its lock, and
    // KEEP_CAPS locked (off: exec clears it).
    const r = await probe(["securebits"], ["--uid", "0", "--gid", "0"]);
    expect(r.stdout).toBe(`securebits: ${0b11101111}\n`);
  });

  test("--uid 0 inside gives no capabilities (no root on exec)", async () => {
    const r = await probe(["read", "/proc/self/status"], ["--uid", "0", "--gid", "0"]);
    expect(r.stdout).toMatch(/^CapEff:\s+0000000000000000$/m);
    expect(r.stdout).toMatch(/^CapPrm:\s+0000000000000000$/m);
  });
});

describeModes("what the sandboxee inherits", () => {
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

  test("no signal blocked or ignored (Bun ignores SIGPIPE and SIGXFSZ, and exec keeps what is ignored)", async () => {
    const r = await probe(["read", "/proc/self/status"]);
    expect(r.stdout).toMatch(/^SigBlk:\s+0000000000000000$/m);
    expect(r.stdout).toMatch(/^SigIgn:\s+0000000000000000$/m);
  });

  // init is non-dumpable: only root may list its fds.
  testUnless(IS_ROOT ? undefined : "needs root to list the fds of bunbox-init (non-dumpable)")("bunbox-init holds no fd of bunbox's: only its report pipe and its signalfd", async () => {
    const ex = new Executor(PROBE, [PROBE, "sleep", "30"]);
    const out = ex.ipc.receiveFd(1);
    // A mapped fd without close-on-exec: init's exec must not keep it.
    const mapped = openSync("/etc/hostname", "r");
    expect(libc().fcntl(mapped, F_SETFD, 0)).toBe(0);
    ex.ipc.mapFd(mapped, 5);
    const s = new Sandbox(ex, testPolicy());
    s.runAsync();
    await s.ready();
    try {
      const ppid = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${s.pid}/status`, "utf8"))![1];
      const fds = readdirSync(`/proc/${ppid}/fd`).map((fd) => readlinkSync(`/proc/${ppid}/fd/${fd}`).replace(/\d+/, "N"));
      expect(fds.sort()).toEqual(["anon_inode:[signalfd]", "pipe:[N]"]);
    } finally {
      s.kill();
      await s.awaitResult();
      closeSync(out);
      closeSync(mapped);
    }
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
