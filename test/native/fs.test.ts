/**
 * src/native/fs.ts, the file access of a run without node:fs, checked
 * against node:fs itself: the same results and the same error codes on a
 * corpus of files, directories, symlinks (dangling, looping), devices, /proc
 * files and fds; the system-call numbers against the syscall tables.
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as node from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as fs from "../../src/native/fs.ts";
import { AARCH64 } from "../../src/policy/syscalls/aarch64.ts";
import { X86_64 } from "../../src/policy/syscalls/x86_64.ts";

const dir = node.mkdtempSync(join(tmpdir(), "bunbox-fs-"));
afterAll(() => node.rmSync(dir, { recursive: true, force: true }));

/** What a call gave: its value, or its error's code (node's and ours must agree on both). */
function outcome<T>(f: () => T): { value: T } | { code: string | undefined } {
  // (void calls are compared as "ok" or their code: node's return null here, ours undefined)
  try {
    return { value: f() };
  } catch (e) {
    return { code: (e as NodeJS.ErrnoException).code };
  }
}

const statOf = (s: { mode: number; uid: number; gid: number; size: number; isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }) => ({
  mode: s.mode,
  uid: s.uid,
  gid: s.gid,
  // A directory's and a /proc file's size are the filesystem's to say: compared where they mean bytes.
  size: s.isFile() ? s.size : 0,
  kinds: [s.isFile(), s.isDirectory(), s.isSymbolicLink(), s.isCharacterDevice(), s.isBlockDevice()],
});

describe("the system calls", () => {
  test("each number is the syscall table's, on both arches", () => {
    for (const [arch, table] of [["x86_64", X86_64], ["aarch64", AARCH64]] as const) {
      for (const [name, nr] of Object.entries(fs.SYSCALLS[arch])) expect([arch, name, table[name]]).toEqual([arch, name, nr]);
    }
    expect(fs.NR).toBe(fs.SYSCALLS[process.arch === "arm64" ? "aarch64" : "x86_64"]);
  });

  test("the open flags and access modes are this platform's", () => {
    // Bun's node:fs has no O_CLOEXEC: asm-generic's on both arches.
    const theirs: Record<string, number> = { ...(node.constants as Record<string, number>), O_CLOEXEC: 0o2000000 };
    for (const [name, value] of Object.entries(fs.constants) as [string, number][]) expect([name, value]).toEqual([name, theirs[name]!]);
  });
});

