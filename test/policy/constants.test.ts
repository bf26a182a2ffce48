/**
 * The named argument values (src/policy/constants.ts) against the C headers
 * of this machine: a C program prints every name the headers define, and
 * each must equal bunbox's number for this arch. Names the installed headers
 * predate are skipped (and counted). Then the naming and parsing of values
 * (src/policy/argspec.ts) both ways.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { argSpec, nameValue, parseValue } from "../../src/policy/argspec.ts";
import * as C from "../../src/policy/constants.ts";
import { HOST_ARCH } from "../helpers.ts";

const arch = HOST_ARCH.name;
const tables: Record<string, Record<string, number>> = {
  ADDRESS_FAMILIES: C.ADDRESS_FAMILIES, SOCKET_TYPES: C.SOCKET_TYPES, SOCKET_FLAGS: C.SOCKET_FLAGS,
  IOCTLS: C.IOCTLS, PRCTL_OPTIONS: C.PRCTL_OPTIONS, FCNTL_COMMANDS: C.FCNTL_COMMANDS,
  CLONE_FLAGS: C.CLONE_FLAGS, UNSHARE_FLAGS: C.UNSHARE_FLAGS, PROT: C.protFlags(arch), MAP: C.mapFlags(arch),
  OPEN_ACCESS: C.OPEN_ACCESS, OPEN: C.openFlags(arch), FUTEX_OPS: C.FUTEX_OPS, FUTEX_FLAGS: C.FUTEX_FLAGS,
  ...(arch === "x86_64" ? { ARCH_PRCTL_CODES: C.ARCH_PRCTL_CODES } : {}),
  GETRANDOM_FLAGS: C.GETRANDOM_FLAGS, AT_FLAGS: C.AT_FLAGS, DIRFD: C.DIRFD, ACCESS_MODES: C.ACCESS_MODES,
  MADVISE: C.MADVISE, CLOCKS: C.CLOCKS, SIGPROCMASK_HOW: C.SIGPROCMASK_HOW, SECCOMP_OPS: C.SECCOMP_OPS,
  WAIT_OPTIONS: C.WAIT_OPTIONS,
};
/** glibc's 64-bit headers define O_LARGEFILE as 0 (the kernel adds it); the kernel's number is the one a filter sees on aarch64. */
const USERSPACE_DIFFERS = new Set(["O_LARGEFILE"]);
/** Names glibc keeps under another one. */
const C_NAME: Record<string, string> = { FASYNC: "O_ASYNC", O_TMPFILE: "O_TMPFILE" };

