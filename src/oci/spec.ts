/**
 * config.json of an OCI runtime bundle (runtime-spec 1.0 to 1.2), validated
 * strictly: a key the spec does not have is an error naming it, and so is a
 * field of the spec that bunbox does not carry out (OCI_FIELDS says which and
 * why). Nothing in a bundle is ignored without a word.
 */
import * as v from "valibot";
import { CpuSchema, MemorySchema, PidsSchema } from "./resources.ts";
import { SeccompSchema } from "./seccomp.ts";

const str = v.string();
const opt = v.optional;
const uint = v.pipe(v.number(), v.integer(), v.minValue(0));
const any = v.unknown();

const IdMapping = v.strictObject({ containerID: uint, hostID: uint, size: uint });

export const MountSchema = v.strictObject({
  destination: str,
  source: opt(str),
  options: opt(v.array(str)),
  type: opt(str),
  uidMappings: opt(any),
  gidMappings: opt(any),
});

const Rlimit = v.strictObject({ type: str, soft: v.union([uint, v.bigint()]), hard: v.union([uint, v.bigint()]) });

export const ProcessSchema = v.strictObject({
  terminal: opt(v.boolean()),
  consoleSize: opt(v.strictObject({ height: uint, width: uint })),
  cwd: str,
  env: opt(v.array(str)),
  args: opt(v.array(str)),
  commandLine: opt(any),
  rlimits: opt(v.array(Rlimit)),
  apparmorProfile: opt(any),
  capabilities: opt(v.strictObject({
    bounding: opt(v.array(str)), effective: opt(v.array(str)), inheritable: opt(v.array(str)),
    permitted: opt(v.array(str)), ambient: opt(v.array(str)),
  })),
  noNewPrivileges: opt(v.boolean()),
  oomScoreAdj: opt(any),
  scheduler: opt(any),
  selinuxLabel: opt(any),
  ioPriority: opt(any),
  execCPUAffinity: opt(any),
  user: opt(v.strictObject({
    uid: opt(uint),
    gid: opt(uint),
    umask: opt(any),
    additionalGids: opt(v.array(uint)),
    username: opt(any),
  })),
});

const Device = v.strictObject({
  type: str, path: str, major: opt(v.number()), minor: opt(v.number()), fileMode: opt(v.number()), uid: opt(uint), gid: opt(uint),
});
const DeviceRule = v.strictObject({
  allow: v.boolean(), type: opt(str), major: opt(v.nullable(v.number())), minor: opt(v.nullable(v.number())), access: opt(str),
});

export const LinuxSchema = v.strictObject({
  namespaces: opt(v.array(v.strictObject({ type: str, path: opt(str) }))),
  uidMappings: opt(v.array(IdMapping)),
  gidMappings: opt(v.array(IdMapping)),
  timeOffsets: opt(any),
  devices: opt(v.array(Device)),
  netDevices: opt(any),
  cgroupsPath: opt(any),
  rootfsPropagation: opt(str),
  resources: opt(v.strictObject({
    devices: opt(v.array(DeviceRule)),
    memory: opt(MemorySchema),
    cpu: opt(CpuSchema),
    blockIO: opt(any),
    hugepageLimits: opt(any),
    network: opt(any),
    pids: opt(PidsSchema),
    rdma: opt(any),
    unified: opt(any),
  })),
  intelRdt: opt(any),
  sysctl: opt(any),
  seccomp: opt(SeccompSchema),
  maskedPaths: opt(v.array(str)),
  readonlyPaths: opt(v.array(str)),
  mountLabel: opt(any),
  personality: opt(any),
  memoryPolicy: opt(any),
});

export const ConfigSchema = v.strictObject({
  ociVersion: str,
  root: opt(v.strictObject({ path: str, readonly: opt(v.boolean()) })),
  mounts: opt(v.array(MountSchema)),
  process: opt(ProcessSchema),
  hostname: opt(str),
  domainname: opt(any),
  hooks: opt(any),
  annotations: opt(v.record(str, str)),
  linux: opt(LinuxSchema),
  solaris: opt(any),
  windows: opt(any),
  vm: opt(any),
  zos: opt(any),
});
export type Config = v.InferOutput<typeof ConfigSchema>;

type Support = readonly [supported: boolean, what: string];

/**
 * Every field of the runtime spec and what bunbox does with it (README.md's
 * "OCI bundle" table is this list). A field marked unsupported is refused
 * when a bundle sets it, with this reason.
 */
