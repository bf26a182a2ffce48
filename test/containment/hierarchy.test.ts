/**
 * Where bunbox finds its own cgroups (src/containment/hierarchy.ts), from
 * /proc/self/cgroup and /proc/self/mountinfo as hosts lay them out: pure
 * cgroup v2, v1 with a controller-less unified hierarchy (this host), and a
 * container whose cgroup mounts show only its own subtree.
 */
import { describe, expect, test } from "bun:test";
import { parseLayout } from "../../src/containment/hierarchy.ts";
import { markOf, ownerGone, ownMark } from "../../src/containment/owner.ts";

const V2_MOUNT = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot";
const V1_MOUNTS = [
  "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
  "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
  "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids",
  "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd",
  "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
].join("\n");

describe("the cgroup layout", () => {
  test("pure v2: bunbox's cgroup directory under the mount", () => {
    const l = parseLayout("0::/user.slice/user-1000.slice/session-2.scope\n", V2_MOUNT);
    expect(l.v2).toEqual({ mount: "/sys/fs/cgroup", own: "/user.slice/user-1000.slice/session-2.scope", dir: "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope" });
    expect(l.v1.size).toBe(0);
  });

  test("v1 with a unified hierarchy: controllers mounted together share a hierarchy; name= ones are skipped", () => {
    const l = parseLayout("12:pids:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/x\n1:name=systemd:/\n0::/\n", V1_MOUNTS);
    expect(l.v1.get("memory")).toEqual({ mount: "/sys/fs/cgroup/memory", own: "/process_api/abc", dir: "/sys/fs/cgroup/memory/process_api/abc", controllers: ["memory"] });
    expect(l.v1.get("cpu")).toBe(l.v1.get("cpuacct")!);
    expect(l.v1.get("cpu")!.dir).toBe("/sys/fs/cgroup/cpu,cpuacct/x");
    expect(l.v1.get("pids")!.dir).toBe("/sys/fs/cgroup/pids");
    expect(l.v1.has("systemd")).toBe(false);
    expect(l.v2!.dir).toBe("/sys/fs/cgroup/unified");
  });

  test("a mount that shows only a subtree (a container without a cgroup namespace): paths are relative to its root", () => {
    const mount = "30 23 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw";
    expect(parseLayout("0::/docker/abc/app\n", mount).v2!.dir).toBe("/sys/fs/cgroup/app");
    // bunbox's cgroup outside what the mount shows: not reachable.
    expect(parseLayout("0::/elsewhere\n", mount).v2).toBeUndefined();
  });

  test("a mount point with a space (mountinfo's \\040)", () => {
    const l = parseLayout("0::/a\n", "30 23 0:26 / /mnt/cg\\040two rw - cgroup2 cgroup2 rw");
    expect(l.v2!.dir).toBe("/mnt/cg two/a");
  });

  test("nothing mounted: no hierarchy", () => {
    const l = parseLayout("0::/\n4:memory:/\n", "");
    expect(l.v2).toBeUndefined();
    expect(l.v1.size).toBe(0);
  });
});

describe("cgroup names mark their owner", () => {
  test("this process's mark: pid namespace, pid, start time; a sandbox's cgroup adds a count", () => {
    const mark = ownMark();
    expect(mark).toMatch(new RegExp(`^\\d+-${process.pid}-\\d+$`));
    expect(markOf(`${mark}.12`)).toBe(mark);
    expect(markOf(mark)).toBeUndefined();
    expect(markOf("bunbox")).toBeUndefined();
    expect(markOf("1-2-3.x")).toBeUndefined();
  });

  test("a live owner is not gone; a dead one, another start time or another pid namespace's mark is judged right", () => {
    const mark = ownMark();
    const [ns, pid] = mark.split("-");
    expect(ownerGone(mark)).toBe(false);
    expect(ownerGone(`${ns}-${pid}-1`)).toBe(true); // same pid, another process
    const dead = Bun.spawnSync(["true"]).pid;
    expect(ownerGone(`${ns}-${dead}-1`)).toBe(true);
    expect(ownerGone(`1-${dead}-1`)).toBe(false); // not this pid namespace: never judged
  });
});
