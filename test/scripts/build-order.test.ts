/**
 * scripts/build.ts on a fresh checkout: it builds the shim first, so none of
 * the modules it imports statically may reach src/native/library.ts, whose
 * import of build/libbunbox.so fails until the shim exists.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const transpiler = new Bun.Transpiler({ loader: "ts" });

/** Every local module `file` reaches through static imports. */
function staticallyReached(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  for (const i of transpiler.scanImports(readFileSync(file, "utf8").replace(/^#!.*/, ""))) {
    if (i.kind !== "import-statement" || !i.path.startsWith(".")) continue;
    const target = join(dirname(file), i.path);
    if (target.endsWith(".ts")) staticallyReached(target, seen);
    else seen.add(target);
  }
  return seen;
}

test("scripts/build.ts reaches no module that embeds the shim before it has built it", () => {
  const reached = [...staticallyReached(join(ROOT, "scripts/build.ts"))].map((f) => f.slice(ROOT.length + 1));
  expect(reached).toContain("scripts/build-shim.ts"); // the walk is real
  expect(reached.filter((f) => f === "src/native/library.ts" || f.endsWith("libbunbox.so"))).toEqual([]);
});