describe("constants", () => {
  test(`every name this machine's headers define has bunbox's number (${arch})`, () => {
    const dir = mkdtempSync(join(tmpdir(), "bunbox-constants-"));
    try {
      const names = Object.values(tables).flatMap((t) => Object.keys(t)).filter((n) => !USERSPACE_DIFFERS.has(n));
      const src = [
        "#define _GNU_SOURCE",
        ...["stdio.h", "fcntl.h", "signal.h", "sched.h", "sys/ioctl.h", "sys/socket.h", "sys/prctl.h",
          "sys/mman.h", "sys/random.h", "sys/wait.h", "time.h", "unistd.h", "linux/fs.h", "linux/futex.h",
          "linux/seccomp.h", "linux/sockios.h", "linux/random.h", "linux/fiemap.h", "asm/termbits.h"].map((h) => `#include <${h}>`),
        ...(arch === "x86_64" ? ["#include <asm/prctl.h>"] : []),
        "int main(void) {",
        ...names.map((n) => `#ifdef ${C_NAME[n] ?? n}\n  printf("${n} %lld\\n", (long long)(${C_NAME[n] ?? n}));\n#endif`),
        "  return 0;\n}",
      ].join("\n");
      writeFileSync(join(dir, "c.c"), src);
      const cc = Bun.spawnSync(["gcc", "-w", "-o", join(dir, "c"), join(dir, "c.c")], { stderr: "pipe" });
      expect(cc.stderr.toString()).toBe("");
      const out = Bun.spawnSync([join(dir, "c")]).stdout.toString().trim().split("\n");
      const fromC = new Map(out.map((l) => l.split(" ")).map(([n, v]) => [n!, Number(v)]));
      const ours = new Map(Object.values(tables).flatMap((t) => Object.entries(t)));
      const wrong = [...fromC].filter(([n, v]) => (ours.get(n)! | 0) !== (v | 0)).map(([n, v]) => `${n}: headers ${v}, bunbox ${ours.get(n)}`);
      expect(wrong).toEqual([]);
      // Most names are in the headers: the check is not vacuous.
      expect(fromC.size).toBeGreaterThan(names.length * 0.75);
      console.log(`# ${fromC.size} of ${names.length} names checked against the C headers; the rest are newer than them`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("naming values", () => {
  const spec = (sys: string, a: string) => argSpec("x86_64", sys, a)!;
  test("flags, enums, both, and the name of zero", () => {
    expect(nameValue(spec("openat", "flags"), 0o2200000n)).toBe("O_RDONLY|O_CLOEXEC|O_DIRECTORY");
    expect(nameValue(spec("openat", "flags"), 0o1101n)).toBe("O_WRONLY|O_CREAT|O_TRUNC");
    expect(nameValue(spec("socket", "family"), 1n)).toBe("AF_UNIX");
    expect(nameValue(spec("socket", "type"), 0x80801n)).toBe("SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC");
    expect(nameValue(spec("clone", "clone_flags"), 0x1200011n)).toBe("SIGCHLD|CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID");
    expect(nameValue(spec("mmap", "prot"), 0n)).toBe("PROT_NONE");
    expect(nameValue(spec("mmap", "prot"), 5n)).toBe("PROT_READ|PROT_EXEC");
    expect(nameValue(spec("ioctl", "cmd"), 0x5401n)).toBe("TCGETS");
    expect(nameValue(spec("ioctl", "cmd"), 0x1234n)).toBe("4660");
    expect(nameValue(spec("openat", "dfd"), 0xffffffffffffff9cn)).toBe("AT_FDCWD");
    expect(nameValue(spec("futex", "op"), 128n)).toBe("FUTEX_WAIT|FUTEX_PRIVATE_FLAG");
    expect(nameValue(spec("access", "mode"), 0n)).toBe("F_OK");
    // A bit no name covers stays visible.
    expect(nameValue(spec("mmap", "prot"), 0x101n)).toBe("PROT_READ|0x100");
    // High bits: a number, not a name that would hide them.
    expect(nameValue(spec("ioctl", "cmd"), 0x1_0000_5401n)).toBeUndefined();
  });

  test("the arch decides what O_DIRECTORY is", () => {
    const x86 = argSpec("x86_64", "openat", "flags")!;
    const arm = argSpec("aarch64", "openat", "flags")!;
    expect(parseValue(x86, "O_DIRECTORY")).toBe(0o200000n);
    expect(parseValue(arm, "O_DIRECTORY")).toBe(0o40000n);
    expect(nameValue(arm, 0o40000n)).toBe("O_RDONLY|O_DIRECTORY");
  });

  test("parsing: names joined by |, numbers, and a clear refusal of an unknown name", () => {
    expect(parseValue(spec("socket", "type"), "SOCK_DGRAM|SOCK_CLOEXEC")).toBe(0x80002n);
    expect(parseValue(spec("ioctl", "cmd"), "0x5401")).toBe(0x5401n);
    expect(parseValue(spec("ioctl", "cmd"), 21505)).toBe(21505n);
    expect(parseValue(spec("openat", "dfd"), "-100")).toBe(-100n);
    expect(parseValue(spec("ioctl", "cmd"), "TCGETZ")).toMatch(/"TCGETZ" is not a name argument "cmd" knows/);
    // No prototype: "toString" is no ioctl.
    expect(parseValue(spec("ioctl", "cmd"), "toString")).toMatch(/not a name/);
    expect(parseValue(spec("ioctl", "cmd"), "constructor")).toMatch(/not a name/);
  });

  test("every name of every table reads back as itself", () => {
    for (const [name, table] of Object.entries({ IOCTLS: C.IOCTLS, PRCTL_OPTIONS: C.PRCTL_OPTIONS, FCNTL_COMMANDS: C.FCNTL_COMMANDS, AF: C.ADDRESS_FAMILIES })) {
      const s = { IOCTLS: spec("ioctl", "cmd"), PRCTL_OPTIONS: spec("prctl", "option"), FCNTL_COMMANDS: spec("fcntl", "cmd"), AF: spec("socket", "family") }[name]!;
      for (const [n, v] of Object.entries(table)) expect(`${n}=${nameValue(s, BigInt(v))}`).toBe(`${n}=${n}`);
    }
  });
});
