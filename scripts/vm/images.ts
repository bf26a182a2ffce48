/**
 * What QEMU boots: a Debian kernel image, and an initramfs holding the
 * guest's userland (Debian 12's busybox and glibc, in a merged-/usr layout as
 * Debian lays it out), the bunbox under test with its fixtures, and the
 * smoke suite (scripts/vm/guest/).
 */
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, renameSync } from "node:fs";
import { join } from "node:path";
import type { Artifacts } from "./build.ts";
import { type ArchInfo, CACHE, type KernelInfo, ROOT, USERLAND_PACKAGES, USERLAND_SUITE } from "./config.ts";
import { type Entry, fileFrom, writeCpio } from "./cpio.ts";
import { Archive, unpack } from "./debian.ts";
import { RigError } from "./host.ts";

export interface Kernel {
  /** linux-image-6.1.0-57-cloud-amd64 */
  package: string;
  /** 6.1.192-3 */
  version: string;
  image: string;
  /** The kernel's .config, as Debian ships it in /boot. */
  config: string;
}

const archives = new Map<string, Archive>();
function archive(suite: string, arch: ArchInfo): Archive {
  const key = `${suite}-${arch.deb}`;
  let a = archives.get(key);
  if (!a) {
    a = new Archive(suite, arch.deb);
    a.update();
    archives.set(key, a);
  }
  return a;
}

/**
 * The newest kernel of the release that can be downloaded: a security
 * update's package list may name a .deb the mirror does not have (seen for
 * bullseye's arm64 LTS kernels), so older versions are tried in turn.
 */
export function fetchKernel(k: KernelInfo, arch: ArchInfo): Kernel {
  const a = archive(k.suite, arch);
  const problems: string[] = [];
  for (const { pkg, version } of a.dependencies(arch.kernelPackage, "linux-image-")) {
    const dir = join(CACHE, "kernels", `${pkg}_${version}`);
    const release = pkg.replace(/^linux-image-/, "");
    const image = join(dir, "boot", `vmlinuz-${release}`);
    const config = join(dir, "boot", `config-${release}`);
    try {
      if (!existsSync(image) || !existsSync(config)) unpack(a.download(pkg, version), dir, "./boot");
    } catch (e) {
      problems.push((e as Error).message);
      continue;
    }
    if (!existsSync(image)) throw new RigError(`${pkg} ${version} has no /boot/vmlinuz-${release}`);
    return { package: pkg, version, image, config };
  }
  throw new RigError(`no ${arch.kernelPackage} of ${k.suite} could be downloaded:\n${problems.join("\n")}`);
}

/** The userland packages unpacked into one tree (cached per their versions). */
function fetchUserland(arch: ArchInfo): string {
  const a = archive(USERLAND_SUITE, arch);
  const versions = USERLAND_PACKAGES.map((p) => `${p}_${a.version(p)}`);
  const dir = join(CACHE, "userland", `${arch.deb}-${versions.join("-").replaceAll(":", "%3a")}`);
  if (!existsSync(join(dir, ".done"))) {
    for (const p of USERLAND_PACKAGES) unpack(a.download(p), dir);
    Bun.write(join(dir, ".done"), versions.join("\n"));
  }
  return dir;
}

/** Debian's top-level directories as merged /usr has them (bin -> usr/bin, ...). */
const MERGED: Record<string, string> = { bin: "usr/bin", sbin: "usr/sbin", lib: "usr/lib", lib64: "usr/lib64" };
/** Not needed by the guest: documentation, and gconv (charset modules, ~8 MiB). */
const SKIP = [/^usr\/share(\/|$)/, /\/gconv(\/|$)/];

/** A host tree's files, directories and symlinks, under merged-/usr paths. */
function treeEntries(dir: string): Entry[] {
  const out: Entry[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      if (name === ".done") continue;
      const from = rel ? `${rel}/${name}` : name;
      const top = from.split("/")[0]!;
      const to = MERGED[top] ? MERGED[top] + from.slice(top.length) : from;
      if (SKIP.some((re) => re.test(to))) continue;
      const st = lstatSync(join(dir, from));
      if (st.isSymbolicLink()) out.push({ kind: "symlink", path: to, target: readlinkSync(join(dir, from)) });
      else if (st.isDirectory()) {
        out.push({ kind: "dir", path: to, mode: st.mode & 0o7777 });
        walk(from);
      } else out.push({ kind: "file", path: to, mode: st.mode & 0o7777, data: readFileSync(join(dir, from)) });
    }
  };
  walk("");
  return out;
}

/** Writes the initramfs for one arch; the same for every kernel and cgroup set-up. */
export function makeInitramfs(art: Artifacts, out: string): void {
  const guest = join(ROOT, "scripts", "vm", "guest");
  const entries: Entry[] = [
    { kind: "dir", path: "usr/bin" },
    { kind: "dir", path: "usr/sbin" },
    { kind: "dir", path: "usr/lib" },
    ...Object.entries(MERGED)
      .filter(([top]) => top !== "lib64" || art.arch.name === "x86_64")
      .map(([top, target]): Entry => ({ kind: "symlink", path: top, target })),
    ...treeEntries(fetchUserland(art.arch)),
    { kind: "dir", path: "dev" },
    // The kernel opens /dev/console for init before anything is mounted.
    { kind: "char", path: "dev/console", mode: 0o600, major: 5, minor: 1 },
    { kind: "dir", path: "proc", mode: 0o555 },
    { kind: "dir", path: "sys", mode: 0o555 },
    { kind: "dir", path: "tmp", mode: 0o1777 },
    { kind: "dir", path: "etc" },
    { kind: "dir", path: "opt/bunbox" },
    fileFrom("init", join(guest, "init.sh")),
    fileFrom("opt/bunbox/smoke.sh", join(guest, "smoke.sh")),
    fileFrom("opt/bunbox/containment.sh", join(guest, "containment.sh")),
    fileFrom("opt/bunbox/stress.sh", join(guest, "stress.sh")),
    fileFrom("opt/bunbox/bunbox", art.bunbox),
    fileFrom("opt/bunbox/libbunbox.so", art.shim),
    fileFrom("opt/bunbox/library.js", art.library, 0o644),
    ...readdirSync(art.fixtures).map((f) => fileFrom(`opt/bunbox/fx/${f}`, join(art.fixtures, f))),
  ];
  // Written aside and renamed: a QEMU of another run may be reading `out`.
  writeCpio(`${out}.${process.pid}`, entries);
  renameSync(`${out}.${process.pid}`, out);
}