describe("against node:fs, on a corpus", () => {
  const f = join(dir, "file");
  node.writeFileSync(f, "héllo\nwörld\n");
  node.writeFileSync(join(dir, "empty"), "");
  node.mkdirSync(join(dir, "sub/deeper"), { recursive: true });
  node.symlinkSync("file", join(dir, "to-file"));
  node.symlinkSync("sub", join(dir, "to-dir"));
  node.symlinkSync("nowhere", join(dir, "dangling"));
  node.symlinkSync("loop-b", join(dir, "loop-a"));
  node.symlinkSync("loop-a", join(dir, "loop-b"));
  node.symlinkSync("x".repeat(1000), join(dir, "long-target"));
  node.chmodSync(f, 0o640);
  // Owner and group apart, so that a field read from the other's place shows.
  if (process.geteuid?.() === 0) node.lchownSync(join(dir, "to-file"), 1234, 5678);
  if (process.geteuid?.() === 0) node.chownSync(join(dir, "empty"), 4321, 8765);
  const paths = [
    f, join(dir, "empty"), join(dir, "sub"), join(dir, "sub/deeper"), join(dir, "to-file"), join(dir, "to-dir"), join(dir, "dangling"),
    join(dir, "loop-a"), join(dir, "long-target"), join(dir, "missing"), join(dir, "file/under-a-file"), "/dev/null", "/proc/self/status",
    "/proc/self/fd", "/", `${dir}/to-dir/deeper`, "",
  ];

  test.each([
    ["statx", true],
    ["newfstatat (where a seccomp profile refuses statx)", false],
  ])("stat, lstat, readlink, exists, access: the same results and error codes (%s)", (_, statx) => {
    fs._useStatx(statx);
    try {
      checkPaths();
    } finally {
      fs._useStatx(true);
    }
  });

  function checkPaths(): void {
    for (const p of paths) {
      expect([p, outcome(() => statOf(fs.statSync(p)))]).toEqual([p, outcome(() => statOf(node.statSync(p)))]);
      expect([p, outcome(() => statOf(fs.lstatSync(p)))]).toEqual([p, outcome(() => statOf(node.lstatSync(p)))]);
      expect([p, outcome(() => fs.readlinkSync(p))]).toEqual([p, outcome(() => node.readlinkSync(p))]);
      expect([p, fs.existsSync(p)]).toEqual([p, node.existsSync(p)]);
      for (const mode of [fs.constants.F_OK, fs.constants.R_OK, fs.constants.W_OK, fs.constants.X_OK]) {
        const ok = (f: () => void) => outcome(() => (f(), "ok"));
        expect([p, mode, ok(() => fs.accessSync(p, mode))]).toEqual([p, mode, ok(() => node.accessSync(p, mode))]);
      }
    }
  }

  test("readFileSync (bytes and text) and readdirSync: the same content, names and error codes", () => {
    for (const p of paths.filter((p) => !p.startsWith("/proc/self/status"))) {
      const bytes = (x: () => Uint8Array) => outcome(() => [...x()]);
      expect([p, bytes(() => fs.readFileSync(p))]).toEqual([p, bytes(() => node.readFileSync(p))]);
      expect([p, outcome(() => fs.readFileSync(p, "utf8"))]).toEqual([p, outcome(() => node.readFileSync(p, "utf8"))]);
      expect([p, outcome(() => fs.readdirSync(p).sort())]).toEqual([p, outcome(() => node.readdirSync(p).sort())]);
    }
    // A /proc file says its size is 0: read to its end all the same.
    expect(fs.readFileSync("/proc/self/status", "utf8")).toContain("\nPid:\t");
    expect(Buffer.isBuffer(fs.readFileSync(f))).toBe(true);
  });

  test("a directory of thousands of entries (more than one getdents64 buffer) lists the same", () => {
    const big = join(dir, "big");
    node.mkdirSync(big);
    for (let i = 0; i < 3000; i++) node.writeFileSync(join(big, `entry-with-a-long-name-${i}`), "");
    expect(fs.readdirSync(big).sort()).toEqual(node.readdirSync(big).sort());
    expect(fs.readdirSync(big)).toHaveLength(3000);
  });

  test("errors carry node's code, errno, syscall and path", () => {
    const e = outcome(() => fs.openSync(join(dir, "missing"))) as { code: string };
    expect(e.code).toBe("ENOENT");
    let err: NodeJS.ErrnoException | undefined;
    try {
      fs.lstatSync(join(dir, "missing"));
    } catch (x) {
      err = x as NodeJS.ErrnoException;
    }
    expect(err).toBeInstanceOf(Error);
    expect({ code: err!.code, errno: err!.errno, syscall: err!.syscall, path: err!.path }).toEqual({ code: "ENOENT", errno: -2, syscall: "lstat", path: join(dir, "missing") });
    expect(err!.message).toBe(`ENOENT: no such file or directory, lstat '${join(dir, "missing")}'`);
  });

  test("a path with a NUL byte is refused, never cut short at it", () => {
    // Cut at the NUL, it would name the corpus's own file.
    const sneaky = `${f}\0.ignored`;
    for (const call of [() => fs.openSync(sneaky), () => fs.statSync(sneaky), () => fs.readFileSync(sneaky), () => fs.mkdirSync(sneaky), () => fs.readlinkSync(sneaky)]) {
      expect(outcome(call)).toEqual({ code: "ERR_INVALID_ARG_VALUE" });
    }
    expect(fs.existsSync(sneaky)).toBe(false);
    expect(node.existsSync(sneaky)).toBe(false);
  });
});

