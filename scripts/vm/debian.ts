/**
 * Debian packages for the guest (kernels, busybox, glibc) through a private
 * apt configuration: one sources list, package lists and cache per release
 * and architecture under the rig's cache, so the machine's own apt sources,
 * lists and dpkg database are never read or changed. Packages are only
 * downloaded (`apt-get download`) and unpacked with dpkg-deb, never
 * installed.
 */
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CACHE } from "./config.ts";
import { run, RigError } from "./host.ts";

const MIRROR = "http://deb.debian.org";
const KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";
/** Package lists older than this are fetched again. */
const LISTS_MAX_AGE_MS = 24 * 3600 * 1000;

export class Archive {
  readonly dir: string;

  constructor(readonly suite: string, readonly arch: string) {
    this.dir = join(CACHE, "apt", `${suite}-${arch}`);
  }

  private options(): string[] {
    const d = this.dir;
    return [
      "-q",
      "-o", `Dir::Etc::sourcelist=${d}/sources.list`,
      "-o", `Dir::Etc::sourceparts=${d}/empty`,
      "-o", "Dir::Etc::preferences=/dev/null",
      "-o", `Dir::Etc::preferencesparts=${d}/empty`,
      "-o", `Dir::State::Lists=${d}/lists`,
      "-o", `Dir::State::status=${d}/status`,
      "-o", `Dir::Cache=${d}/cache`,
      "-o", `APT::Architecture=${this.arch}`,
      "-o", `APT::Architectures::=${this.arch}`,
      "-o", "Acquire::Languages=none",
      "-o", "Debug::NoLocking=1",
      ...(process.getuid?.() === 0 ? ["-o", "APT::Sandbox::User=root"] : []),
    ];
  }

  /** The package lists of the release, its updates and its security fixes (the newest kernel wins). */
  update(): void {
    const d = this.dir;
    if (!existsSync(KEYRING)) throw new RigError(`${KEYRING} is missing: apt-get install debian-archive-keyring`);
    for (const sub of ["lists/partial", "cache/archives/partial", "empty"]) mkdirSync(join(d, sub), { recursive: true });
    if (!existsSync(join(d, "status"))) writeFileSync(join(d, "status"), "");
    const s = this.suite;
    writeFileSync(
      join(d, "sources.list"),
      [`debian ${s}`, `debian ${s}-updates`, `debian-security ${s}-security`]
        .map((x) => `deb [signed-by=${KEYRING}] ${MIRROR}/${x.split(" ")[0]} ${x.split(" ")[1]} main\n`)
        .join(""),
    );
    const lists = readdirSync(join(d, "lists")).filter((f) => f.endsWith("_Packages"));
    const fresh = lists.length > 0 && lists.every((f) => Date.now() - statSync(join(d, "lists", f)).mtimeMs < LISTS_MAX_AGE_MS);
    if (!fresh) run(["apt-get", ...this.options(), "update"], `apt-get update (${s} ${this.arch})`);
  }

  /**
   * The packages a metapackage depends on whose names start with `prefix`,
   * one per version of it, newest first (linux-image-cloud-amd64 ->
   * linux-image-6.1.0-N-cloud-amd64 6.1.x-y, ...).
   */
  dependencies(meta: string, prefix: string): { pkg: string; version: string }[] {
    const out = run(["apt-cache", ...this.options(), "show", meta], `apt-cache show ${meta}`);
    const found: { pkg: string; version: string }[] = [];
    for (const record of out.split(/\n\n+/)) {
      const deps = /^Depends: (.*)$/m.exec(record)?.[1] ?? "";
      const m = deps.split(", ").map((d) => /^(\S+) \(= (\S+)\)/.exec(d)).find((d) => d?.[1]?.startsWith(prefix));
      if (m) found.push({ pkg: m[1]!, version: m[2]! });
    }
    if (found.length === 0) throw new RigError(`${meta} (${this.suite} ${this.arch}) depends on no ${prefix}* package`);
    return found.sort((a, b) => (Bun.spawnSync(["dpkg", "--compare-versions", a.version, "gt", b.version]).exitCode === 0 ? -1 : 1));
  }

  /** The candidate version of a package. */
  version(pkg: string): string {
    const out = run(["apt-cache", ...this.options(), "policy", pkg], `apt-cache policy ${pkg}`);
    const v = /Candidate: (\S+)/.exec(out)?.[1];
    if (!v || v === "(none)") throw new RigError(`${pkg} is not in ${this.suite} for ${this.arch}`);
    return v;
  }

  /** Downloads a package (its candidate unless a version is given) once; returns the .deb's path. */
  download(pkg: string, version = this.version(pkg)): string {
    const dir = join(CACHE, "debs");
    mkdirSync(dir, { recursive: true });
    // apt-get download names the file with the epoch's colon escaped.
    const stem = `${pkg}_${version.replace(":", "%3a")}`;
    const have = () => [`${stem}_${this.arch}.deb`, `${stem}_all.deb`].map((f) => join(dir, f)).find((f) => existsSync(f));
    if (!have()) run(["apt-get", ...this.options(), "download", `${pkg}=${version}`], `apt-get download ${pkg}`, { cwd: dir });
    const path = have();
    if (!path) throw new RigError(`apt-get download ${pkg} left no ${stem}_*.deb in ${dir}`);
    return path;
  }
}

/** Unpacks a .deb's files (only those under `only`, e.g. "./boot", if given) into dest. */
export function unpack(deb: string, dest: string, only?: string): void {
  mkdirSync(dest, { recursive: true });
  if (!only) {
    run(["dpkg-deb", "-x", deb, dest], `dpkg-deb -x ${deb}`);
    return;
  }
  const p = Bun.spawnSync(["sh", "-c", 'dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" "$3"', "sh", deb, dest, only], {
    stdout: "pipe",
    stderr: "pipe",
  });
  if (p.exitCode !== 0) throw new RigError(`unpacking ${only} of ${deb} failed:\n${p.stderr.toString()}`);
}
