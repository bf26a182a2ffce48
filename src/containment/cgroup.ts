/**
 * A cgroup per sandbox (README.md "Containment"): made before the sandboxee
 * runs (the shim starts the sandbox's init in it: csrc/contain.c), holding
 * every process the sandbox ever has, read for the Result when it ends,
 * removed after. Here: what both versions share, and the choice between
 * them; cgroup-v2.ts and cgroup-v1.ts do the rest.
 *
 * Where they live: under a `bunbox` directory of bunbox's own cgroup, so
 * that whatever bounds bunbox (a container, a systemd unit) bounds its
 * sandboxes too, and the host's accounting still sees them as bunbox's
 * (cgroup-v2.ts says where v2 cannot). Each is named "MARK.N", MARK being
 * its owner's (owner.ts), so that a bunbox that starts later removes what a
 * dead one left (sweep).
 */
import { closeSync, constants, mkdirSync, openSync, readdirSync, rmdirSync, writeSync } from "../native/fs.ts";
import { describeErrno, errnoName } from "../native/errno.ts";
import { ContainmentError } from "./error.ts";
import { markOf, ownerGone } from "./owner.ts";
import { readText } from "../read-text.ts";

/** What a sandbox's cgroup enforces: bytes, tasks, CPUs; undefined: no limit. */
export interface CgroupLimits {
  memory: number | undefined;
  processes: number;
  cpus: number | undefined;
}

/** One entry of the request's cgroups (struct bb_cgroup, csrc/plan.h). */
export interface CgroupEntry {
  kind: "v1" | "v2";
  fd: number;
}

/** What a sandbox's cgroup counted, read once it has ended. */
export interface CgroupUsage {
  /** Most memory the sandbox held at once, bytes; undefined where the kernel does not keep it (v2 before Linux 5.19). */
  memoryPeak: number | undefined;
  /** Processes the kernel killed at the memory limit. */
  oomKills: number;
  /** Forks and clones refused at the process limit. */
  forksRefused: number;
  /** CPU time of all its processes, ms; undefined where the cgroup does not count it (v1 without cpuacct). */
  userMs: number | undefined;
  sysMs: number | undefined;
}

/** A sandbox's cgroup. */
export interface SandboxCgroup {
  readonly version: 1 | 2;
  /** Its path, for -v and the Result ("/bunbox/…", or per v1 controller). */
  readonly path: string;
  /** The fds the shim needs to start the sandbox's init in it; close them with closeEntries(). */
  entries(): CgroupEntry[];
  closeEntries(): void;
  /** What it counted; call once the sandbox has ended (its init reaped). */
  usage(): CgroupUsage;
  /** Kills what is left in it (nothing, after its init was reaped) and removes it. */
  remove(): void;
}

/** How each limit is enforced by a version's files, for -v and the Result. */
export interface CgroupFiles {
  memory: string;
  processes: string;
  cpus: string;
}

/** A cgroup version's place on this host: makes and sweeps the sandboxes' cgroups. */
export interface CgroupHost {
  readonly version: 1 | 2;
  /** Where the sandboxes' cgroups go, for -v. */
  readonly where: string;
  readonly files: CgroupFiles;
  /** Why `limit` cannot be enforced here (its controller is missing), or undefined. */
  missing(limit: keyof CgroupLimits): string | undefined;
  /** A new cgroup with these limits; throws ContainmentError. */
  create(limits: CgroupLimits): SandboxCgroup;
  /** Removes what dead bunbox processes left. */
  sweep(): void;
}

function errnoOf(e: unknown): number {
  return -((e as { errno?: number }).errno ?? -5);
}

/** Writes `value` to a cgroup file; a ContainmentError names the file and the errno. */
export function writeValue(path: string, value: string): void {
  let fd;
  try {
    fd = openSync(path, constants.O_WRONLY);
    writeSync(fd, value);
  } catch (e) {
    const n = errnoOf(e);
    throw new ContainmentError(path, n, `writing ${value} to ${path}: ${describeErrno(n)}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The "key value" lines of a cgroup file (memory.events, cpu.stat) as numbers. */
export function readKeyed(path: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of (readText(path) ?? "").split("\n")) {
    const [k, v] = line.split(" ");
    if (k && v !== undefined && /^\d+$/.test(v)) out.set(k, Number(v));
  }
  return out;
}

export function readNumber(path: string): number | undefined {
  const t = readText(path)?.trim();
  return t !== undefined && /^\d+$/.test(t) ? Number(t) : undefined;
}

export function openFd(path: string, flags: number): number {
  try {
    return openSync(path, flags); // Bun opens every file close-on-exec
  } catch (e) {
    const n = errnoOf(e);
    throw new ContainmentError(path, n, `opening ${path}: ${describeErrno(n)}`);
  }
}

/** mkdir that tolerates an existing directory; ContainmentError otherwise. */
export function makeDir(path: string): boolean {
  try {
    mkdirSync(path, { mode: 0o755 });
    return true;
  } catch (e) {
    const n = errnoOf(e);
    if (errnoName(n) === "EEXIST") return false;
    throw new ContainmentError(path, n, `creating the cgroup ${path}: ${describeErrno(n)}`);
  }
}

/** rmdir; false when the cgroup is still busy (EBUSY) or gone already. */
export function removeDir(path: string): boolean {
  try {
    rmdirSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes the cgroups in `base` whose owners are gone (owner.ts), killing
 * what still runs in each first (`kill`: the version's way).
 */
export function sweepDir(base: string, kill: (dir: string) => void): void {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) {
    const mark = markOf(name);
    if (!mark || !ownerGone(mark)) continue;
    kill(`${base}/${name}`);
    removeDir(`${base}/${name}`);
  }
}

/** Sandbox cgroup names: the owner's mark and a count. */
let seq = 0;
export function nextName(mark: string): string {
  return `${mark}.${++seq}`;
}
