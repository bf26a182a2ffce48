/**
 * Writable binds as root (csrc/idmap.c): the sandbox's kernel uid is its
 * own, so a tree of root's bound with --rw refused it (make: Permission
 * denied, unless the tree was first chowned). Through an idmapped mount the
 * tree's owner is the sandbox's uid inside it, and what the sandboxee
 * creates lands on the host owned by the tree's owner. A filesystem that
 * cannot be idmapped fails at setup, naming the owner, the sandbox's uid and
 * the fix, never later with EACCES in the build, unless any user may write
 * the tree (as /tmp): then it is bound as it is, as before idmapped mounts.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bunbox, DIR, IS_ROOT, json } from "../helpers.ts";
import { NO_STAGE, STAGE_PATH, stageCopy } from "../roots/stage.ts";

const hasMake = Bun.spawnSync(["sh", "-c", "command -v make"]).exitCode === 0;

describe.if(IS_ROOT)("--rw as root: an idmapped mount", () => {
  test.if(hasMake)("make in a root-owned tree (--profile build, the current directory writable): its files are root's on the host", async () => {
    const tree = join(DIR, "work", `tree-${process.pid}`);
    mkdirSync(tree, { mode: 0o755 });
    writeFileSync(join(tree, "Makefile"), "all: out/prog.txt\nout/prog.txt:\n\tmkdir -p out && echo built > $@ && ln -s prog.txt out/link\n");
    const r = await bunbox(["run", "--profile", "build", "--", "make"], { cwd: tree, bare: true });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    for (const name of ["out", "out/prog.txt", "out/link"]) {
      const st = statSync(join(tree, name), { throwIfNoEntry: true });
      expect([name, st.uid, st.gid]).toEqual([name, 0, 0]);
    }
    expect(readdirSync(join(tree, "out")).sort()).toEqual(["link", "prog.txt"]);
  });

  test("inside, the tree belongs to the sandbox's user; another owner's tree is that owner's afterwards", async () => {
    const tree = join(DIR, "work", `user-tree-${process.pid}`);
    mkdirSync(tree, { mode: 0o755 });
    Bun.spawnSync(["chown", "1234:4321", tree]);
    const r = await bunbox(["run", "--rw", `${tree}:/w`, "--", "/bin/sh", "-c", "stat -c '%u %g' /w; echo x > /w/f"], { bare: true });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("65534 65534\n");
    const st = statSync(join(tree, "f"));
    expect([st.uid, st.gid]).toEqual([1234, 4321]);
  });

  // What the sandboxee creates in root's tree is root's on the host, mode bits
  // and all: chmod u+s (or open/mknod with S_ISUID) left a set-user-ID root
  // program there, for any local user who can reach the tree to run as root.
  test("no set-user-ID or set-group-ID file: chmod, open and mknod with the bits get EPERM; dangerAllowUnsafe setid-bits lets them through", async () => {
    const tree = join(DIR, "work", `setid-${process.pid}`);
    mkdirSync(tree, { mode: 0o755 });
    const script = [
      "import os",
      "def t(what, f):",
      "    try: f(); print(what, 'ok')",
      "    except OSError as e: print(what, e.errno)",
      "open('/w/a', 'w').close()",
      "t('chmod', lambda: os.chmod('/w/a', 0o4755))",
      "t('chmod-g', lambda: os.chmod('/w/a', 0o2755))",
      "t('chmod-plain', lambda: os.chmod('/w/a', 0o755))",
      "t('open', lambda: os.close(os.open('/w/b', os.O_CREAT | os.O_WRONLY, 0o4755)))",
      "t('open-nocreat', lambda: os.close(os.open('/w/a', os.O_RDONLY, 0o7777)))",
      "t('mknod', lambda: os.mknod('/w/c', 0o104755))",
    ].join("\n");
    const r = await bunbox(["run", "--rw", `${tree}:/w`, "--", "python3", "-c", script], { bare: true });
    expect([r.code, r.stdout]).toEqual([0, "chmod 1\nchmod-g 1\nchmod-plain ok\nopen 1\nopen-nocreat ok\nmknod 1\n"]);
    expect(statSync(join(tree, "a")).mode & 0o7777).toBe(0o755);
    // Not silent: the Result lists each refusal as the safety rule's, with the relaxation that lifts it.
    expect(r.stderr).toContain('a safety rule refused 4 calls (EPERM), the run went on');
    expect(r.stderr).toContain('"setid-bits"');
    const listed = await bunbox(["run", "--json", "--rw", `${tree}:/w`, "--", "python3", "-c", script], { bare: true });
    const calls = json(listed.stderr).refused as
      { syscall: string; count: number; answer: string; suggestion?: { policy: unknown } }[];
    // The two chmods are one entry (alike calls are counted together): fchmodat ×2, openat, mknodat.
    expect(calls.reduce((n, c) => n + c.count, 0)).toBe(4);
    expect(new Set(calls.map((c) => JSON.stringify([c.answer, c.suggestion?.policy])))).toEqual(
      new Set([JSON.stringify(["EPERM", { dangerAllowUnsafe: ["setid-bits"] }])]),
    );
    // Audit mode lets the policy's refusals through, never a safety rule's.
    const audited = await bunbox(["run", "--audit", "--rw", `${tree}:/w`, "--", "chmod", "4755", "/w/a"], { bare: true });
    expect(audited.code).toBe(1);
    expect(statSync(join(tree, "a")).mode & 0o7777).toBe(0o755);
    const policy = join(tree, "..", `setid-policy-${process.pid}.json`);
    writeFileSync(policy, JSON.stringify({ profile: "default", dangerAllowUnsafe: ["setid-bits"] }));
    const relaxed = await bunbox(["run", "--policy", policy, "--rw", `${tree}:/w`, "--", "chmod", "4755", "/w/a"], { bare: true });
    expect(relaxed.code).toBe(0);
    const st = statSync(join(tree, "a"));
    expect([st.uid, st.mode & 0o7777]).toEqual([0, 0o4755]);
  });

  // An image of root's (as unpacked by tar or a package manager): its owner is the sandbox's uid inside.
  describe.if(!NO_STAGE)("an image root of root's", () => {
    const sh = (args: string[], script: string) =>
      bunbox(["run", ...args, "--env", STAGE_PATH, "--", "sh", "-c", script], { bare: true });

    test("--root-rw: the sandboxee writes into it, and its files are root's on the host", async () => {
      const root = stageCopy(0);
      const r = await sh(["--root", root, "--root-rw"], "stat -c '%u' /etc && mkdir /etc/new && echo hi > /etc/new/f && cat /etc/new/f");
      expect([r.stdout, r.stderr, r.code]).toEqual(["65534\nhi\n", "", 0]);
      const st = statSync(join(root, "etc", "new", "f"));
      expect([st.uid, st.gid]).toEqual([0, 0]);
    });

    test("--overlay and --overlay-upper: copy-up below root's directories works (no EOVERFLOW), the upper directory's files are its owner's", async () => {
      const root = stageCopy(0);
      expect((await sh(["--root", root, "--overlay"], "echo hi > /etc/f && cat /etc/f")).stdout).toBe("hi\n");
      const upper = join(DIR, "work", `upper-${process.pid}`);
      mkdirSync(upper, { mode: 0o755 });
      const r = await sh(["--root", root, "--overlay-upper", upper], "mkdir -p /etc/deep && echo kept > /etc/deep/f");
      expect([r.stderr, r.code]).toEqual(["", 0]);
      expect((await sh(["--root", root, "--overlay-upper", upper], "cat /etc/deep/f")).stdout).toBe("kept\n");
      const st = statSync(join(upper, "upper", "etc", "deep", "f"));
      expect([st.uid, st.gid]).toEqual([0, 0]);
      // The image itself is untouched.
      expect(() => statSync(join(root, "etc", "deep"))).toThrow();
    });
  });

  describe("a filesystem that cannot be idmapped", () => {
    const mounted: string[] = [];
    afterAll(() => {
      for (const dir of mounted) {
        Bun.spawnSync(["umount", dir]);
        rmSync(dir, { recursive: true, force: true });
      }
    });
    /** A ramfs (no idmapped mounts) of root's, of this mode. */
    const ramfs = (name: string, mode: number) => {
      const dir = join(DIR, "work", `ramfs-${name}-${process.pid}`);
      mkdirSync(dir);
      expect(Bun.spawnSync(["mount", "-t", "ramfs", "none", dir]).exitCode).toBe(0);
      mounted.push(dir);
      chmodSync(dir, mode);
      return dir;
    };

    test("fails at setup (exit 125), naming the owner, the sandbox's uid and the fix", async () => {
      const dir = ramfs("root", 0o755);
      const r = await bunbox(["run", "--rw", dir, "--", "/bin/true"], { bare: true });
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(new RegExp(`SETUP_ERROR: idmap ${dir} \\(owner uid 0, gid 0; the sandbox's uid \\d+\\): EINVAL`));
      expect(r.stderr).toContain("hint: a writable bind as root goes through an idmapped mount");
      // Read-only, it needs no idmap.
      expect((await bunbox(["run", "--ro", dir, "--", "/bin/true"], { bare: true })).code).toBe(0);
    });

    // The hint listed NFS and FUSE only: an overlayfs mount (a container's
    // root, a build tool's layered tree) cannot be idmapped either.
    test("an overlayfs mount as the source: the same setup error, and the hint names overlayfs", async () => {
      const base = join(DIR, "work", `overlay-${process.pid}`);
      for (const d of ["l", "u", "w", "m"]) mkdirSync(join(base, d), { recursive: true, mode: 0o755 });
      const opts = `lowerdir=${base}/l,upperdir=${base}/u,workdir=${base}/w`;
      expect(Bun.spawnSync(["mount", "-t", "overlay", "overlay", "-o", opts, join(base, "m")]).exitCode).toBe(0);
      mounted.push(join(base, "m"));
      const r = await bunbox(["run", "--rw", join(base, "m"), "--", "/bin/true"], { bare: true });
      expect(r.code).toBe(125);
      expect(r.stderr).toContain(`SETUP_ERROR: idmap ${join(base, "m")} (owner uid 0, gid 0;`);
      expect(r.stderr).toContain("not NFS, FUSE, ramfs or an overlayfs mount");
    });

    test("a tree any user may write (o+w, as /tmp) is bound as it is: what the sandboxee creates is the sandbox uid's", async () => {
      const dir = ramfs("open", 0o1777);
      const r = await bunbox(["run", "--rw", `${dir}:/w`, "--json", "--", "/bin/sh", "-c", "echo x > /w/f"], { bare: true });
      expect(r.code).toBe(0);
      const uid = JSON.parse(r.stderr.trim().split("\n").pop()!).containment.uid;
      expect(statSync(join(dir, "f")).uid).toBe(uid);
    });
  });
});

