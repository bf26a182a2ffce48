/**
 * `"allowIf"`: a syscall allowed when its arguments match, written with the
 * arguments' names and values by name (src/policy/argspec.ts), the form
 * `bunbox learn` writes and violation reports suggest:
 *
 *   "allowIf": {
 *     "socket": [{ "family": "AF_UNIX", "type": ["SOCK_STREAM|SOCK_CLOEXEC", "SOCK_DGRAM|SOCK_CLOEXEC"] }],
 *     "openat": [{ "flags": { "subsetOf": "O_RDONLY|O_CLOEXEC|O_DIRECTORY" } }]
 *   }
 *
 * Each syscall has a list of alternatives; the call is allowed when one
 * alternative matches, and an alternative matches when every argument it
 * names does: equal to the value (or to one of a list), or with no bit
 * outside `subsetOf`. Anything else falls through to the policy's next rule
 * for the syscall, then its default action. Named arguments (every one with
 * values by name is an int to the kernel) are compared on their low 32 bits,
 * as the kernel reads them; any other argument (`"arg2"`, a pointer) on all
 * 64.
 *
 * The same file serves x86_64 and aarch64: values are names, and a syscall
 * one arch lacks is read as the call that arch makes instead (open is
 * openat on aarch64, with the same `flags`); one without an equivalent
 * (arch_prctl) is left out there. `portableName` has the table.
 */
import { type NameTable, nameTable, quote } from "../names.ts";
import { nearest } from "../near.ts";
import { ARCHES, type Arch } from "./arch.ts";
import { type ArgSpec, argSpec, argSpecs, parseValue } from "./argspec.ts";
import { ALLOW, arg, arg32, type Fragment, goto, jeq, jset, label } from "./rules.ts";

export type ValueText = string | number;
/** A value, one of several, or bits that may be set (`{ "subsetOf": "A|B" }`). */
export type Condition = ValueText | readonly ValueText[] | { readonly subsetOf: ValueText };
/** Argument name (or "arg0".."arg5") → condition; all must hold. */
export type Alternative = Readonly<Record<string, Condition>>;

/**
 * x86_64's older syscalls that aarch64 (asm-generic) replaced, with what
 * libc calls there instead. `implied`: the arguments libc passes the
 * replacement for that call, allowed when the old call was (aarch64's fork
 * is clone(SIGCHLD|…), its creat an openat with O_CREAT|O_WRONLY|O_TRUNC).
 */
const EQUIVALENT = nameTable<Record<string, { to: string; implied?: Alternative }>>({
  open: { to: "openat" },
  creat: { to: "openat", implied: { flags: "O_WRONLY|O_CREAT|O_TRUNC" } },
  stat: { to: "newfstatat" },
  lstat: { to: "newfstatat" },
  access: { to: "faccessat" },
  poll: { to: "ppoll" },
  select: { to: "pselect6" },
  pause: { to: "ppoll" },
  pipe: { to: "pipe2" },
  dup2: { to: "dup3" },
  alarm: { to: "setitimer" },
  fork: { to: "clone", implied: { clone_flags: { subsetOf: "SIGCHLD|CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID" } } },
  vfork: { to: "clone", implied: { clone_flags: { subsetOf: "SIGCHLD|CLONE_VM|CLONE_VFORK" } } },
  getdents: { to: "getdents64" },
  rename: { to: "renameat" },
  mkdir: { to: "mkdirat" },
  rmdir: { to: "unlinkat" },
  unlink: { to: "unlinkat" },
  link: { to: "linkat" },
  symlink: { to: "symlinkat" },
  readlink: { to: "readlinkat" },
  chmod: { to: "fchmodat" },
  chown: { to: "fchownat" },
  lchown: { to: "fchownat" },
  getpgrp: { to: "getpgid" },
  utime: { to: "utimensat" },
  utimes: { to: "utimensat" },
  futimesat: { to: "utimensat" },
  mknod: { to: "mknodat" },
  time: { to: "clock_gettime" },
  epoll_create: { to: "epoll_create1" },
  epoll_wait: { to: "epoll_pwait" },
  inotify_init: { to: "inotify_init1" },
  signalfd: { to: "signalfd4" },
  eventfd: { to: "eventfd2" },
});

