/**
 * From the paths a run used to the mounts of a learned policy
 * (src/learn/filesystem.ts), on a host tree made for the test and seen
 * through a learning run's mount plan; then that the mounts work on the
 * kernel: the same program, on an empty root, sees what it saw.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { DIRECTORY_FILES, learnedMounts, View } from "../../src/learn/filesystem.ts";
import type { PathNote, PathOp } from "../../src/learn/observations.ts";
import { MountPlan } from "../../src/sandbox/mounts.ts";
import { DIR } from "../helpers.ts";

const HOST = `${DIR}/work/fs-${process.pid}`;
mkdirSync(`${HOST}/many`, { recursive: true });
mkdirSync(`${HOST}/listed/sub`, { recursive: true });
mkdirSync(`${HOST}/out`, { recursive: true });
mkdirSync(`${HOST}/deep/er`, { recursive: true });
writeFileSync(`${HOST}/file`, "f");
writeFileSync(`${HOST}/target`, "t");
symlinkSync("target", `${HOST}/link`);
symlinkSync(`${HOST}/deep`, `${HOST}/abs`); // an absolute host link: the sandbox sees it as is
for (let i = 0; i < DIRECTORY_FILES; i++) writeFileSync(`${HOST}/many/f${i}`, "x");
writeFileSync(`${HOST}/listed/sub/x`, "x");
writeFileSync(`${HOST}/deep/er/file`, "d");
chmodSync(`${HOST}/out`, 0o777);

/** The learning run's view: the test tree at /t read-only, its out/ at /w writable, a tmpfs, proc and the default /dev. */
function view(): View {
  const plan = new MountPlan();
  plan.add({ kind: "bind", src: HOST, dst: "/t", rw: false });
  plan.add({ kind: "bind", src: `${HOST}/out`, dst: "/w", rw: true });
  plan.add({ kind: "tmpfs", dst: "/tmp", size: 1 << 20, mode: 0o1777 });
  plan.add({ kind: "proc", dst: "/proc" });
  plan.addMinimalDev();
  return new View(plan);
}

const notes = (paths: Record<string, PathOp[]>): Record<string, PathNote> =>
  Object.fromEntries(Object.entries(paths).map(([p, ops]) => [p, { ops, count: 1, runs: [1] }]));

