#!/usr/bin/env bun
/**
 * The TS↔C ABI from its one definition, csrc/plan.h:
 *
 *   src/native/abi.ts  (checked in) every BB_ define and enum constant, each
 *                      struct's size and field offsets, the names of enum
 *                      bb_stage and enum bb_mark for messages, and ABI_LAYOUT:
 *                      all of those values in one list;
 *   build/abi.c        (written by scripts/build-shim.ts) bb_abi_layout(), the
 *                      same list as the compiler computes it (sizeof,
 *                      offsetof), which src/native/library.ts compares with
 *                      ABI_LAYOUT when it loads the shim.
 *
 * So an offset this parser gets wrong, or a shim built from another plan.h,
 * is refused at load instead of misread. The dialect it reads is described
 * at the top of csrc/plan.h; anything else there is an error, not skipped.
 *
 * Usage: bun scripts/gen-abi.ts          rewrite src/native/abi.ts
 *        bun scripts/gen-abi.ts --check  fail if it is out of date
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
export const PLAN_H = join(root, "csrc", "plan.h");
export const ABI_TS = join(root, "src", "native", "abi.ts");

type FieldType = "u32" | "i32" | "u64" | "char";
const TYPES: Record<string, { type: FieldType; size: number }> = {
  uint32_t: { type: "u32", size: 4 },
  int32_t: { type: "i32", size: 4 },
  uint64_t: { type: "u64", size: 8 },
  char: { type: "char", size: 1 },
};

interface Field {
  name: string;
  type: FieldType;
  offset: number;
  count: number;
}
interface Struct {
  name: string;
  size: number;
  fields: Field[];
}
interface Constant {
  name: string;
  value: number;
  /** As written in plan.h (hex stays hex). */
  text: string;
}
interface Enum {
  name: string;
  constants: Constant[];
}
interface Abi {
  defines: Constant[];
  enums: Enum[];
  structs: Struct[];
}

export class PlanError extends Error {}

function integer(text: string, where: string): number {
  const m = /^(0x[0-9a-fA-F]+|\d+)[uU]?$/.exec(text);
  if (!m) throw new PlanError(`csrc/plan.h: ${where}: "${text}" is not an integer literal`);
  const v = Number(m[1]);
  if (!Number.isSafeInteger(v) || v > 0xffffffff) throw new PlanError(`csrc/plan.h: ${where}: ${text} does not fit 32 bits`);
  return v;
}

/** Reads csrc/plan.h's dialect; throws PlanError on anything else. */
export function parsePlan(text: string): Abi {
  const src = text.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/.*$/gm, "");
  const abi: Abi = { defines: [], enums: [], structs: [] };
  const known = new Map<string, number>();

  for (const line of src.split("\n")) {
    const t = line.trim();
    if (!t.startsWith("#")) continue;
    const d = /^#\s*define\s+(\w+)(?:\s+(.*))?$/.exec(t);
    if (!d) continue; // #ifndef, #endif, #include
    const [, name, value] = d;
    if (value === undefined || value.trim() === "") continue; // include guard
    if (!name!.startsWith("BB_")) throw new PlanError(`csrc/plan.h: #define ${name}: ABI names start with BB_`);
    const v = integer(value.trim(), `#define ${name}`);
    abi.defines.push({ name: name!, value: v, text: value.trim().replace(/[uU]$/, "") });
    known.set(name!, v);
  }

  for (const m of src.matchAll(/enum\s+(\w+)\s*\{([^}]*)\}\s*;/g)) {
    const e: Enum = { name: m[1]!, constants: [] };
    let next = 0;
    for (const part of m[2]!.split(",").map((p) => p.trim()).filter(Boolean)) {
      const c = /^(\w+)(?:\s*=\s*(\S+))?$/.exec(part);
      if (!c) throw new PlanError(`csrc/plan.h: enum ${e.name}: cannot read "${part}"`);
      const value = c[2] === undefined ? next : integer(c[2], `enum ${e.name} ${c[1]}`);
      e.constants.push({ name: c[1]!, value, text: String(value) });
      next = value + 1;
    }
    abi.enums.push(e);
  }

  for (const m of src.matchAll(/struct\s+(\w+)\s*\{([^}]*)\}\s*;/g)) {
    const s: Struct = { name: m[1]!, size: 0, fields: [] };
    let offset = 0;
    let align = 1;
    for (const decl of m[2]!.split(";").map((p) => p.trim()).filter(Boolean)) {
      const d = /^(\w+)\s+(.+)$/.exec(decl);
      const t = d && TYPES[d[1]!];
      if (!d || !t) throw new PlanError(`csrc/plan.h: struct ${s.name}: cannot read "${decl}" (types: ${Object.keys(TYPES).join(", ")})`);
      for (const one of d[2]!.split(",").map((p) => p.trim())) {
        const f = /^(\w+)(?:\[(\w+)\])?$/.exec(one);
        if (!f) throw new PlanError(`csrc/plan.h: struct ${s.name}: cannot read field "${one}"`);
        const n = f[2] === undefined ? 1 : known.get(f[2]) ?? integer(f[2], `struct ${s.name}.${f[1]}`);
        offset = Math.ceil(offset / t.size) * t.size;
        s.fields.push({ name: f[1]!, type: t.type, offset, count: n });
        offset += t.size * n;
        align = Math.max(align, t.size);
      }
    }
    s.size = Math.ceil(offset / align) * align;
    abi.structs.push(s);
  }
  if (!abi.defines.some((d) => d.name === "BB_ABI_VERSION")) throw new PlanError("csrc/plan.h: no BB_ABI_VERSION");
  return abi;
}