// --profile build (and cc) binds the current directory writable: run by
// root from /etc, /root or a home directory, that gave the sandboxee root's
// write access to /etc/shadow or ~/.bashrc (an idmapped bind); only / was
// refused.
describe("--profile build: the current directory must be a project directory", () => {
  test("/etc, a directory below it, /root, /usr and the caller's home are refused before anything runs; a project directory is not", async () => {
    const home = join(DIR, "work", `home-${process.pid}`);
    mkdirSync(home, { recursive: true, mode: 0o755 });
    const below = readdirSync("/etc", { withFileTypes: true }).find((e) => e.isDirectory())!.name;
    const dirs: [string, string][] = [["/etc", "/etc"], [`/etc/${below}`, `/etc/${below}`], ["/usr", "/usr"], [home, `${home} (your home directory: its dot files)`]];
    if (IS_ROOT) dirs.push(["/root", "/root"]);
    for (const [cwd, shown] of dirs) {
      const r = await bunbox(["run", "--profile", "build", "--", "/bin/true"], { bare: true, cwd, env: { HOME: home } });
      expect([cwd, r.code, r.stderr.trim()]).toEqual([cwd, 2, `bunbox: error: --profile build: mounts the current directory writable: run it from a project directory, not ${shown} (or bind what it may write with --rw)`]);
    }
    const project = join(home, "project");
    mkdirSync(project, { recursive: true, mode: 0o755 });
    const ok = await bunbox(["run", "--profile", "build", "--", "/bin/true"], { bare: true, cwd: project, env: { HOME: home } });
    expect([ok.code, ok.stderr]).toEqual([0, ""]);
  });
});
