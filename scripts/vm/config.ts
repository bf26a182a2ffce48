/**
 * The rig's matrix: kernels (each from the Debian release that ships it),
 * architectures (with their QEMU machine, console, compilers and the Debian
 * packages they need) and cgroup set-ups, in one place.
 */
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");
/** Everything downloaded or built by the rig (ignored by git). */
export const CACHE = process.env.BUNBOX_VM_CACHE ?? join(ROOT, ".cache", "vm");

export interface KernelInfo {
  /** As the user names it: --kernel 6.1 */
  name: string;
  /** The Debian release whose kernel this is. */
  suite: string;
}

export const KERNELS: readonly KernelInfo[] = [
  { name: "5.10", suite: "bullseye" },
  { name: "6.1", suite: "bookworm" },
  { name: "6.12", suite: "trixie" },
];

/** A 32-bit program assembled for the arch's compat ABI (arm32 on aarch64). */
export interface Compat32 {
  name: string;
  source: string;
  as: string;
  ld: string;
  /** The host package that has `as` and `ld`. */
  package: string;
}

export interface ArchInfo {
  name: "x86_64" | "aarch64";
  /** Debian's name for it. */
  deb: string;
  bunTarget: string;
  /** The C compiler for the shim and fixtures, and the package that has it. */
  cc: string;
  ccPackages: string[];
  qemu: string;
  qemuPackage: string;
  /** The machine. */
  qemuArgs: string[];
  /** QEMU's `-cpu` (`bun run test:vm --cpu` overrides it). */
  cpu: string;
  console: string;
  /** The kernel metapackage; its one dependency is the versioned image. */
  kernelPackage: string;
  compat32?: Compat32;
}

export const ARCHES: Record<ArchInfo["name"], ArchInfo> = {
  x86_64: {
    name: "x86_64",
    deb: "amd64",
    bunTarget: "bun-linux-x64",
    cc: "gcc",
    ccPackages: ["gcc", "libc6-dev"],
    qemu: "qemu-system-x86_64",
    qemuPackage: "qemu-system-x86",
    qemuArgs: ["-M", "q35"],
    // Bun needs AVX2: the default TCG CPU gets SIGILL.
    cpu: "max",
    console: "ttyS0",
    kernelPackage: "linux-image-cloud-amd64",
  },
  aarch64: {
    name: "aarch64",
    deb: "arm64",
    bunTarget: "bun-linux-arm64",
    cc: "aarch64-linux-gnu-gcc",
    ccPackages: ["gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"],
    qemu: "qemu-system-aarch64",
    qemuPackage: "qemu-system-arm",
    qemuArgs: ["-M", "virt"],
    // Without SVE (and SME, its streaming mode): with QEMU's (7.2) emulated
    // SVE, code JavaScriptCore's DFG compiles crashes or computes wrongly
    // within seconds, pure JavaScript without bun:ffi too; without SVE it
    // does not. README.md ("Kernels and CPUs it is tested on") has the runs;
    // `--cpu max --stress …` repeats them.
    cpu: "max,sve=off,sme=off",
    console: "ttyAMA0",
    kernelPackage: "linux-image-cloud-arm64",
    compat32: {
      name: "arm32",
      source: "arm32.S",
      as: "arm-linux-gnueabihf-as",
      ld: "arm-linux-gnueabihf-ld",
      package: "binutils-arm-linux-gnueabihf",
    },
  },
};

/**
 * The guest's userland, for every kernel: Debian 12's, downloaded for the
 * guest's arch (busybox as the shell and tools; glibc because Bun, and so
 * the bunbox executable, is dynamically linked).
 */
export const USERLAND_SUITE = "bookworm";
export const USERLAND_PACKAGES = ["busybox-static", "libc6"];

export type CgroupMode = "cgroup2" | "cgroup1";
export const CGROUPS: readonly CgroupMode[] = ["cgroup2", "cgroup1"];
