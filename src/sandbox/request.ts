/**
 * Serialises one spawn into the flat buffer csrc/plan.h describes (struct
 * bb_req and its arrays). Everything the child needs is decided here, in
 * TypeScript, before the clone: the child only reads this buffer.
 */
import { encode, type Insn } from "../policy/bpf.ts";
import type { Policy } from "../policy/policy.ts";
import type { Executor } from "./executor.ts";
import type { Limits } from "./limits.ts";
import type { MountOp, MountPlan } from "./mounts.ts";

export const REQ_MAGIC = 0x78626e62;
export const REQ_VERSION = 1;

export const FLAG = { NOTIFY: 0x1, CALLER_ROOT: 0x2, NO_SECCOMP: 0x4, LOOPBACK: 0x8 } as const;

const CLONE = {
  NEWNS: 0x00020000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
} as const;

const MOUNT_KIND = { bind: 1, tmpfs: 2, proc: 3, symlink: 4, dir: 5 } as const;
const MF = { RW: 0x1, DEV: 0x2, NOEXEC: 0x4, OPTIONAL: 0x8 } as const;

/** Fields of struct bb_req, in order (all u32). */
const HEADER = [
  "magic", "version", "size", "flags", "clone_flags",
  "uid_inside", "gid_inside", "uid_outside", "gid_outside",
  "argv_off", "argc", "envp_off", "envc", "file_off", "search_path_off", "cwd_off", "hostname_off",
  "mounts_off", "nmounts", "rlimits_off", "nrlimits", "fds_off", "nfds", "bpf_off", "bpf_len",
  "exec_magic_lo", "exec_magic_hi", "setup_timeout_ms", "root_mode",
] as const;
type HeaderField = (typeof HEADER)[number];

/** The kernel ids of a sandboxee when bunbox runs as root. */
export const NOBODY = 65534;

export interface SpawnSettings {
  notify: boolean;
  /** This run's exec magic: the 6th argument of its first execveat. */
  magic: bigint;
  /** The filter installed at exec, with `magic` in it; none: no filter at exec ("sandbox me here", the fork server). */
  program?: readonly Insn[];
  mounts: MountPlan;
  setupTimeoutMs: number;
}

export interface Request {
  bytes: Uint8Array;
  uidInside: number;
  gidInside: number;
}

