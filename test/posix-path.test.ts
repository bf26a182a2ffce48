/**
 * src/posix-path.ts against node:path's posix functions, on every path of a
 * generated corpus: the mount plan, the cgroup layout and the shim's loader
 * use ours (node:path costs every start its evaluation), and must compute
 * exactly what node:path would.
 */
import { describe, expect, test } from "bun:test";
import { posix } from "node:path";
import { dirname, isAbsolute, join, normalize, relative, resolve } from "../src/posix-path.ts";

/** Every path of up to four parts from these, with and without a leading and a trailing slash. */
function corpus(): string[] {
  const parts = ["a", "bc", ".", "..", "", "...", ".a", "a."];
  const out = new Set<string>(["", "/", "//", "///", ".", "..", "./", "../"]);
  const grow = (prefix: string[], depth: number) => {
    if (prefix.length > 0) {
      const body = prefix.join("/");
      for (const lead of ["", "/", "//"]) for (const tail of ["", "/", "//"]) out.add(`${lead}${body}${tail}`);
    }
    if (depth === 0) return;
    for (const p of parts) grow([...prefix, p], depth - 1);
  };
  grow([], 4);
  return [...out];
}

const PATHS = corpus();

describe("src/posix-path.ts computes what node:path does", () => {
  test(`normalize, dirname, isAbsolute and resolve, on ${PATHS.length} paths`, () => {
    const wrong: string[] = [];
    for (const p of PATHS) {
      if (normalize(p) !== posix.normalize(p)) wrong.push(`normalize(${JSON.stringify(p)}) = ${normalize(p)}, not ${posix.normalize(p)}`);
      if (dirname(p) !== posix.dirname(p)) wrong.push(`dirname(${JSON.stringify(p)}) = ${dirname(p)}, not ${posix.dirname(p)}`);
      if (isAbsolute(p) !== posix.isAbsolute(p)) wrong.push(`isAbsolute(${JSON.stringify(p)})`);
      if (resolve(p) !== posix.resolve(p)) wrong.push(`resolve(${JSON.stringify(p)}) = ${resolve(p)}, not ${posix.resolve(p)}`);
    }
    expect(wrong).toEqual([]);
  });

  test("join and relative, on pairs of them", () => {
    const some = PATHS.filter((_, i) => i % 151 === 0);
    const wrong: string[] = [];
    for (const a of some) {
      for (const b of some) {
        if (join(a, b) !== posix.join(a, b)) wrong.push(`join(${JSON.stringify(a)}, ${JSON.stringify(b)}) = ${join(a, b)}, not ${posix.join(a, b)}`);
        if (relative(a, b) !== posix.relative(a, b)) wrong.push(`relative(${JSON.stringify(a)}, ${JSON.stringify(b)}) = ${relative(a, b)}, not ${posix.relative(a, b)}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(join()).toBe(posix.join());
    expect(resolve("/a", "b", "../c")).toBe(posix.resolve("/a", "b", "../c"));
    expect(resolve("x", "/a", "", "b")).toBe(posix.resolve("x", "/a", "", "b"));
  });
});
