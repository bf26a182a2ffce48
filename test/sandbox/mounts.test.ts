/**
 * MountPlan.add accepts the kinds of mount the shim applies (bind, tmpfs,
 * proc, symlink, dir, file, overlay, mask, readonly) and refuses anything
 * else by name, rather than pass the shim a kind it does not know.
 */
import { expect, test } from "bun:test";
import { UsageError } from "../../src/errors.ts";
import { MountPlan, type MountOp } from "../../src/sandbox/mounts.ts";

test("an unknown mount kind is a usage error naming it", () => {
  const plan = new MountPlan();
  for (const kind of ["devices", "sysfs", undefined]) {
    const add = () => plan.add({ kind, dst: "/x" } as unknown as MountOp, "mounts.0");
    expect(add).toThrow(UsageError);
    expect(add).toThrow(`mounts.0: ${JSON.stringify(kind)} is not a mount kind (bind, tmpfs, proc, symlink, devpts, dir, file, overlay, mask, readonly)`);
  }
  expect(plan.ops).toEqual([]);
  plan.add({ kind: "proc", dst: "/proc" }).add({ kind: "symlink", target: "/proc/self/fd", dst: "/dev/fd" });
  expect(plan.describe()).toEqual(["proc /proc", "symlink /dev/fd -> /proc/self/fd"]);
});
