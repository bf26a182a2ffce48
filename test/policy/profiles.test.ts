/**
 * Built-in profiles with real programs on the real kernel: each runs what it
 * is documented for (a libc-less binary, static and dynamic C programs, sh
 * with coreutils, gcc in a writable cwd, python3), and each still refuses
 * what it does not allow (a VIOLATION naming the syscall).
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bunbox, DIR, FX, HOST_ARCH, json, probe, PROBE_STATIC, testUnless } from "../helpers.ts";

describe("profiles run what they are for", () => {
  test("minimal: a program with no libc (read, write, exit)", async () => {
    const r = await bunbox(["run", "--profile", "minimal", "--", `${FX}/minimal`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("minimal: hello\n");
  });

  test("minimal: a libc program's startup is already a violation", async () => {
    const r = await bunbox(["run", "--profile", "minimal", "--json", "--", PROBE_STATIC, "ok"]);
    expect(r.code).toBe(159);
    expect(json(r.stderr).violation.kind).toBe("SYSCALL");
  });

  test("static: a statically linked C program with stdio and malloc", async () => {
    const r = await bunbox(["run", "--profile", "static", "--", PROBE_STATIC, "alloc", "8"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("alloc: 8");
  });

  test("static: opening a directory is not in it", async () => {
    const r = await bunbox(["run", "--profile", "static", "--json", "--", PROBE_STATIC, "ls", "/"]);
    expect(r.code).toBe(159);
    expect(json(r.stderr).violation.syscall).toMatch(/^open/);
  });

  test("dynamic: a dynamically linked program reads a file", async () => {
    const r = await probe(["read", "/etc/hostname"], ["--profile", "dynamic"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync("/etc/hostname", "utf8"));
  });

  test("dynamic: fork is not in it", async () => {
    const r = await probe(["daemon", "x"], ["--profile", "dynamic", "--json"]);
    expect(r.code).toBe(159);
    expect(json(r.stderr).violation.syscall).toMatch(/^(fork|clone|vfork)$/);
  });

  test("shell: sh and coreutils", async () => {
    const script = [
      "set -e",
      "ls / | sort | head -n 3 | wc -l",
      "mkdir -p /tmp/d/e && echo hi > /tmp/d/e/f && cat /tmp/d/e/f && cp /tmp/d/e/f /tmp/g && mv /tmp/g /tmp/h",
      "chmod 600 /tmp/h && ln -s /tmp/h /tmp/l && readlink /tmp/l && rm -r /tmp/d /tmp/h /tmp/l",
      "seq 3 | tr '\\n' , ; echo",
      "grep -c root /etc/passwd",
      "date +%Y >/dev/null && id -u >/dev/null && uname -s && env | wc -l >/dev/null",
      "find /etc -maxdepth 1 -name passwd",
      "(sleep 0.1; echo bg) & wait",
      "test -t 0 || echo notatty",
    ].join("\n");
    const r = await bunbox(["run", "--profile", "shell", "--", "/bin/sh", "-c", script], { bare: true });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("3\nhi\n/tmp/h\n1,2,3,\n1\nLinux\n/etc/passwd\nbg\nnotatty\n");
  });

  test("shell: listening sockets are not in it", async () => {
    const r = await probe(["syscall", String(HOST_ARCH.syscalls.bind), "0", "0", "0"], ["--profile", "shell", "--json"]);
    expect(r.code).toBe(159);
    expect(json(r.stderr).violation.syscall).toBe("bind");
  });

  test("build: gcc compiles in the writable current directory, and the result runs", async () => {
    const work = mkdtempSync(join(DIR, "work", "build-"));
    chmodSync(work, 0o777);
    writeFileSync(join(work, "hello.c"), '#include <stdio.h>\nint main(void){puts("built and ran");return 0;}\n');
    const r = await bunbox(
      ["run", "--profile", "build", "--", "/bin/sh", "-c", "gcc -O1 -o hello hello.c && ./hello"],
      { bare: true, cwd: work },
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("built and ran\n");
    expect(existsSync(join(work, "hello"))).toBe(true);
  });

  test("build: a policy file on the build profile starts the command in the directory it mounts, as the profile does", async () => {
    const work = mkdtempSync(join(DIR, "work", "cwd-"));
    chmodSync(work, 0o777);
    const p = join(work, "policy.json");
    writeFileSync(p, JSON.stringify({ profile: "build" }));
    const byProfile = await bunbox(["run", "--profile", "build", "--", "/bin/pwd"], { bare: true, cwd: work });
    const byFile = await bunbox(["run", "--policy", p, "--", "/bin/pwd"], { bare: true, cwd: work });
    expect([byProfile.stdout, byFile.stdout]).toEqual([`${work}\n`, `${work}\n`]);
    const other = await bunbox(["run", "--profile", "default", "--", "/bin/pwd"], { bare: true, cwd: work });
    expect(other.stdout).toBe("/\n");
  });

  test("build: no network", async () => {
    const work = mkdtempSync(join(DIR, "work", "net-"));
    chmodSync(work, 0o777);
    const r = await probe(["read", "/proc/net/dev"], ["--profile", "build"], { cwd: work });
    expect(r.stdout.split("\n").slice(2).filter(Boolean).map((l) => l.split(":")[0]!.trim())).toEqual(["lo"]);
  });

  test("build: refuses to make / writable when run from /", async () => {
    const r = await probe(["ok"], ["--profile", "build"], { cwd: "/" });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--profile build: mounts the current directory writable");
  });

  testUnless(existsSync("/usr/bin/python3") ? undefined : "/usr/bin/python3 is not installed")("default: python3", async () => {
    const code = "import json, os, sys, subprocess, threading; t = threading.Thread(target=lambda: None); t.start(); t.join(); print(json.dumps({'pid': os.getpid(), 'ok': subprocess.run(['true']).returncode}))";
    const r = await bunbox(["run", "--", "/usr/bin/python3", "-c", code], { bare: true });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ pid: 2, ok: 0 });
  });

  test("default: still refuses the dangerous", async () => {
    const r = await probe(["ptrace"], ["--json"]);
    expect(r.code).toBe(159);
  });
});