/** "BB_ST_PIVOT_ROOT" -> "pivot-root", the prefix being what every constant shares. */
function names(e: Enum): string[] | undefined {
  if (!e.constants.every((c, i) => c.value === i)) return undefined;
  let prefix = e.constants[0]!.name;
  for (const c of e.constants) while (!c.name.startsWith(prefix)) prefix = prefix.slice(0, -1);
  prefix = prefix.slice(0, prefix.lastIndexOf("_") + 1);
  return e.constants.map((c) => c.name.slice(prefix.length).toLowerCase().replaceAll("_", "-"));
}

/** Every value, version first: the order of ABI_LAYOUT and of bb_abi_layout(). */
function layout(abi: Abi): { label: string; c: string; value: number }[] {
  const version = abi.defines.find((d) => d.name === "BB_ABI_VERSION")!;
  const out = [{ label: version.name, c: version.name, value: version.value }];
  for (const d of abi.defines) if (d !== version) out.push({ label: d.name, c: d.name, value: d.value });
  for (const e of abi.enums) for (const c of e.constants) out.push({ label: c.name, c: c.name, value: c.value });
  for (const s of abi.structs) {
    out.push({ label: `sizeof(struct ${s.name})`, c: `sizeof(struct ${s.name})`, value: s.size });
    for (const f of s.fields) {
      const off = `offsetof(struct ${s.name}, ${f.name})`;
      out.push({ label: off, c: off, value: f.offset });
    }
  }
  return out;
}

const HEADER = "Generated by scripts/gen-abi.ts from csrc/plan.h: do not edit (run `bun scripts/gen-abi.ts`).";

export function generateTs(abi: Abi): string {
  const o: string[] = [];
  o.push(`/**\n * The TS↔C ABI (csrc/plan.h says what each value means).\n * ${HEADER}\n */`);
  o.push("");
  o.push(`export type FieldType = "u32" | "i32" | "u64" | "char";`);
  o.push(`/** A struct field: byte offset, type, and element count (arrays). */`);
  o.push(`export interface Field {\n  readonly offset: number;\n  readonly type: FieldType;\n  readonly count: number;\n}`);
  o.push("");
  for (const d of abi.defines) o.push(`export const ${d.name} = ${d.text};`);
  for (const e of abi.enums) {
    o.push("");
    o.push(`/* enum ${e.name} */`);
    for (const c of e.constants) o.push(`export const ${c.name} = ${c.value};`);
    const n = names(e);
    if (n) {
      o.push(`/** enum ${e.name} by value, as the words of messages. */`);
      o.push(`export const ${e.name.toUpperCase()}_NAMES = [${n.map((x) => JSON.stringify(x)).join(", ")}] as const;`);
    }
  }
  for (const s of abi.structs) {
    o.push("");
    o.push(`/** struct ${s.name}: its size, and each field. */`);
    o.push(`export const ${s.name.toUpperCase()} = {`);
    o.push(`  sizeof: ${s.size},`);
    for (const f of s.fields) o.push(`  ${f.name}: { offset: ${f.offset}, type: "${f.type}", count: ${f.count} },`);
    o.push(`} as const satisfies { sizeof: number } & Record<string, Field | number>;`);
  }
  o.push("");
  o.push("/** Every value above, BB_ABI_VERSION first: what the shim's bb_abi_layout() must report. */");
  o.push("export const ABI_LAYOUT: readonly (readonly [label: string, value: number])[] = [");
  for (const l of layout(abi)) o.push(`  [${JSON.stringify(l.label)}, ${l.value}],`);
  o.push("];");
  return `${o.join("\n")}\n`;
}

export function generateC(abi: Abi): string {
  const entries = layout(abi).map((l) => `    ${l.c},`).join("\n");
  return `/* ${HEADER} */
#include <stddef.h>
#include <stdint.h>

#include "plan.h"
#include "sys.h"

/*
 * csrc/plan.h as this compiler lays it out, for src/native/library.ts, which
 * refuses a shim whose list differs from its own (src/native/abi.ts). Copies
 * at most cap values to out and returns how many there are. Entry 0 is
 * BB_ABI_VERSION in every version, so that any bunbox can say which one a
 * shim was built for.
 */
BB_API uint32_t bb_abi_layout(uint64_t *out, uint32_t cap) {
  static const uint64_t layout[] = {
${entries}
  };
  uint32_t n = sizeof layout / sizeof layout[0];
  for (uint32_t i = 0; i < n && i < cap; i++) out[i] = layout[i];
  return n;
}
`;
}

export function planAbi(): Abi {
  return parsePlan(readFileSync(PLAN_H, "utf8"));
}

/** Throws if src/native/abi.ts is not what csrc/plan.h makes. */
export function checkAbiTs(abi = planAbi()): void {
  let current = "";
  try {
    current = readFileSync(ABI_TS, "utf8");
  } catch {
    // missing: reported below
  }
  if (current !== generateTs(abi)) {
    throw new PlanError("src/native/abi.ts is out of date with csrc/plan.h: run `bun scripts/gen-abi.ts`");
  }
}

if (import.meta.main) {
  try {
    const abi = planAbi();
    if (process.argv.includes("--check")) checkAbiTs(abi);
    else writeFileSync(ABI_TS, generateTs(abi));
  } catch (e) {
    if (!(e instanceof PlanError)) throw e;
    console.error(`bunbox: ${e.message}`);
    process.exit(1);
  }
}
