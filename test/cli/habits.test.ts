/**
 * The command line as bwrap, nsjail, docker and firejail users type it:
 * aliases that mean the same (--chdir, --share-net, --unshare-*), the
 * environment options (--env-file, --unsetenv, HOME), another tool's
 * spelling answered with bunbox's, docker's `-v SRC:DST` trap refused, and
 * a --rw into a read-only tree told what to do.
 */
import { describe, expect, test } from "bun:test";
import { closeSync, openSync, writeFileSync } from "node:fs";
import { bunbox, DIR } from "../helpers.ts";

const T = ["--", "/bin/true"];

async function usage(args: string[], ...needles: string[]) {
  const r = await bunbox(args, { bare: true });
  expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 2, stdout: "" });
  expect(r.stderr.trim().split("\n")).toHaveLength(1);
  for (const n of needles) expect(r.stderr).toContain(n);
}

describe("another tool's spelling gets bunbox's", () => {
  const CASES: [string, string[], string][] = [
    ["bwrap --ro-bind SRC DST", ["run", "--ro-bind", "/usr", "/x", ...T], "--ro-bind: unknown option (bwrap's spelling; in bunbox: --ro /usr:/x)"],
    ["bwrap --bind SRC DST", ["run", "--bind", "/srv", "/srv", ...T], "in bunbox: --rw /srv:/srv"],
    ["bwrap --setenv NAME VALUE", ["run", "--setenv", "A", "b", ...T], "in bunbox: --env A=b"],
    ["bwrap --clearenv", ["run", "--clearenv", ...T], "the environment starts empty"],
    ["bwrap --cap-add", ["run", "--cap-add", "CAP_NET_ADMIN", ...T], "every capability is dropped"],
    ["docker --volume SRC:DST:ro", ["run", "--volume", "/a:/b:ro", ...T], "docker's spelling; in bunbox: --ro /a:/b"],
    ["docker --volume=SRC:DST", ["run", "--volume=/a:/b", ...T], "in bunbox: --rw /a:/b"],
    ["docker -e", ["run", "-e", "X=1", ...T], "in bunbox: --env X=1"],
    ["docker -w", ["run", "-w", "/src", ...T], "in bunbox: --cwd /src"],
    ["docker --read-only", ["run", "--read-only", ...T], "read-only always"],
    ["docker -it", ["run", "-it", ...T], "a terminal of its own"],
    ["docker --network host", ["run", "--network", "host", ...T], "in bunbox: --net host"],
    ["firejail --read-only=PATH", ["run", "--read-only=/etc", ...T], "firejail's spelling; in bunbox: --ro /etc"],
    ["firejail --rmenv=NAME", ["run", "--rmenv=FOO", ...T], "in bunbox: --unsetenv FOO"],
    ["nsjail -R", ["run", "-R", "/lib:/lib", ...T], "nsjail's spelling; in bunbox: --ro /lib:/lib"],
    ["a near miss of bunbox's own", ["run", "--time-limt", "5", ...T], "--time-limt: unknown option (did you mean --time-limit?)"],
  ];
  for (const [what, args, needle] of CASES) test(what, () => usage(args, needle));

  test("an option nobody has: the plain message", () => usage(["run", "--frobnicate", ...T], "--frobnicate: unknown option (see bunbox run --help)"));
});

describe("docker's -v trap", () => {
  test("-v SRC:DST CMD: -v is --verbose, so SRC:DST would be the command: refused with the fix, before anything runs", async () => {
    await usage(["run", "-v", "/tmp:/data", "ls"], '"/tmp:/data" is not a command', "-v is --verbose here", "--rw /tmp:/data");
    await usage(["run", "-v", "/etc:/etc2:ro", "ls"], "--ro /etc:/etc2");
  });

  test("a command with a colon that exists is run", async () => {
    const path = `${DIR}/work/a:b`;
    writeFileSync(path, "#!/bin/sh\necho ran\n", { mode: 0o755 });
    const r = await bunbox(["run", "--ro", `${DIR}/work:/w`, "--", "/w/a:b"], { bare: true });
    expect(r.stdout).toBe("ran\n");
  });
});

describe("bwrap's two values to an option bunbox spells with one", () => {
  test("--bind-try SRC DST, --ro-try, --symlink TARGET DST, --file FD DST: the second value would be the command: refused with the fix, before anything runs", async () => {
    await usage(["run", "--bind-try", "/no/such", "/x", ...T], "--bind-try: takes one value, SRC:DST: bwrap's --bind-try /no/such /x is --bind-try /no/such:/x here");
    await usage(["run", "--ro-try", "/usr", "/opt/usr", ...T], "--ro-try /usr:/opt/usr");
    await usage(["run", "--ro", "/usr", "/opt/usr", ...T], "--ro /usr:/opt/usr");
    await usage(["run", "--symlink", "/tmp", "/link", ...T], "--symlink: takes one value, TARGET:DST: bwrap's --symlink /tmp /link is --symlink /tmp:/link here");
    await usage(["learn", "-o", `${DIR}/work/never.json`, "--file", "0", "/etc/x", ...T], "--file 0:/etc/x");
  });

  test("a command that is a file on the host, or one after --, is the command", async () => {
    const r = await bunbox(["run", "--ro", "/usr", "/bin/echo", "ran"], { bare: true });
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: "ran\n" });
    const after = await bunbox(["run", "--ro-try", "/usr", "--", "/no/such/cmd"], { bare: true });
    expect({ code: after.code, stderr: after.stderr }).toEqual({ code: 127, stderr: expect.stringContaining("/no/such/cmd: command not found in the sandbox") });
  });
});