/** Whether some arch bunbox knows has a syscall of this name. */
export function knownAnywhere(name: unknown): name is string {
  return typeof name === "string" && Object.values(ARCHES).some((a) => a.syscalls[name] !== undefined);
}

/**
 * What `name` is on `arch`: itself, its replacement there (with the
 * arguments libc passes it), or undefined when the arch has no such call
 * (only for names some other arch has: the caller reports a typo).
 */
export function portableName(arch: Arch, name: string): { name: string; implied?: Alternative } | undefined {
  if (arch.syscalls[name] !== undefined) return { name };
  const eq = EQUIVALENT[name];
  if (eq && arch.syscalls[eq.to] !== undefined) return { name: eq.to, ...(eq.implied ? { implied: eq.implied } : {}) };
  return undefined;
}

/** `alt`, written for syscall `from`, with its argument names as `to` has them (open's flags are openat's flags). */
export function renameArgs(arch: Arch, from: string, to: string, alt: Alternative): Alternative | string {
  if (from === to) return alt;
  const out: Record<string, Condition> = {};
  for (const [ref, cond] of Object.entries(alt)) {
    const name = argSpec(arch.name, from, ref)?.name ?? ref;
    if (!argSpec(arch.name, to, name)) return `${from}'s argument ${quote(ref)} has no counterpart in ${to} on ${arch.name}`;
    out[name] = cond;
  }
  return out;
}

const isSubset = (c: Condition): c is { readonly subsetOf: ValueText } =>
  typeof c === "object" && c !== null && !Array.isArray(c) && Object.hasOwn(c, "subsetOf");

/** Named arguments are ints to the kernel: compared on 32 bits. Others (pointers, longs) on 64. */
const widthOf = (spec: ArgSpec): 32 | 64 => (spec.values ? 32 : 64);

/**
 * The argument program for `alternatives` of syscall `name` on `arch`, or
 * the problems with them (`where` names the field: "allowIf.ioctl.0.cmd").
 */
export function allowIfFragment(arch: Arch, name: string, alternatives: readonly Alternative[], where: string): { fragment: Fragment } | { problems: string[] } {
  const problems: string[] = [];
  const out: Fragment[number][] = [];
  if (!Array.isArray(alternatives) || alternatives.length === 0) return { problems: [`${where}: no alternatives (give at least one object of argument conditions)`] };
  alternatives.forEach((alt, i) => {
    const at = `${where}.${i}`;
    if (typeof alt !== "object" || alt === null || Array.isArray(alt)) {
      problems.push(`${at}: not an object of argument conditions`);
      return;
    }
    const entries = Object.entries(alt);
    if (entries.length === 0) problems.push(`${at}: no argument conditions (to allow ${name} whatever its arguments, list it in "allow")`);
    const next = `allowIf.${i}.next`;
    for (const [ref, cond] of entries as [string, Condition][]) {
      const spec = argSpec(arch.name, name, ref);
      if (!spec) {
        problems.push(`${at}.${ref}: ${name} has no argument ${quote(ref)} (its arguments: ${argNames(arch, name)})`);
        continue;
      }
      const width = widthOf(spec);
      const value = (v: ValueText, path: string): bigint | undefined => {
        const r = parseValue(spec, v);
        if (typeof r === "string") {
          problems.push(`${path}: ${r}`);
          return undefined;
        }
        const fits = width === 64 || (r <= 0xffffffffn && r >= -0x80000000n);
        if (!fits) problems.push(`${path}: ${v} does not fit the argument's 32 bits`);
        return fits ? BigInt.asUintN(width, r) : undefined;
      };
      out.push(width === 32 ? arg32(spec.index) : arg(spec.index));
      if (isSubset(cond)) {
        const mask = value(cond.subsetOf, `${at}.${ref}.subsetOf`);
        const outside = mask === undefined ? 0n : BigInt.asUintN(width, ~mask);
        if (outside !== 0n) out.push(jset(outside, next));
        continue;
      }
      const values = Array.isArray(cond) ? cond : [cond];
      if (values.length === 0 || (typeof cond === "object" && !Array.isArray(cond))) {
        problems.push(`${at}.${ref}: give a value, a list of values or { "subsetOf": … }`);
        continue;
      }
      const ok = `allowIf.${i}.${spec.index}.ok`;
      values.forEach((v: ValueText, j: number) => {
        const n = value(v, Array.isArray(cond) ? `${at}.${ref}.${j}` : `${at}.${ref}`);
        if (n !== undefined) out.push(jeq(n, ok));
      });
      out.push(goto(next), label(ok));
    }
    out.push(ALLOW, label(next));
  });
  return problems.length ? { problems } : { fragment: out };
}

