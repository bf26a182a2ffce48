/**
 * valibot's issues for a policy file, said as a person would: "alow:
 * unknown key (did you mean allow?)", "network: \"hots\" is not one of
 * none, loopback, host (did you mean host?)", "filesystem.mounts.0: a mount
 * is an object with one of the keys bind, tmpfs, symlink (this one has
 * bnd; did you mean bind?)", instead of "Invalid key: Expected never but
 * received \"alow\"". The schema says which keys and values were possible.
 */
import type * as v from "valibot";
import { nearest } from "../near.ts";

/** The parts of a valibot schema walked here. */
interface Node {
  type: string;
  entries?: Record<string, Node>;
  wrapped?: Node;
  item?: Node;
  options?: readonly (Node | string)[];
  pipe?: readonly Node[];
  /** v.lazy: the schema for an input. */
  getter?: (input: unknown) => Node;
}

/** Through optional() to the schema that decides (a pipe's schema is its own first step). */
function unwrap(s: Node): Node {
  return s.wrapped ? unwrap(s.wrapped) : s;
}

/** The schemas a value at `path` may have had to match (a union gives several). */
function schemasAt(root: Node, path: readonly (string | number)[]): Node[] {
  let here = [unwrap(root)];
  for (const key of path) {
    const next: Node[] = [];
    for (const s of here.flatMap(expand)) {
      if (s.entries && typeof key === "string" && s.entries[key]) next.push(unwrap(s.entries[key]!));
      if (s.item && typeof key === "number") next.push(unwrap(s.item));
    }
    here = next;
  }
  return here.flatMap(expand);
}

/** A union's options, recursively (objects and picklists alike); a lazy's forms for a string and for an object ("network"). */
function expand(s: Node): Node[] {
  if (s.type === "lazy" && s.getter) return [...new Set([s.getter(""), s.getter({})])].flatMap((o) => expand(unwrap(o)));
  return s.type === "union" ? (s.options as Node[]).flatMap((o) => expand(unwrap(o))) : [s];
}

const keysOf = (schemas: Node[]) => [...new Set(schemas.flatMap((s) => Object.keys(s.entries ?? {})))];
const wordsOf = (schemas: Node[]) => [...new Set(schemas.flatMap((s) => (s.type === "picklist" ? (s.options as string[]) : [])))];
const didYouMean = (word: string, known: string[]) => {
  const near = nearest(word, known);
  return near.length ? `did you mean ${near.join(" or ")}?` : undefined;
};

export function describeIssue(issue: v.BaseIssue<unknown>, root: v.GenericSchema): string {
  const path = (issue.path ?? []).map((p) => p.key as string | number);
  const dot = path.length ? path.join(".") : "(top level)";
  const schema = root as unknown as Node;
  const input = issue.input;

  // An unknown key of a strict object: the issue's path ends at the key.
  if (issue.expected === "never" && path.length > 0) {
    const key = String(path[path.length - 1]);
    const known = keysOf(schemasAt(schema, path.slice(0, -1)));
    return `${dot}: unknown key (${didYouMean(key, known) ?? `the keys here: ${known.join(", ")}`})`;
  }
  // A key that must be there.
  if (issue.kind === "schema" && input === undefined && issue.expected?.startsWith('"')) {
    return `${dot}: missing`;
  }
  const here = schemasAt(schema, path);
  const words = wordsOf(here);
  if (typeof input === "string" && words.length && !words.includes(input)) {
    const mean = didYouMean(input, words);
    return `${dot}: "${input}" is not one of ${words.join(", ")}${mean ? ` (${mean})` : ""}`;
  }
  // An object that fits none of the forms a union allows: each form is
  // known by its first key (bind, tmpfs, symlink). With one of those, the
  // form is clear and the fault is in its other keys.
  if (issue.type === "union" && typeof input === "object" && input !== null && !Array.isArray(input)) {
    const forms = here.filter((f) => f.entries);
    const first = forms.map((f) => Object.keys(f.entries!)[0]!);
    const has = Object.keys(input);
    const form = forms.find((f, i) => has.includes(first[i]!));
    if (form) {
      const allowed = Object.keys(form.entries!);
      const stray = has.find((k) => !allowed.includes(k));
      if (stray !== undefined) return `${dot}.${stray}: unknown key (${didYouMean(stray, allowed) ?? `with ${first[forms.indexOf(form)]}: ${allowed.join(", ")}`})`;
    } else if (first.length) {
      const mean = has.map((k) => didYouMean(k, first)).find(Boolean);
      const what = [...words.map((w) => `"${w}"`), `an object with one of the keys ${first.join(", ")}`].join(", or ");
      return `${dot}: expected ${what} (this one has ${has.length ? has.join(", ") : "no key"}${mean ? `; ${mean}` : ""})`;
    }
  }
  return `${dot}: ${issue.message}`;
}
