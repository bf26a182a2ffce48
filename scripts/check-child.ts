/**
 * The build's check of the code that runs between clone and execve (A and B,
 * csrc/child.h lists their units): it runs in Bun's address space, on the
 * TLS of the spawner thread that cloned it, so it must not call into libc
 * (a wrapper writes that thread's errno; a lazily bound or interposed PLT
 * slot runs ld.so's resolver), touch thread-local storage, or reach anything
 * outside its own units.
 *
 * How: the child units are compiled and linked together on their own, as one
 * relocatable object (`cc -r`), with hidden visibility. Whatever they call
 * or read that they do not define themselves (glibc's getpid, errno's
 * __errno_location, memset emitted for a loop, __stack_chk_fail, libgcc's
 * outline atomics) is then an undefined symbol of that object; a symbol of
 * default visibility could be interposed, and so called through the PLT once
 * linked into the shim; TLS shows as a TLS symbol or relocation. readelf
 * reads any ELF, so a cross-compiled object is checked the same way.
 */

export interface ChildBuild {
  /** The C compiler (CC, or gcc). */
  cc: string;
  /** Flags shared with the rest of the shim (warnings, optimisation). */
  cflags: string[];
  sources: string[];
  out: string;
}

/** Flags every child unit is compiled with, for the compiler's target. */
export function childFlags(cc: string): string[] {
  const flags = ["-fPIC", "-fvisibility=hidden", "-fno-stack-protector", "-r", "-nostdlib"];
  const target = Bun.spawnSync([cc, "-dumpmachine"]).stdout.toString();
  // GCC on aarch64 calls libgcc's __aarch64_cas4 etc. for atomics unless told
  // to inline them (LSE or LL/SC).
  if (target.startsWith("aarch64")) flags.push("-mno-outline-atomics");
  return flags;
}

/** Compiles and links `sources` into one relocatable object; the compiler's output, or "" on success. */
export function buildChildObject(b: ChildBuild): string {
  const proc = Bun.spawnSync([b.cc, ...b.cflags, ...childFlags(b.cc), "-o", b.out, ...b.sources], { stderr: "pipe", stdout: "pipe" });
  if (proc.exitCode === 0) return "";
  return `${proc.stdout.toString()}${proc.stderr.toString()}` || `${b.cc} exited ${proc.exitCode}`;
}

function readelf(args: string[], obj: string): string {
  const proc = Bun.spawnSync(["readelf", "-W", ...args, obj], { stderr: "pipe", stdout: "pipe" });
  if (proc.exitCode !== 0) throw new Error(`readelf ${args.join(" ")} ${obj}: ${proc.stderr.toString().trim()} (is binutils installed?)`);
  return proc.stdout.toString();
}

/**
 * What is wrong with a child object: one line per problem, none when it is
 * self-contained. `entries` are the functions that must be defined in it.
 */
export function childObjectProblems(obj: string, entries: readonly string[]): string[] {
  const problems: string[] = [];
  const defined = new Set<string>();
  //   Num:    Value          Size Type    Bind   Vis      Ndx Name
  //    12: 0000000000000000     0 NOTYPE  GLOBAL DEFAULT  UND getpid
  const sym = /^\s*\d+:\s+[0-9a-f]+\s+\d+\s+(\w+)\s+(\w+)\s+(\w+)(?:\s+\[[^\]]*\])?\s+(\w+)\s*(\S*)/;
  for (const line of readelf(["--syms"], obj).split("\n")) {
    const m = sym.exec(line);
    if (!m) continue;
    const [, type, bind, vis, ndx, name] = m;
    if (!name) continue;
    if (ndx === "UND") {
      problems.push(
        name === "_GLOBAL_OFFSET_TABLE_"
          ? "refers to the GOT (a call through the PLT, or an address from elsewhere)"
          : `uses ${name}, which the child code does not define (a libc or libgcc call?)`,
      );
      continue;
    }
    if (type === "TLS") problems.push(`${name} is thread-local`);
    if ((bind === "GLOBAL" || bind === "WEAK") && vis === "DEFAULT" && (type === "FUNC" || type === "OBJECT")) {
      problems.push(`${name} has default visibility: once linked into the shim, a call to it may go through the PLT`);
    }
    if (type === "FUNC") defined.add(name);
  }
  for (const line of readelf(["--relocs"], obj).split("\n")) {
    const m = /^\s*[0-9a-f]+\s+[0-9a-f]+\s+(R_\w*(?:TLS|TPOFF|TPREL|DTPMOD|DTPOFF|DTPREL)\w*)\s+[0-9a-f]*\s*(\S*)/.exec(line);
    if (m) problems.push(`thread-local storage: ${m[1]}${m[2] ? ` against ${m[2]}` : ""}`);
  }
  for (const e of entries) if (!defined.has(e)) problems.push(`the entry point ${e} is not defined here`);
  return [...new Set(problems)];
}