function argNames(arch: Arch, name: string): string {
  const names = argSpecs(arch.name, name).map((s) => s.name);
  return names.length ? names.join(", ") : "none known by name; use arg0..arg5";
}

/** A policy's portable syscalls resolved for one arch: each target allowed outright, or under conditions. */
export interface PortableRules {
  outright: Set<string>;
  conditional: Map<string, Alternative[]>;
  problems: string[];
}

/**
 * `allow` and `allowIf`, written for any arch, as `arch` has them: each name
 * mapped to what the arch calls instead (portableName), conditions renamed
 * with it; a call allowed outright needs no conditions besides. Names no
 * arch knows are problems (a typo); names only other arches have, and with
 * no counterpart here, are left out.
 */
export function resolvePortable(
  arch: Arch,
  allow: readonly string[],
  allowIf: NameTable<readonly Alternative[]> | Readonly<Record<string, readonly Alternative[]>>,
  where = "",
): PortableRules {
  const out: PortableRules = { outright: new Set(), conditional: new Map(), problems: [] };
  const at = (s: string) => (where ? `${where}: ${s}` : s);
  const add = (target: string, alts: readonly Alternative[]) => out.conditional.set(target, [...(out.conditional.get(target) ?? []), ...alts]);
  const unknown = (name: unknown) => {
    const near = typeof name === "string" ? nearest(name, Object.keys(arch.syscalls)) : [];
    return `unknown syscall ${quote(name)} on ${arch.name}${near.length ? ` (did you mean ${near.join(", ")}?)` : ""}`;
  };
  allow.forEach((name, i) => {
    if (!knownAnywhere(name)) return out.problems.push(`${at(`allow.${i}`)}: ${unknown(name)}`);
    const p = portableName(arch, name);
    if (!p) return;
    if (p.implied) add(p.name, [p.implied]);
    else out.outright.add(p.name);
  });
  for (const [name, alts] of Object.entries(allowIf)) {
    if (!knownAnywhere(name)) {
      out.problems.push(`${at(`allowIf.${name}`)}: ${unknown(name)}`);
      continue;
    }
    const p = portableName(arch, name);
    if (!p) continue;
    const list: readonly Alternative[] = Array.isArray(alts) ? alts : [alts as unknown as Alternative];
    const renamed: Alternative[] = [];
    for (const alt of list) {
      const r = typeof alt === "object" && alt !== null ? renameArgs(arch, name, p.name, alt) : alt;
      if (typeof r === "string") out.problems.push(`${at(`allowIf.${name}`)}: ${r}`);
      else renamed.push(r);
    }
    add(p.name, renamed);
  }
  for (const name of out.outright) out.conditional.delete(name);
  return out;
}
