/**
 * Which chunks of the executable a start reads: scripts/build.ts builds
 * with code splitting, so that a module reached only through import() or a
 * call of require() sits in a chunk of its own, read when that code runs.
 * `lazyOnlyProblems` checks, on the bundler's metafile, that some packages
 * (citty renders --help, consola prints messages, valibot checks policy
 * files) are in such chunks only: `bunbox run -- /bin/true` must not pay
 * for them (README.md, "Start-up").
 */

/** The part of `bun build --metafile` this reads. */
export interface Metafile {
  outputs: Record<string, { entryPoint?: string; inputs?: Record<string, unknown>; imports?: { path: string; kind: string }[] }>;
  inputs?: Record<string, { imports?: { path: string; kind: string; external?: boolean }[] }>;
}

/** The outputs a start of `entry` reads before any of its code runs: the entry chunk and what it imports statically. */
export function readAtStart(meta: Metafile, entry: string): Set<string> {
  const first = Object.keys(meta.outputs).find((k) => meta.outputs[k]!.entryPoint === entry);
  if (!first) throw new Error(`metafile: no output for the entry point ${entry}`);
  const seen = new Set<string>();
  const todo = [first];
  while (todo.length > 0) {
    const out = todo.pop()!;
    if (seen.has(out)) continue;
    seen.add(out);
    for (const i of meta.outputs[out]?.imports ?? []) {
      // import() and require() read their chunk when they run; a static import before anything runs.
      if (i.kind === "import-statement") todo.push(i.path.startsWith("./") ? i.path : `./${i.path}`);
    }
  }
  return seen;
}

/**
 * Why `packages` are not all lazily loaded in this build (empty: they are):
 * none may be in a chunk that a start of any of `entries` reads (the
 * executable's entry point, and what a command imports when it runs, such
 * as src/cli/run.ts).
 */
export function lazyOnlyProblems(meta: Metafile, entries: readonly string[], packages: readonly string[]): string[] {
  const problems: string[] = [];
  for (const pkg of packages) {
    const dir = `node_modules/${pkg}/`;
    const holders = Object.keys(meta.outputs).filter((o) => Object.keys(meta.outputs[o]!.inputs ?? {}).some((i) => i.includes(dir)));
    if (holders.length === 0) problems.push(`${pkg} is in no chunk of the build`);
    for (const entry of entries) {
      const atStart = readAtStart(meta, entry);
      for (const o of holders.filter((h) => atStart.has(h))) problems.push(`${pkg} is in ${o}, which every start of ${entry} reads`);
    }
  }
  return problems;
}

/**
 * The runtime's own modules (node:fs, bun:ffi, …) that a start of any of
 * `entries` evaluates before its code runs: those the modules of the chunks
 * it reads import statically. Each costs its evaluation at every start
 * (node:url ~1 ms of CPU here), so what only some runs need is required
 * where it is used.
 */
export function builtinsAtStart(meta: Metafile, entries: readonly string[]): string[] {
  const found = new Set<string>();
  for (const entry of entries) {
    for (const out of readAtStart(meta, entry)) {
      for (const input of Object.keys(meta.outputs[out]?.inputs ?? {})) {
        for (const i of meta.inputs?.[input]?.imports ?? []) {
          if (i.external && i.kind === "import-statement") found.add(i.path);
        }
      }
    }
  }
  return [...found].sort();
}
