/**
 * The build's check of the code between clone and execve
 * (scripts/check-child.ts): A and B run on the TLS of the spawner thread that
 * cloned them, in Bun's memory, so a libc call there (its errno, a PLT slot)
 * corrupts a thread of Bun's. The check links the child units alone and
 * refuses anything they use but do not define; here it must catch each kind
 * of planted call, through the very functions the build uses.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { CHILD_SOURCES } from "../../scripts/build-shim.ts";
import { buildChildObject, childObjectProblems } from "../../scripts/check-child.ts";

const root = resolve(import.meta.dir, "../..");
const dir = mkdtempSync(join(tmpdir(), "bunbox-childcheck-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const CFLAGS = ["-O2", "-Wall", "-fno-tree-loop-distribute-patterns"];

/** The problems the check finds in child code `source` (entry point bb_child_a). */
function check(name: string, source: string): string[] {
  const src = join(dir, `${name}.c`);
  const out = join(dir, `${name}.o`);
  writeFileSync(src, source);
  const failed = buildChildObject({ cc: "gcc", cflags: CFLAGS, sources: [src], out });
  if (failed) throw new Error(failed);
  return childObjectProblems(out, ["bb_child_a"]);
}

const RAW = `#include <sys/syscall.h>
#include "${root}/csrc/sys.h"
`;

describe("the child-code check", () => {
  test("passes raw system calls through csrc/sys.h", () => {
    expect(check("raw", `${RAW}__attribute__((visibility("hidden"))) int bb_child_a(void *arg) { (void)arg; return (int)bb_sys0(SYS_getpid); }\n`)).toEqual([]);
  });

  test("refuses a glibc wrapper", () => {
    const p = check("wrapper", `#include <unistd.h>\n__attribute__((visibility("hidden"))) int bb_child_a(void *arg) { (void)arg; return getpid(); }\n`);
    expect(p).toEqual([expect.stringContaining("uses getpid")]);
  });

  test("refuses errno (the spawner thread's, through __errno_location)", () => {
    const p = check("errno", `#include <errno.h>\n__attribute__((visibility("hidden"))) int bb_child_a(void *arg) { (void)arg; errno = 0; return 0; }\n`);
    expect(p).toEqual([expect.stringContaining("uses __errno_location")]);
  });

  test("refuses glibc's clone(), the old clone3 fallback", () => {
    const p = check("clone", `#define _GNU_SOURCE\n#include <sched.h>\nstatic int f(void *a) { return a != 0; }\nstatic char stack[4096] __attribute__((aligned(16)));\n` +
      `__attribute__((visibility("hidden"))) int bb_child_a(void *arg) { return clone(f, stack + sizeof stack, 0, arg); }\n`);
    expect(p).toContainEqual(expect.stringContaining("uses clone"));
  });

  test("refuses the memcpy a compiler emits for a copy of unknown length", () => {
    const p = check("memcpy", `static char to[64];\n__attribute__((visibility("hidden"))) int bb_child_a(void *arg) { __builtin_memcpy(to, arg, *(unsigned long *)arg); return to[0]; }\n`);
    expect(p).toEqual([expect.stringContaining("uses memcpy")]);
  });

  test("refuses thread-local storage", () => {
    const p = check("tls", `static __thread int t;\n__attribute__((visibility("hidden"))) int bb_child_a(void *arg) { (void)arg; return ++t; }\n`);
    expect(p.some((x) => x.includes("thread-local"))).toBe(true);
  });

  test("refuses a function of default visibility (callable through the PLT once in the shim)", () => {
    const p = check("visible", `__attribute__((visibility("default"))) int helper(int x) { return x + 1; }\n__attribute__((visibility("hidden"))) int bb_child_a(void *arg) { return helper((int)(long)arg); }\n`);
    expect(p).toEqual([expect.stringContaining("helper has default visibility")]);
  });

  test("refuses an object without the entry point", () => {
    expect(check("noentry", `__attribute__((visibility("hidden"))) int other(void) { return 0; }\n`)).toEqual([
      expect.stringContaining("bb_child_a is not defined"),
    ]);
  });
});

test("the shim's own child units pass it (the build ran it too)", () => {
  const out = join(dir, "child.o");
  const failed = buildChildObject({ cc: "gcc", cflags: CFLAGS, sources: CHILD_SOURCES.map((f) => join(root, "csrc", f)), out });
  expect(failed).toBe("");
  expect(childObjectProblems(out, ["bb_child_a"])).toEqual([]);
});
