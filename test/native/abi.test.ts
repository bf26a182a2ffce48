/**
 * One definition of the TS↔C ABI: csrc/plan.h. scripts/gen-abi.ts writes
 * src/native/abi.ts from it, and the shim reports the same values as its
 * compiler laid them out (bb_abi_layout); src/native/library.ts refuses a
 * shim whose values differ, so an old shim named by BUNBOX_SHIM is refused by
 * name instead of misreading every request. The variants are real shims,
 * built here with the build's own code and loaded in a fresh bun.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildShimIn } from "../../scripts/build-shim.ts";
import { checkAbiTs, generateTs, parsePlan, planAbi } from "../../scripts/gen-abi.ts";
import { ABI_LAYOUT, BB_ABI_VERSION } from "../../src/native/abi.ts";

const root = resolve(import.meta.dir, "../..");
const dir = mkdtempSync(join(tmpdir(), "bunbox-abi-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Loads the shim at `path` through BUNBOX_SHIM in a fresh bun: "loaded", or the error. */
function loadWith(path: string): string {
  const code = `import { shim } from ${JSON.stringify(join(root, "src/native/library.ts"))};
try { shim(); console.log("loaded"); } catch (e) { console.log(\`\${e.name}: \${e.message}\`); }`;
  const p = Bun.spawnSync([process.execPath, "-e", code], { env: { ...process.env, BUNBOX_SHIM: path }, stderr: "pipe" });
  return `${p.stdout.toString().trim()}${p.stderr.toString().trim()}`;
}

describe("src/native/abi.ts", () => {
  test("is what scripts/gen-abi.ts makes of csrc/plan.h", () => {
    expect(() => checkAbiTs()).not.toThrow();
  });

  test("lists BB_ABI_VERSION first, the one value every version reports in place", () => {
    expect(ABI_LAYOUT[0]).toEqual(["BB_ABI_VERSION", BB_ABI_VERSION]);
  });

  test("the generator refuses what it cannot read, rather than skip it", () => {
    expect(() => parsePlan("#define BB_ABI_VERSION 2\nstruct s { float x; };")).toThrow(/struct s: cannot read "float x"/);
    expect(() => parsePlan("#define BB_ABI_VERSION 2\n#define BB_X (1 << 3)")).toThrow(/#define BB_X: "\(1 << 3\)" is not an integer literal/);
    expect(() => parsePlan("struct s { uint32_t a; };")).toThrow(/no BB_ABI_VERSION/);
  });

  test("lays out a struct as C does (padding before u64, size rounded to the alignment)", () => {
    const abi = parsePlan("#define BB_ABI_VERSION 2\nstruct bb_t { uint32_t a; uint64_t b; int32_t c; char d[3]; };");
    expect(generateTs(abi)).toContain(
      "export const BB_T = {\n  sizeof: 24,\n  a: { offset: 0, type: \"u32\", count: 1 },\n  b: { offset: 8, type: \"u64\", count: 1 },\n" +
        "  c: { offset: 16, type: \"i32\", count: 1 },\n  d: { offset: 20, type: \"char\", count: 3 },\n}",
    );
    expect(planAbi().structs.map((s) => s.name)).toEqual(["bb_req", "bb_mount", "bb_rlimit", "bb_fdmap", "bb_cgroup", "bb_sysctl", "bb_spawn_out", "bb_report", "bb_wait_out"]);
  });
});

describe("loading the shim", () => {
  test("the shim built from this source loads", () => {
    expect(loadWith(join(root, "build", "libbunbox.so"))).toBe("loaded");
  });

  test("a shim built for another ABI version is refused, naming BUNBOX_SHIM and both versions", () => {
    const variant = join(dir, "v999");
    const path = buildShimIn({ dir: variant, cflags: ["-DBB_ABI_VERSION=999"] });
    const out = loadWith(path);
    expect(out).toStartWith(`BunboxError: BUNBOX_SHIM=${path} was built for ABI version 999 (BB_ABI_VERSION), this bunbox needs version ${BB_ABI_VERSION}`);
    expect(out).toContain("unset BUNBOX_SHIM");
  }, 60_000);

  test("a library without bb_abi_layout (a shim from before it) is refused by name", () => {
    const src = join(dir, "old.c");
    const path = join(dir, "old.so");
    writeFileSync(src, "int bb_spawn_submit(void) { return 0; }\n");
    const cc = Bun.spawnSync(["gcc", "-shared", "-fPIC", "-o", path, src]);
    expect(cc.exitCode).toBe(0);
    expect(loadWith(path)).toStartWith(`BunboxError: BUNBOX_SHIM=${path} is not a bunbox shim of this version (it has no bb_abi_layout)`);
  });
});