describe("files bunbox reads are read to 16M and no further", () => {
  test("a policy, an --env-file, a --merge file that is /dev/zero: refused, not read until the host's memory runs out", async () => {
    await usage(["run", "--policy", "/dev/zero", ...T], "--policy: /dev/zero: more than 16M");
    await usage(["run", "--env-file", "/dev/zero", ...T], "--env-file: /dev/zero: more than 16M");
    await usage(["policy", "check", "/dev/zero"], "--policy: /dev/zero: more than 16M");
    await usage(["learn", "-o", `${DIR}/work/never.json`, "--merge", "/dev/zero", ...T], "--merge: /dev/zero: more than 16M");
  });
});

describe("--file's content", () => {
  test("a source without an end (/dev/zero, an endless stdin) is refused after 16M, not read until the host's memory runs out", async () => {
    await usage(["run", "--file", "/dev/zero:/x", ...T], "--file /dev/zero:/x: /dev/zero: more than the 16M a file's content may hold");
    const zero = openSync("/dev/zero", "r");
    try {
      const r = await bunbox(["run", "--file", "3:/x", ...T], { bare: true, extraFds: [zero] });
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: "bunbox: error: --file 3:/x: fd 3: more than the 16M a file's content may hold: bind a host file instead\n" });
    } finally {
      closeSync(zero);
    }
  });

  test("16M exactly is a file's content still, from a path or an fd", async () => {
    const path = `${DIR}/work/sixteen-m`;
    writeFileSync(path, new Uint8Array(16 << 20));
    const fromPath = await bunbox(["run", "--file", `${path}:/x`, "--", "/usr/bin/wc", "-c", "/x"], { bare: true });
    expect(fromPath.stdout).toBe(`${16 << 20} /x\n`);
    const fromFd = await bunbox(["run", "--file", "0:/x", "--", "/usr/bin/wc", "-c", "/x"], { bare: true, stdin: new Uint8Array(16 << 20) });
    expect(fromFd.stdout).toBe(`${16 << 20} /x\n`);
  });
});

describe("aliases and accepted bwrap options", () => {
  test("--chdir is --cwd", async () => {
    const r = await bunbox(["run", "--chdir", "/etc", "--", "/bin/pwd"], { bare: true });
    expect(r.stdout).toBe("/etc\n");
    await usage(["run", "--chdir", "/etc", "--cwd", "/usr", ...T], "--cwd: given twice");
  });

  test("--share-net is --net host, a relaxation -v names; with another --net it is refused", async () => {
    const r = await bunbox(["run", "-v", "--share-net", ...T], { bare: true });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("network: host");
    expect(r.stderr).toContain("relaxation: network host");
    await usage(["run", "--share-net", "--net", "none", ...T], "--share-net: is --net host; not with --net none");
  });

  test("--unshare-all, --unshare-* , --die-with-parent, --new-session are accepted and change nothing", async () => {
    const flags = ["--unshare-all", "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup", "--die-with-parent", "--new-session"];
    const r = await bunbox(["run", ...flags, "--", "/bin/sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1"], { bare: true });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("lo");
  });
});

describe("the environment", () => {
  test("HOME is /tmp, or the working directory when one is given", async () => {
    expect((await bunbox(["run", "--", "/bin/sh", "-c", "echo $HOME"], { bare: true })).stdout).toBe("/tmp\n");
    expect((await bunbox(["run", "--cwd", "/etc", "--", "/bin/sh", "-c", "echo $HOME"], { bare: true })).stdout).toBe("/etc\n");
  });

  test("--env-file: NAME=VALUE as written, NAME alone passes bunbox's, comments skipped; --env after it wins; --unsetenv last", async () => {
    const file = `${DIR}/work/env-${process.pid}`;
    writeFileSync(file, "# a comment\nA=1\n\nB=x=y \"q\"\nPASSED\nC=file\n");
    const r = await bunbox(
      ["run", "--env-file", file, "--env", "C=option", "--unsetenv", "HOME", "--", "/usr/bin/env"],
      { bare: true, env: { PASSED: "from-bunbox", SECRET: "no" } },
    );
    expect(r.stdout.trim().split("\n").sort()).toEqual(["A=1", 'B=x=y "q"', "C=option", "PASSED=from-bunbox", expect.stringMatching(/^PATH=/)]);
  });

  test("--env-file errors name the file and line", async () => {
    const file = `${DIR}/work/badenv-${process.pid}`;
    writeFileSync(file, "A=1\n2BAD=x\n");
    await usage(["run", "--env-file", file, ...T], `--env-file: ${file}:2: "2BAD" is not a variable name`);
    await usage(["run", "--env-file", "/no/such/env", ...T], "--env-file: /no/such/env: no such file");
    await usage(["run", "--unsetenv", "A=B", ...T], '--unsetenv: "A=B" is not a variable name');
  });
});

describe("--rw into a read-only tree", () => {
  test("EROFS at setup says to bind the parent writable or put a tmpfs there", async () => {
    const r = await bunbox(["run", "--rw", `${DIR}/work:/usr/share/bunbox-test`, ...T], { bare: true });
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("mount /usr/share/bunbox-test: EROFS");
    expect(r.stderr).toContain("bind its parent with --rw");
    expect(r.stderr).toContain("--tmpfs");
  });
});
