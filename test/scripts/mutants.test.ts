/**
 * scripts/mutants.json follows the code it mutates: each mutant's text
 * occurs exactly once in its file (scripts/mutate.ts refuses it otherwise,
 * so a refactor that moves the code would silently shrink the mutation run
 * until someone ran it), and the tests it names exist.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";

const root = resolve(import.meta.dir, "../..");
const mutants = JSON.parse(readFileSync(`${root}/scripts/mutants.json`, "utf8")) as { id: string; file: string; from: string; tests: string[] }[];

describe("scripts/mutants.json", () => {
  test("ids are unique", () => {
    const ids = mutants.map((m) => m.id);
    expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
  });

  test("every mutant's text occurs exactly once in its file, and its tests exist", () => {
    const bad: string[] = [];
    for (const m of mutants) {
      const text = existsSync(`${root}/${m.file}`) ? readFileSync(`${root}/${m.file}`, "utf8") : undefined;
      const count = text === undefined ? -1 : text.split(m.from).length - 1;
      if (count !== 1) bad.push(`${m.id}: ${m.file} ${count < 0 ? "is missing" : `has its text ${count} times`}`);
      for (const t of m.tests) if (!existsSync(`${root}/${t}`)) bad.push(`${m.id}: test ${t} is missing`);
    }
    expect(bad).toEqual([]);
  });
});
