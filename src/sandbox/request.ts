/**
 * Serialises one spawn into the flat buffer csrc/plan.h describes (struct
 * bb_req and its arrays), with the layout generated from it
 * (src/native/abi.ts). Everything the child needs is decided here, in
 * TypeScript, before the clone: the child only reads this buffer.
 */
import {
  BB_ABI_VERSION, BB_CG_V1, BB_CG_V2, BB_CGROUP, BB_CLONE_NEWCGROUP, BB_CLONE_NEWIPC, BB_CLONE_NEWNET, BB_CLONE_NEWNS, BB_CLONE_NEWPID,
  BB_CLONE_NEWUSER, BB_CLONE_NEWUTS, BB_F_CALLER_ROOT, BB_F_LOOPBACK, BB_F_NET_PROXY, BB_F_NO_SECCOMP, BB_F_NOTIFY, BB_F_TTY_STDIN, BB_FDMAP,
  BB_M_BIND, BB_M_DEVPTS, BB_M_DIR, BB_M_FILE, BB_M_LOWER, BB_M_MASK, BB_M_OVERLAY, BB_M_PROC, BB_M_READONLY, BB_M_SYMLINK,
  BB_M_TMPFS, BB_MF_DEV, BB_MF_IDMAP, BB_MF_NOEXEC, BB_MF_OPTIONAL, BB_MF_RW, BB_MOUNT, BB_REQ, BB_REQ_MAGIC, BB_RLIMIT, BB_SYSCTL,
  type Field,
} from "../native/abi.ts";
import { PROXY_PORT, proxyEnv } from "../net/env.ts";
import { withResolvConf } from "../net/resolv.ts";
import { encode, type Insn } from "../policy/bpf.ts";
import type { Policy } from "../policy/policy.ts";
import { NOBODY, type RunContainment } from "../containment/containment.ts";
import type { Executor } from "./executor.ts";
import type { Limits } from "./limits.ts";
import { generatedEtc } from "./etc.ts";
import type { MountOp, MountPlan, RootOp } from "./mounts.ts";
import { UsageError } from "../errors.ts";

const MOUNT_KIND: Record<MountOp["kind"], number> = {
  bind: BB_M_BIND, tmpfs: BB_M_TMPFS, proc: BB_M_PROC, symlink: BB_M_SYMLINK, devpts: BB_M_DEVPTS, dir: BB_M_DIR,
  file: BB_M_FILE, overlay: BB_M_OVERLAY, mask: BB_M_MASK, readonly: BB_M_READONLY,
};

type ReqField = Exclude<keyof typeof BB_REQ, "sizeof">;
/** An element of a u32 array (argv and envp offsets). */
const U32: Field = { offset: 0, type: "u32", count: 1 };

