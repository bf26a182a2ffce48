/**
 * MountPlan.add accepts the four kinds of mount the shim applies (bind,
 * tmpfs, proc, symlink) and refuses anything else by name, rather than pass
 * the shim a kind it does not know (a "dir" kind was once in the type but
 * nothing made it).
 */
import { expect, test } from "bun:test";
import { UsageError } from "../../src/errors.ts";
import { MountPlan, type MountOp } from "../../src/sandbox/mounts.ts";

test("an unknown mount kind is a usage error naming it", () => {
  const plan = new MountPlan();
  for (const kind of ["dir", "overlay", undefined]) {
    const add = () => plan.add({ kind, dst: "/x" } as unknown as MountOp, "mounts.0");
    expect(add).toThrow(UsageError);
    expect(add).toThrow(`mounts.0: ${JSON.stringify(kind)} is not a mount kind (bind, tmpfs, proc, symlink, devpts)`);
  }
  expect(plan.ops).toEqual([]);
  plan.add({ kind: "proc", dst: "/proc" }).add({ kind: "symlink", target: "/proc/self/fd", dst: "/dev/fd" });
  expect(plan.describe()).toEqual(["proc /proc", "symlink /dev/fd -> /proc/self/fd"]);
});