export const OCI_FIELDS: Record<string, Support> = {
  ociVersion: [true, "1.0.0 to 1.2.x"],
  "root.path": [true, "the sandbox's root (relative: to the bundle)"],
  "root.readonly": [true, "read-only root (false: writable, as --root-rw)"],
  "mounts[].destination": [true, "resolved inside the root"],
  "mounts[].source": [true, "bind sources (relative: to the bundle)"],
  "mounts[].type": [true, "proc, tmpfs (a tmpfs on /dev is bunbox's minimal /dev), bind/rbind; not sysfs, mqueue, devpts, cgroup, overlay"],
  "mounts[].options": [true, "ro, rw, bind, rbind, nosuid, nodev, noexec, mode=, size=, private, rprivate, atime and harmless options; others refused"],
  "mounts[].uidMappings": [false, "idmapped mounts are not supported"],
  "mounts[].gidMappings": [false, "idmapped mounts are not supported"],
  "process.terminal": [true, "a pseudo-terminal of the sandbox's own, relayed by bunbox oci run"],
  "process.consoleSize": [true, "the pseudo-terminal's size at the start"],
  "process.cwd": [true, "the working directory"],
  "process.env": [true, "the environment, as given (PATH from it)"],
  "process.args": [true, "the command (looked up in the environment's PATH)"],
  "process.commandLine": [false, "Windows only"],
  "process.rlimits": [true, "RLIMIT_AS, CPU, FSIZE, NOFILE, NPROC, CORE (soft value for both; NOFILE at least 4 and AS at least 1M, as bunbox run); others refused"],
  "process.apparmorProfile": [false, "bunbox applies no LSM profile"],
  "process.capabilities": [true, "empty sets only: bunbox grants no capabilities"],
  "process.noNewPrivileges": [true, "always on in bunbox, whatever it says"],
  "process.oomScoreAdj": [false, "not supported"],
  "process.scheduler": [false, "not supported"],
  "process.selinuxLabel": [false, "bunbox applies no LSM label"],
  "process.ioPriority": [false, "not supported"],
  "process.execCPUAffinity": [false, "not supported"],
  "process.user.uid": [true, "the uid inside (the kernel uid stays unprivileged)"],
  "process.user.gid": [true, "the gid inside"],
  "process.user.umask": [false, "not supported"],
  "process.user.additionalGids": [true, "empty only: the sandbox maps one gid"],
  "process.user.username": [false, "Windows only"],
  hostname: [true, "the hostname (uts namespace)"],
  domainname: [false, "not supported"],
  hooks: [false, "bunbox runs no hooks"],
  annotations: [true, "accepted, no effect (as the spec says)"],
  "linux.namespaces": [true, "pid and mount must be new (sharing is refused); no network namespace: the host's network (a relaxation); user, ipc, uts, cgroup are always new; time and paths (joining one) refused"],
  "linux.uidMappings": [true, "only the one mapping bunbox makes (the uid inside to the caller's uid, size 1)"],
  "linux.gidMappings": [true, "only the one mapping bunbox makes"],
  "linux.timeOffsets": [false, "no time namespace"],
  "linux.devices": [true, "only the default devices (null, zero, full, random, urandom, tty): bunbox's /dev has them"],
  "linux.netDevices": [false, "not supported"],
  "linux.cgroupsPath": [false, "not supported"],
  "linux.rootfsPropagation": [true, "private or rprivate (bunbox's mounts never propagate)"],
  "linux.resources.devices": [true, "deny rules only (bunbox's /dev allows nothing more)"],
  "linux.resources.memory.limit": [true, "the whole sandbox's memory, as --memory-limit (at least 4M; -1: none)"],
  "linux.resources.memory.swap": [true, "only equal to memory.limit: a sandbox gets no swap past its memory limit"],
  "linux.resources.memory.reservation": [false, "not supported"],
  "linux.resources.memory.kernel": [false, "not supported (the cgroup counts kernel memory in memory.limit)"],
  "linux.resources.memory.kernelTCP": [false, "not supported"],
  "linux.resources.memory.swappiness": [false, "not supported"],
  "linux.resources.memory.disableOOMKiller": [false, "not supported: at the limit the kernel kills"],
  "linux.resources.memory.useHierarchy": [false, "not supported"],
  "linux.resources.memory.checkBeforeUpdate": [false, "not supported"],
  "linux.resources.cpu.quota": [true, "with cpu.period (default 100000), the whole sandbox's CPUs, quota/period as --cpus (0.01 to 4096; -1: none)"],
  "linux.resources.cpu.period": [true, "only with cpu.quota"],
  "linux.resources.cpu.shares": [false, "not supported (a relative weight; bunbox bounds CPU by quota)"],
  "linux.resources.cpu.burst": [false, "not supported"],
  "linux.resources.cpu.realtimeRuntime": [false, "not supported"],
  "linux.resources.cpu.realtimePeriod": [false, "not supported"],
  "linux.resources.cpu.cpus": [false, "not supported (no cpuset)"],
  "linux.resources.cpu.mems": [false, "not supported (no cpuset)"],
  "linux.resources.cpu.idle": [false, "not supported"],
  "linux.resources.pids.limit": [true, "the whole sandbox's processes, as --max-procs (at least 1; with RLIMIT_NPROC the smaller)"],
  "linux.resources.blockIO": [false, "not supported"],
  "linux.resources.hugepageLimits": [false, "not supported"],
  "linux.resources.network": [false, "not supported"],
  "linux.resources.rdma": [false, "not supported"],
  "linux.resources.unified": [false, "not supported"],
  "linux.intelRdt": [false, "not supported"],
  "linux.sysctl": [false, "not supported"],
  "linux.seccomp": [true, "compiled by bunbox (src/oci/seccomp.ts); bunbox's safety rules stay on"],
  "linux.maskedPaths": [true, "hidden (an empty directory or file over each)"],
  "linux.readonlyPaths": [true, "bound read-only onto themselves"],
  "linux.mountLabel": [false, "bunbox applies no LSM label"],
  "linux.personality": [false, "not supported"],
  "linux.memoryPolicy": [false, "not supported"],
  solaris: [false, "Solaris only"],
  windows: [false, "Windows only"],
  vm: [false, "virtual-machine runtimes only"],
  zos: [false, "z/OS only"],
};