describe("writing", () => {
  test("open w / wx, write (bytes from an offset, text), read at a position, writeFileSync to a path and to an fd", () => {
    const p = join(dir, "written");
    const fd = fs.openSync(p, "wx", 0o600);
    expect(outcome(() => fs.openSync(p, "wx"))).toEqual({ code: "EEXIST" });
    expect(fs.writeSync(fd, new TextEncoder().encode("0123456789"), 4)).toBe(6);
    expect(fs.writeSync(fd, "é!")).toBe(3);
    fs.closeSync(fd);
    expect(node.readFileSync(p, "utf8")).toBe("456789é!");
    expect(node.statSync(p).mode & 0o777).toBe(0o600);
    const r = fs.openSync(p, "r");
    const buf = new Uint8Array(8);
    expect(fs.readSync(r, buf, 2, 3, 1)).toBe(3);
    expect(new TextDecoder().decode(buf.subarray(2, 5))).toBe("567");
    expect(fs.readSync(r, buf, 0, 4, null)).toBe(4); // from where the fd stands: the start
    expect(new TextDecoder().decode(buf.subarray(0, 4))).toBe("4567");
    fs.closeSync(r);
    fs.writeFileSync(p, "short");
    expect(node.readFileSync(p, "utf8")).toBe("short");
    const w = fs.openSync(p, "w");
    fs.writeFileSync(w, "via the fd");
    fs.closeSync(w);
    expect(node.readFileSync(p, "utf8")).toBe("via the fd");
    expect(outcome(() => (fs.closeSync(w), "ok"))).toEqual({ code: "EBADF" });
  });

  test("every fd is opened close-on-exec, as Bun's", () => {
    const fd = fs.openSync(join(dir, "file"), "r");
    try {
      const flags = /^flags:\s+([0-7]+)$/m.exec(node.readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))![1]!;
      expect(Number.parseInt(flags, 8) & fs.constants.O_CLOEXEC).toBe(fs.constants.O_CLOEXEC);
    } finally {
      fs.closeSync(fd);
    }
  });

  test("mkdir (recursive or not), rmdir: node's results and error codes", () => {
    const a = join(dir, "m1/m2/m3");
    expect(outcome(() => (fs.mkdirSync(a), "ok"))).toEqual({ code: "ENOENT" });
    fs.mkdirSync(a, { recursive: true, mode: 0o750 });
    expect(node.statSync(a).isDirectory()).toBe(true);
    expect(node.statSync(a).mode & 0o777).toBe(0o750 & ~process.umask());
    fs.mkdirSync(a, { recursive: true }); // there already: no error, as node's
    expect(outcome(() => (fs.mkdirSync(a), "ok"))).toEqual(outcome(() => (node.mkdirSync(a), "ok")));
    expect(outcome(() => (fs.mkdirSync(join(dir, "file/x"), { recursive: true }), "ok"))).toEqual(outcome(() => (node.mkdirSync(join(dir, "file/x"), { recursive: true }), "ok")));
    expect(outcome(() => (fs.mkdirSync(join(dir, "file"), { recursive: true }), "ok"))).toEqual(outcome(() => (node.mkdirSync(join(dir, "file"), { recursive: true }), "ok")));
    expect(outcome(() => (fs.rmdirSync(join(dir, "m1")), "ok"))).toEqual({ code: "ENOTEMPTY" });
    fs.rmdirSync(a);
    expect(node.existsSync(a)).toBe(false);
    expect(outcome(() => (fs.rmdirSync(a), "ok"))).toEqual(outcome(() => (node.rmdirSync(a), "ok")));
  });

  test("fstat of an open fd, and of a closed one (statx, newfstatat)", () => {
    for (const statx of [true, false]) {
      fs._useStatx(statx);
      const fd = fs.openSync(join(dir, "file"), "r");
      expect(statOf(fs.fstatSync(fd))).toEqual(statOf(node.fstatSync(fd)));
      fs.closeSync(fd);
      expect(outcome(() => fs.fstatSync(fd))).toEqual(outcome(() => node.fstatSync(fd)));
    }
    fs._useStatx(true);
  });
});