class Writer {
  private buf = new Uint8Array(4096);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private grow(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  align(n: number): number {
    const pad = (n - (this.length % n)) % n;
    this.grow(pad);
    this.length += pad;
    return this.length;
  }
  reserve(n: number, alignTo = 8): number {
    const at = this.align(alignTo);
    this.grow(n);
    this.length += n;
    return at;
  }
  u32(at: number, v: number): void {
    this.view.setUint32(at, v >>> 0, true);
  }
  i32(at: number, v: number): void {
    this.view.setInt32(at, v, true);
  }
  u64(at: number, v: bigint): void {
    this.view.setBigUint64(at, BigInt.asUintN(64, v), true);
  }
  bytes(data: Uint8Array, alignTo = 8): number {
    const at = this.reserve(data.length, alignTo);
    this.buf.set(data, at);
    return at;
  }
  /** A NUL-terminated string; returns its offset (never 0: the header is first). */
  str(s: string): number {
    const data = new TextEncoder().encode(s);
    const at = this.reserve(data.length + 1, 1);
    this.buf.set(data, at);
    this.buf[at + data.length] = 0;
    return at;
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function mountFlags(op: MountOp): number {
  let f = 0;
  if (op.kind === "bind") {
    if (op.rw) f |= MF.RW;
    if (op.dev) f |= MF.DEV;
    if (op.noexec) f |= MF.NOEXEC;
    if (op.optional) f |= MF.OPTIONAL;
  } else if (op.kind === "tmpfs") {
    if (!op.ro) f |= MF.RW;
    if (op.noexec) f |= MF.NOEXEC;
  }
  return f;
}

/**
 * rlimits as the array of struct bb_rlimit (csrc/plan.h): the request's, and
 * the fork server's protocol (csrc/client/bunbox_sandbox.c) reuses it.
 */
export function packRlimits(limits: Limits): Uint8Array {
  const rl = limits.rlimits();
  const out = new Uint8Array(rl.length * 24);
  const view = new DataView(out.buffer);
  rl.forEach(([res, cur, max], i) => {
    view.setUint32(i * 24, res, true);
    view.setBigUint64(i * 24 + 8, cur, true);
    view.setBigUint64(i * 24 + 16, max, true);
  });
  return out;
}

/** A per-run random 64-bit value for the first-execveat rule (never 0). */
export function randomMagic(): bigint {
  const b = new BigUint64Array(1);
  crypto.getRandomValues(b);
  return b[0]! | 1n; // never 0: an unset 6th argument must not match
}

export function buildRequest(executor: Executor, policy: Policy, settings: SpawnSettings): Request {
  const w = new Writer();
  const hdr = w.reserve(HEADER.length * 4);
  const set = (field: HeaderField, v: number) => w.u32(hdr + HEADER.indexOf(field) * 4, v);

  const euid = process.geteuid?.() ?? 0;
  const egid = process.getegid?.() ?? 0;
  const root = euid === 0;
  const uidOutside = root ? NOBODY : euid;
  const gidOutside = root ? NOBODY : egid;
  const uidInside = policy.uid ?? uidOutside;
  const gidInside = policy.gid ?? gidOutside;

  let flags = 0;
  if (settings.notify && settings.program) flags |= FLAG.NOTIFY;
  if (root) flags |= FLAG.CALLER_ROOT;
  if (!settings.program) flags |= FLAG.NO_SECCOMP;
  if (policy.net === "loopback") flags |= FLAG.LOOPBACK;
  let clone = CLONE.NEWUSER | CLONE.NEWNS | CLONE.NEWPID | CLONE.NEWUTS | CLONE.NEWIPC | CLONE.NEWCGROUP;
  if (policy.net !== "host") clone |= CLONE.NEWNET;

  set("magic", REQ_MAGIC);
  set("version", REQ_VERSION);
  set("flags", flags);
  set("clone_flags", clone);
  set("uid_inside", uidInside);
  set("gid_inside", gidInside);
  set("uid_outside", uidOutside);
  set("gid_outside", gidOutside);

  const strings = (list: readonly string[], offField: HeaderField, countField: HeaderField) => {
    const offs = list.map((s) => w.str(s));
    const at = w.reserve(offs.length * 4, 4);
    offs.forEach((o, i) => w.u32(at + i * 4, o));
    set(offField, offs.length ? at : 0);
    set(countField, offs.length);
  };
  strings(executor.argv, "argv_off", "argc");
  const names = executor.ipc.namesEnv();
  const env = Object.entries({ ...executor.env, ...(names ? { BUNBOX_FDS: names } : {}) }).map(([k, v]) => `${k}=${v}`);
  strings(env, "envp_off", "envc");
  set("file_off", w.str(executor.path));
  set("search_path_off", w.str(executor.env.PATH ?? ""));
  set("cwd_off", w.str(executor.cwd));
  set("hostname_off", w.str(policy.hostname));

  const mounts = settings.mounts.ordered();
  const mountAt = w.reserve(mounts.length * 32);
  mounts.forEach((op, i) => {
    const at = mountAt + i * 32;
    const src = op.kind === "bind" ? op.src : op.kind === "symlink" ? op.target : undefined;
    const srcOff = src === undefined ? 0 : w.str(src);
    const dstOff = w.str(op.dst);
    w.u32(at, MOUNT_KIND[op.kind]);
    w.u32(at + 4, mountFlags(op));
    w.u32(at + 8, srcOff);
    w.u32(at + 12, dstOff);
    w.u32(at + 16, "mode" in op && op.mode !== undefined ? op.mode : op.kind === "tmpfs" ? 0o755 : 0);
    w.u64(at + 24, BigInt(op.kind === "tmpfs" ? (op.size ?? 0) : 0));
  });
  set("mounts_off", mounts.length ? mountAt : 0);
  set("nmounts", mounts.length);

  const limits = packRlimits(executor.limits);
  set("rlimits_off", w.bytes(limits));
  set("nrlimits", limits.length / 24);

  const fds = executor.ipc.fds;
  const fdAt = w.reserve(Math.max(fds.length, 1) * 8);
  fds.forEach((m, i) => {
    w.i32(fdAt + i * 8, m.hostFd);
    w.i32(fdAt + i * 8 + 4, m.targetFd);
  });
  set("fds_off", fds.length ? fdAt : 0);
  set("nfds", fds.length);

  const { magic, program } = settings;
  if (program) {
    set("bpf_off", w.bytes(encode(program)));
    set("bpf_len", program.length);
  }
  set("exec_magic_lo", Number(magic & 0xffffffffn));
  set("exec_magic_hi", Number(magic >> 32n));
  set("setup_timeout_ms", settings.setupTimeoutMs);
  set("root_mode", 0o755);

  const bytes = w.done();
  new DataView(bytes.buffer).setUint32(hdr + HEADER.indexOf("size") * 4, bytes.length, true);
  return { bytes, uidInside, gidInside };
}
