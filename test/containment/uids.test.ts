/**
 * A kernel uid of its own for each root-run sandbox, owning its user
 * namespace (src/containment/uids.ts, csrc/contain.c). The kernel charges
 * per-user budgets (inotify instances, message-queue bytes, pending signals
 * and POSIX timers, pipe buffers) to a process's uid and to the owner of
 * its user namespace: while a sandbox whose namespace root owned drained
 * them, host root got EMFILE from inotify_init1 and mq_open and EAGAIN from
 * timer_create; while one sandbox filled 64 MiB of pipes, every other
 * sandbox (all were uid 65534) got EPERM from F_SETPIPE_SZ. Run by a normal
 * user, a sandbox keeps that user's uid, and its namespace's limits leave
 * the user half of their budget.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UidAllocator } from "../../src/containment/uids.ts";
import { bunbox, IS_ROOT } from "../helpers.ts";
import { HOG, holding, onHost, sandboxeePid } from "./util.ts";

describe.if(IS_ROOT)("as root, each sandbox has a kernel uid of its own", () => {
  test("from the range, never 0 or 65534, distinct between sandboxes running at once", async () => {
    const held = await Promise.all([0, 1, 2].map(() => holding(["fork-hold", "0"])));
    try {
      const kernel = held.map((h) => sandboxeeUid(h.proc.pid!));
      for (const uid of kernel) {
        expect(uid).toBeGreaterThanOrEqual(0x7e000000);
        expect(uid).toBeLessThanOrEqual(0x7e00ffff);
      }
      expect(new Set(kernel).size).toBe(3);
    } finally {
      await Promise.all(held.map((h) => h.stop()));
    }
  });

  test("root's inotify instances are untouched while a sandbox takes all it can", async () => {
    const h = await holding(["inotify-flood"]);
    try {
      expect(h.line).toMatch(/^inotify: \d+ then EMFILE$/);
      expect(onHost(["try-inotify"])).toBe("inotify_init1: ok");
    } finally {
      await h.stop();
    }
  });

  test("root's message-queue bytes are untouched while a sandbox takes all it can", async () => {
    const h = await holding(["mq-flood"]);
    try {
      expect(h.line).toMatch(/^mq: \d+ then EMFILE$/);
      expect(onHost(["try-mq"])).toBe("mq_open: ok");
    } finally {
      await h.stop();
    }
  });

  test("root's pending signals (POSIX timers) are untouched while a sandbox takes all it can", async () => {
    const h = await holding(["timer-flood"]);
    try {
      expect(h.line).toMatch(/^timers: \d+ then EAGAIN$/);
      expect(onHost(["try-timer"])).toBe("timer_create x16: ok");
    } finally {
      await h.stop();
    }
  });

  test("two sandboxes at once: one filling its pipe budget leaves the other's whole", async () => {
    const h = await holding(["pipe-fill"]);
    try {
      expect(h.line).toMatch(/^pipes: \d+ MiB then EPERM$/);
      const r = await bunbox(["run", "--", HOG, "pipe-size"]);
      expect(r.stdout).toBe("pipe-size: default 65536, 1 MiB: ok\n");
      expect(onHost(["pipe-size"], { nobody: true })).toBe("pipe-size: default 65536, 1 MiB: ok");
    } finally {
      await h.stop();
    }
  });

  test("the sandbox's user namespace has half the host's inotify budget and at most 64 namespaces of each kind", async () => {
    const r = await bunbox(["run", "--", "/bin/cat", "/proc/sys/user/max_inotify_instances", "/proc/sys/user/max_user_namespaces"], { bare: true });
    const host = Number(await Bun.file("/proc/sys/user/max_inotify_instances").text());
    expect(r.stdout.split("\n").slice(0, 2).map(Number)).toEqual([Math.floor(host / 2), 64]);
  });
});

/** The kernel uid of the sandboxee under bunbox `pid`. */
function sandboxeeUid(bunboxPid: number): number {
  const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${sandboxeePid(bunboxPid)}/status`, "utf8"));
  return m ? Number(m[1]) : -1;
}

describe.if(IS_ROOT)("as user nobody, the sandbox keeps the user's uid and leaves the user half its budget", () => {
  test("host nobody still gets inotify instances while its sandbox takes all it can", async () => {
    const h = await holding(["inotify-flood"], [], { nobody: true });
    try {
      expect(h.line).toMatch(/^inotify: \d+ then EMFILE$/);
      expect(onHost(["try-inotify"], { nobody: true })).toBe("inotify_init1: ok");
    } finally {
      await h.stop();
    }
  });

  test("and message-queue bytes", async () => {
    const h = await holding(["mq-flood"], [], { nobody: true });
    try {
      expect(onHost(["try-mq"], { nobody: true })).toBe("mq_open: ok");
    } finally {
      await h.stop();
    }
  });
});

describe("the uid allocator", () => {
  const dir = () => mkdtempSync(join(tmpdir(), "bunbox-uids-"));

  test.if(IS_ROOT)("two allocators (two bunbox processes) never hold one id; a released id is free again", () => {
    const lockDir = dir();
    const range = { first: 3_000_000_000, last: 3_000_000_001 };
    const a = new UidAllocator(range, lockDir);
    const b = new UidAllocator(range, lockDir);
    const x = a.allocate();
    const y = b.allocate();
    expect(new Set([x.uid, y.uid]).size).toBe(2);
    expect(() => a.allocate()).toThrow(/every uid of the range 3000000000-3000000001 is held/);
    x.release();
    expect(b.allocate().uid).toBe(x.uid);
  });

  test.if(IS_ROOT)("the lock directory is made where it is missing, its parent too (an initramfs has no /run)", () => {
    const lockDir = join(dir(), "run", "bunbox");
    expect(new UidAllocator({ first: 3_000_000_300, last: 3_000_000_300 }, lockDir).allocate().uid).toBe(3_000_000_300);
    expect(statSync(lockDir).mode & 0o777).toBe(0o700);
  });

  test.if(IS_ROOT)("an id the host's account files name is never given", () => {
    const a = new UidAllocator({ first: 65533, last: 65535 }, dir());
    const got = [a.allocate().uid, a.allocate().uid];
    expect(got.sort()).toEqual([65533, 65535]); // 65534 is nobody in /etc/passwd
    expect(() => a.allocate()).toThrow(/is held/);
  });

  test.if(IS_ROOT)("the lock dies with the process that held it", async () => {
    const lockDir = dir();
    const script = join(lockDir, "hold.ts");
    writeFileSync(script, `
      import { UidAllocator } from ${JSON.stringify(join(import.meta.dir, "../../src/containment/uids.ts"))};
      const held = new UidAllocator({ first: 3_000_000_100, last: 3_000_000_100 }, ${JSON.stringify(lockDir)}).allocate();
      console.log(held.uid);
      setInterval(() => {}, 1000);
    `);
    const proc = Bun.spawn([process.execPath, script], { stdout: "pipe" });
    const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value).trim()).toBe("3000000100");
    const mine = new UidAllocator({ first: 3_000_000_100, last: 3_000_000_100 }, lockDir);
    expect(() => mine.allocate()).toThrow(/is held/);
    proc.kill("SIGKILL");
    await proc.exited;
    expect(mine.allocate().uid).toBe(3_000_000_100);
  });
});

describe.if(IS_ROOT)("BUNBOX_UID_RANGE", () => {
  test("sets the range the sandbox's uid comes from", async () => {
    const r = await bunbox(["run", "--", "/bin/cat", "/proc/self/uid_map"], { bare: true, env: { BUNBOX_UID_RANGE: "3000000200-3000000200" } });
    expect(r.stdout.trim().split(/\s+/).map(Number)).toEqual([65534, 3000000200, 1]);
  });

  test("a malformed range is a usage error naming it", async () => {
    for (const bad of ["0-10", "10-5", "x", "1-4294967295"]) {
      const r = await bunbox(["run", "--", "/bin/true"], { bare: true, env: { BUNBOX_UID_RANGE: bad } });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`BUNBOX_UID_RANGE: "${bad}" is not a uid range`);
    }
  });
});
