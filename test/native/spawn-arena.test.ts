/**
 * The spawn arena (csrc/spawn.c): A's and B's stacks lie in Bun's memory,
 * each above a PROT_NONE guard page, so that a child overflowing its stack
 * faults instead of writing over whatever of Bun's lies below. A guard that
 * could not be set up must fail the spawn, never run unguarded. mprotect
 * cannot be made to fail from outside without starving the whole machine of
 * mappings, so a test build of the shim has one that always does.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildShimIn } from "../../scripts/build-shim.ts";

const root = resolve(import.meta.dir, "../..");
const dir = mkdtempSync(join(tmpdir(), "bunbox-arena-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** One spawn of /bin/true with the shim at `path`, in a fresh bun: its stage, errno and detail, or "spawned". */
function spawnWith(path: string): unknown {
  const src = (f: string) => JSON.stringify(join(root, "src", f));
  const code = `
import { discard, isFailure, spawnAsync } from ${src("native/spawn.ts")};
import { profileBuilder } from ${src("policy/profiles.ts")};
import { Executor } from ${src("sandbox/executor.ts")};
import { buildRequest } from ${src("sandbox/request.ts")};
import { armFilter } from ${src("sandbox/launch/launcher.ts")};
import { SETUP_TIMEOUT_MS } from ${src("sandbox/limits.ts")};
const policy = profileBuilder("default").build();
const req = buildRequest(new Executor("/bin/true", ["true"]), policy, { notify: true, ...armFilter(policy.filter(true)), mounts: policy.mountPlan(), setupTimeoutMs: SETUP_TIMEOUT_MS });
const s = await spawnAsync(req.bytes);
console.log(JSON.stringify(isFailure(s) ? { stage: s.stage, errno: s.errnoName, detail: s.detail } : "spawned"));
if (!isFailure(s)) discard(s);
process.exit(0);`;
  const p = Bun.spawnSync([process.execPath, "-e", code], { cwd: root, env: { ...process.env, BUNBOX_SHIM: path }, stderr: "pipe" });
  const out = p.stdout.toString().trim();
  if (!out) throw new Error(p.stderr.toString());
  return JSON.parse(out);
}

test("the shim this source builds spawns (the control)", () => {
  expect(spawnWith(join(root, "build", "libbunbox.so"))).toBe("spawned");
});

test("a guard page that cannot be set up fails the spawn at stage resources", () => {
  const path = buildShimIn({ dir: join(dir, "nomprotect"), cflags: ["-include", join(import.meta.dir, "mprotect_fails.h")] });
  expect(spawnWith(path)).toEqual({ stage: "resources", errno: "ENOMEM", detail: "mprotect(stack guard page)" });
}, 60_000);