describe("learned mounts", () => {
  test("a file read is bound alone; a path that does not exist is left absent", () => {
    expect(learnedMounts(view(), notes({ "/t/file": ["read"], "/t/missing": ["stat"] }))).toEqual([{ bind: `${HOST}/file`, at: "/t/file" }]);
  });

  test("a symlink on the way is kept as a symlink, and its target bound", () => {
    expect(learnedMounts(view(), notes({ "/t/link": ["read"] }))).toEqual([
      { symlink: "/t/link", target: "target" },
      { bind: `${HOST}/target`, at: "/t/target" },
    ]);
  });

  test("a directory listed is bound whole, and what was used in it comes with it", () => {
    expect(learnedMounts(view(), notes({ "/t/listed": ["list"], "/t/listed/sub/x": ["read"] }))).toEqual([{ bind: `${HOST}/listed`, at: "/t/listed" }]);
  });

  test(`a directory ${DIRECTORY_FILES} of whose files were used is bound whole; fewer are bound one by one`, () => {
    const all = Object.fromEntries([...Array(DIRECTORY_FILES).keys()].map((i) => [`/t/many/f${i}`, ["read" as PathOp]]));
    expect(learnedMounts(view(), notes(all))).toEqual([{ bind: `${HOST}/many`, at: "/t/many" }]);
    const two = learnedMounts(view(), notes({ "/t/many/f0": ["read"], "/t/many/f1": ["read"] }));
    expect(two).toEqual([{ bind: `${HOST}/many/f0`, at: "/t/many/f0" }, { bind: `${HOST}/many/f1`, at: "/t/many/f1" }]);
  });

  test("a file made where the run could write: its directory, writable; where it could not (a read-only bind): read-only, so it fails again", () => {
    expect(learnedMounts(view(), notes({ "/w/new.txt": ["change"] }))).toEqual([{ bind: `${HOST}/out`, at: "/w", writable: true }]);
    expect(learnedMounts(view(), notes({ "/t/many/new": ["change"] }))).toEqual([{ bind: `${HOST}/many`, at: "/t/many" }]);
  });

  test("a directory only stat'ed is bound, unless other mounts under it make it exist anyway", () => {
    expect(learnedMounts(view(), notes({ "/t/deep": ["stat"] }))).toEqual([{ bind: `${HOST}/deep`, at: "/t/deep" }]);
    expect(learnedMounts(view(), notes({ "/t/deep": ["stat"], "/t/deep/er/file": ["read"] }))).toEqual([{ bind: `${HOST}/deep/er/file`, at: "/t/deep/er/file" }]);
  });

  test("an absolute link: followed as the sandbox would (from its root)", () => {
    // /t/abs -> HOST/deep: HOST is under /tmp, which the sandbox has as a tmpfs; the link leads there.
    expect(learnedMounts(view(), notes({ "/t/abs/er/file": ["read"] }))).toEqual([
      { tmpfs: "/tmp", size: 1 << 20, mode: 0o1777 },
      { symlink: "/t/abs", target: `${HOST}/deep` },
    ]);
  });

  test("a tmpfs used is a fresh tmpfs again; /proc and /dev only when used", () => {
    expect(learnedMounts(view(), notes({ "/tmp/x": ["change"], "/proc/self/status": ["read"], "/dev/null": ["write"] }))).toEqual([
      { dev: "/dev" },
      { proc: "/proc" },
      { tmpfs: "/tmp", size: 1 << 20, mode: 0o1777 },
    ]);
    expect(learnedMounts(view(), notes({ "/t/file": ["read"] })).some((m) => "proc" in m || "dev" in m || "tmpfs" in m)).toBe(false);
  });

  test("the interpreters an exec needs: a script's #! line, and that program's ELF interpreter", () => {
    writeFileSync(`${HOST}/script`, "#!/bin/sh\necho hi\n");
    const plan = MountPlan.defaultView();
    plan.add({ kind: "bind", src: HOST, dst: "/t", rw: false });
    const interps = new View(plan).interpreters("/t/script");
    expect(interps[0]).toBe("/bin/sh");
    expect(interps[1]).toMatch(/^\/lib.*\/ld-linux-.*\.so\.\d$/);
  });
});

test("learned under --root: what no mount covers is the root directory's, bound from it on an empty root", () => {
  const plan = new MountPlan();
  plan.setRoot({ kind: "bind", src: HOST, dst: "/", rw: false });
  expect(learnedMounts(new View(plan), notes({ "/file": ["read"], "/link": ["read"] }))).toEqual([
    { bind: `${HOST}/file`, at: "/file" },
    { symlink: "/link", target: "target" },
    { bind: `${HOST}/target`, at: "/target" },
  ]);
});

test("a learned file's bind, then its directory bound by --ro: the file's bind goes (it would be made inside a read-only bind and fail)", () => {
  const plan = new MountPlan();
  plan.add({ kind: "bind", src: `${HOST}/file`, dst: "/t/file", rw: false });
  plan.add({ kind: "bind", src: `${HOST}/many/f0`, dst: "/elsewhere", rw: false });
  plan.add({ kind: "bind", src: HOST, dst: "/t", rw: false });
  expect(plan.describe()).toEqual([`ro ${HOST}/many/f0 -> /elsewhere`, `ro ${HOST} -> /t`]);
  // Writable under a read-only parent stays: the parent does not show it writable.
  const rw = new MountPlan();
  rw.add({ kind: "bind", src: `${HOST}/out`, dst: "/t/out", rw: true });
  rw.add({ kind: "bind", src: HOST, dst: "/t", rw: false });
  expect(rw.describe()).toEqual([`ro ${HOST} -> /t`, `rw ${HOST}/out -> /t/out`]);
});

test("cleanup", () => rmSync(HOST, { recursive: true, force: true }));