export interface SpawnSettings {
  notify: boolean;
  /** This run's exec magic: the 6th argument of its first execveat. */
  magic: bigint;
  /** The filter installed at exec, with `magic` in it; none: no filter at exec ("sandbox me here", the fork server). */
  program?: readonly Insn[];
  mounts: MountPlan;
  setupTimeoutMs: number;
  /** The run's cgroup, kernel ids and user-namespace limits (src/containment/); none: the caller's ids, no cgroup. */
  containment?: RunContainment;
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
  /** A field of a struct at `base` (csrc/plan.h, as src/native/abi.ts lays it out). */
  put(base: number, f: Field, v: number | bigint): void {
    const at = base + f.offset;
    if (f.type === "u64") this.view.setBigUint64(at, BigInt.asUintN(64, BigInt(v)), true);
    else if (f.type === "i32") this.view.setInt32(at, Number(v), true);
    else if (f.type === "u32") this.view.setUint32(at, Number(v) >>> 0, true);
    else throw new Error(`request: cannot write a ${f.type} field`);
  }
  bytes(data: Uint8Array, alignTo = 8): number {
    const at = this.reserve(data.length, alignTo);
    this.buf.set(data, at);
    return at;
  }
  /** A NUL-terminated string; returns its offset (never 0: the header is first). */
  str(s: string): number {
    const data = utf8.encode(s);
    const at = this.reserve(data.length + 1, 1);
    this.buf.set(data, at);
    this.buf[at + data.length] = 0;
    return at;
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** One encoder for every string of every request (a request has dozens). */
const utf8 = new TextEncoder();

function mountFlags(op: MountOp | RootOp, root: boolean): number {
  // The root's tmpfs is written while the tree is built and read-only after (csrc/root.c).
  if (root) return "rw" in op && op.rw ? BB_MF_RW : 0;
  let f = 0;
  if (op.kind === "bind") {
    if (op.rw) f |= BB_MF_RW;
    if ("dev" in op && op.dev) f |= BB_MF_DEV;
    if ("noexec" in op && op.noexec) f |= BB_MF_NOEXEC;
    if ("optional" in op && op.optional) f |= BB_MF_OPTIONAL;
  } else if (op.kind === "tmpfs") {
    if (!("ro" in op && op.ro)) f |= BB_MF_RW;
    if ("noexec" in op && op.noexec) f |= BB_MF_NOEXEC;
  } else if (op.kind === "overlay") {
    if (op.rw) f |= BB_MF_RW;
  } else if (op.kind === "file") {
    if (op.noexec) f |= BB_MF_NOEXEC;
    if (op.optional) f |= BB_MF_OPTIONAL;
  }
  return f;
}

/**
 * Which host directories a root-run sandbox reaches through an idmapped
 * mount (csrc/idmap.c), where the owner of each is the sandbox's own uid:
 * a writable bind (not /dev's nodes), a writable root, an overlay's lower
 * layers (overlayfs copies a file up with its owner, which must be mapped)
 * and its upper directory. What the sandboxee creates there lands owned by
 * the directory's owner.
 */
function idmapped(op: MountOp | RootOp, e: { src?: string; lower?: boolean }): boolean {
  if (e.lower) return true;
  if (op.kind === "bind") return op.rw && !("dev" in op && op.dev);
  return op.kind === "overlay" && e.src !== undefined;
}

/**
 * The plan as struct bb_mount entries (csrc/plan.h): the root first (dst
 * "/"), then the operations in order and the generated /etc files
 * (src/sandbox/etc.ts); an overlay's layers each go in a BB_M_LOWER entry
 * just before it, the bottom one first.
 */
function writeMounts(w: Writer, plan: MountPlan, extra: readonly MountOp[], callerRoot: boolean): { at: number; count: number } {
  const entries: { op: MountOp | RootOp; dst: string; src?: string; lower?: boolean; aux?: number; root?: boolean }[] = [];
  const push = (op: MountOp | RootOp, dst: string) => {
    if (op.kind === "overlay") {
      for (const l of op.lowers) entries.push({ op, dst, src: l, lower: true });
      entries.push({ op, dst, ...(op.upper !== undefined ? { src: op.upper } : {}), aux: op.lowers.length, root: dst === "/" });
    } else {
      const src = op.kind === "bind" ? op.src : op.kind === "symlink" ? op.target : undefined;
      entries.push({ op, dst, ...(src !== undefined ? { src } : {}), root: dst === "/" });
    }
  };
  push(plan.root, "/");
  for (const op of [...plan.ordered(), ...extra]) push(op, op.dst);
  const at = w.reserve(entries.length * BB_MOUNT.sizeof);
  entries.forEach((e, i) => {
    const base = at + i * BB_MOUNT.sizeof;
    const { op } = e;
    let srcOff = e.src === undefined ? 0 : w.str(e.src);
    let size = 0;
    if (op.kind === "file" && op.content.length > 0) {
      srcOff = w.bytes(op.content, 1);
      size = op.content.length;
    } else if ((op.kind === "tmpfs" || op.kind === "overlay") && !e.lower) {
      size = op.size ?? 0;
    }
    w.put(base, BB_MOUNT.kind, e.lower ? BB_M_LOWER : MOUNT_KIND[op.kind]);
    const idmap = callerRoot && idmapped(op, e) ? BB_MF_IDMAP : 0;
    w.put(base, BB_MOUNT.flags, (e.lower ? 0 : mountFlags(op, !!e.root)) | idmap);
    w.put(base, BB_MOUNT.src_off, srcOff);
    w.put(base, BB_MOUNT.dst_off, w.str(e.dst));
    // A tmpfs or directory without a mode is 0755 (never 0: a root-only directory to the sandboxee).
    const mode = e.lower ? 0 : op.kind === "tmpfs" || op.kind === "dir" ? (op.mode ?? 0o755) : op.kind === "file" ? (op.mode ?? 0o444) : 0;
    w.put(base, BB_MOUNT.mode, mode);
    w.put(base, BB_MOUNT.aux, e.aux ?? 0);
    w.put(base, BB_MOUNT.size, size);
  });
  return { at, count: entries.length };
}

/**
 * rlimits as the array of struct bb_rlimit (csrc/plan.h): the request's, and
 * the fork server's protocol (csrc/client/bunbox_sandbox.c) reuses it.
 */
export function packRlimits(
  limits: Limits,
  opts: Parameters<Limits["rlimits"]>[0] = {},
  extra: readonly [number, bigint, bigint][] = [],
): Uint8Array {
  const rl = [...limits.rlimits(opts), ...extra];
  const out = new Uint8Array(rl.length * BB_RLIMIT.sizeof);
  const view = new DataView(out.buffer);
  rl.forEach(([res, cur, max], i) => {
    const at = i * BB_RLIMIT.sizeof;
    view.setUint32(at + BB_RLIMIT.resource.offset, res, true);
    view.setBigUint64(at + BB_RLIMIT.cur.offset, cur, true);
    view.setBigUint64(at + BB_RLIMIT.max.offset, max, true);
  });
  return out;
}

/** A per-run random 64-bit value for the first-execveat rule (never 0). */
export function randomMagic(): bigint {
  const b = new BigUint64Array(1);
  crypto.getRandomValues(b);
  return b[0]! | 1n; // never 0: an unset 6th argument must not match
}

/** The terminal comes from a devpts at /dev/pts: one is added where the policy's filesystem has none. */
function withDevpts(plan: MountPlan): MountPlan {
  if (plan.ops.some((o) => o.kind === "devpts" && o.dst === "/dev/pts")) return plan;
  return plan.clone().add({ kind: "devpts", dst: "/dev/pts" }, "tty");
}

export function buildRequest(executor: Executor, policy: Policy, settings: SpawnSettings): Request {
  const w = new Writer();
  const hdr = w.reserve(BB_REQ.sizeof);
  const set = (field: ReqField, v: number) => w.put(hdr, BB_REQ[field], v);

  const euid = process.geteuid?.() ?? 0;
  const egid = process.getegid?.() ?? 0;
  const root = euid === 0;
  const contained = settings.containment;
  // As root: a kernel uid of the sandbox's own (src/containment/uids.ts), nobody inside.
  const uidOutside = contained?.uid ?? (root ? NOBODY : euid);
  const gidOutside = contained?.gid ?? (root ? NOBODY : egid);
  const uidInside = policy.uid ?? (root ? NOBODY : euid);
  const gidInside = policy.gid ?? (root ? NOBODY : egid);

  let flags = 0;
  if (settings.notify && settings.program) flags |= BB_F_NOTIFY;
  if (root) flags |= BB_F_CALLER_ROOT;
  if (!settings.program) flags |= BB_F_NO_SECCOMP;
  // The sandbox's own network namespace gets its own lo, up, as bwrap, nsjail
  // and docker do: programs that talk to themselves over localhost work, and
  // nothing outside is reachable ("loopback" is the same as "none").
  if (policy.net !== "host") flags |= BB_F_LOOPBACK;
  // --net proxy: the proxy's and DNS stub's sockets bound on that lo (docs/network.md).
  if (policy.network) flags |= BB_F_NET_PROXY;
  const tty = executor.tty;
  for (const fd of tty?.stdio ?? []) flags |= BB_F_TTY_STDIN << fd;
  let clone = BB_CLONE_NEWUSER | BB_CLONE_NEWNS | BB_CLONE_NEWPID | BB_CLONE_NEWUTS | BB_CLONE_NEWIPC | BB_CLONE_NEWCGROUP;
  if (policy.net !== "host") clone |= BB_CLONE_NEWNET;

  set("magic", BB_REQ_MAGIC);
  set("version", BB_ABI_VERSION);
  set("flags", flags);
  set("clone_flags", clone);
  set("uid_inside", uidInside);
  set("gid_inside", gidInside);
  set("uid_outside", uidOutside);
  set("gid_outside", gidOutside);

  const strings = (list: readonly string[], offField: ReqField, countField: ReqField) => {
    const offs = list.map((s) => w.str(s));
    const at = w.reserve(offs.length * 4, 4);
    offs.forEach((o, i) => w.put(at + i * 4, U32, o));
    set(offField, offs.length ? at : 0);
    set(countField, offs.length);
  };
  strings(executor.argv, "argv_off", "argc");
  const names = executor.ipc.namesEnv();
  const proxy = policy.network ? proxyEnv(executor.env) : {};
  const env = Object.entries({ ...proxy, ...executor.env, ...(names ? { BUNBOX_FDS: names } : {}) }).map(([k, v]) => `${k}=${v}`);
  strings(env, "envp_off", "envc");
  set("file_off", w.str(executor.path));
  set("search_path_off", w.str(executor.env.PATH ?? ""));
  set("cwd_off", w.str(executor.cwd));
  set("hostname_off", w.str(policy.hostname));

  let plan = tty ? withDevpts(settings.mounts) : settings.mounts;
  if (policy.network) plan = withResolvConf(plan);
  const etc = generatedEtc(plan, { uid: uidInside, gid: gidInside, net: policy.net, hostname: policy.hostname });
  const mounts = writeMounts(w, plan, etc, root);
  set("mounts_off", mounts.at);
  set("nmounts", mounts.count);

  const limits = packRlimits(
    executor.limits,
    {
      memoryAsAddressSpace: contained?.plan.memoryAsAddressSpace ?? false,
      processesByCgroup: contained?.processesByCgroup ?? false,
      nprocCountsOthers: contained?.nprocCountsOthers ?? false,
    },
    contained?.userRlimits,
  );
  set("rlimits_off", w.bytes(limits));
  set("nrlimits", limits.length / BB_RLIMIT.sizeof);

  const fds = executor.ipc.fds;
  for (const m of fds) {
    // The caller's fds there are what the terminal replaces: they must not enter through a mapping either.
    if (tty?.stdio.includes(m.hostFd as 0) || tty?.stdio.includes(m.targetFd as 0)) {
      throw new UsageError("ipc.mapFd", `fd ${m.hostFd} -> ${m.targetFd}: std fd ${tty.stdio.includes(m.hostFd as 0) ? m.hostFd : m.targetFd} is the sandboxee's terminal (Executor tty)`);
    }
  }
  const fdAt = w.reserve(fds.length * BB_FDMAP.sizeof);
  fds.forEach((m, i) => {
    w.put(fdAt + i * BB_FDMAP.sizeof, BB_FDMAP.src, m.hostFd);
    w.put(fdAt + i * BB_FDMAP.sizeof, BB_FDMAP.dst, m.targetFd);
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
  if (tty) set("tty_size", ((tty.rows ?? 0) << 16) | (tty.cols ?? 0));
  set("proxy_port", policy.network ? PROXY_PORT : 0);

  const cgroups = contained?.cgroup?.entries() ?? [];
  const cgAt = w.reserve(cgroups.length * BB_CGROUP.sizeof);
  cgroups.forEach((c, i) => {
    const at = cgAt + i * BB_CGROUP.sizeof;
    w.put(at, BB_CGROUP.kind, c.kind === "v2" ? BB_CG_V2 : BB_CG_V1);
    w.put(at, BB_CGROUP.fd, c.fd);
  });
  set("cgroups_off", cgroups.length ? cgAt : 0);
  set("ncgroups", cgroups.length);

  const sysctls = contained?.userLimits ?? [];
  const pairs = sysctls.map(([path, value]) => [w.str(path), w.str(value)] as const);
  const scAt = w.reserve(pairs.length * BB_SYSCTL.sizeof);
  pairs.forEach(([path, value], i) => {
    w.put(scAt + i * BB_SYSCTL.sizeof, BB_SYSCTL.path_off, path);
    w.put(scAt + i * BB_SYSCTL.sizeof, BB_SYSCTL.value_off, value);
  });
  set("sysctls_off", pairs.length ? scAt : 0);
  set("nsysctls", pairs.length);

  const bytes = w.done();
  new DataView(bytes.buffer).setUint32(hdr + BB_REQ.size.offset, bytes.length, true);
  return { bytes, uidInside, gidInside };
}
