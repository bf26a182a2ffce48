/**
 * What this host lets bunbox enforce, found out by trying (sandboxlib's
 * backend capabilities): a sandbox is started to see whether user namespaces
 * and overlayfs in them work, the kernel is asked about seccomp user
 * notification and Landlock, and the cgroup tree and idmapped mounts are
 * probed. The answer is cached for the process: `capabilities()` is cheap
 * after its first call.
 */
import { accessSync, chmodSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { shim } from "../native/library.ts";
import { landlockAbi, seccompActionAvailable } from "../native/probe.ts";
import { PolicyBuilder } from "../policy/builder.ts";
import { Executor } from "./executor.ts";
import { Sandbox } from "./sandbox.ts";

export interface Capabilities {
  /** Sandboxes can be made at all: unprivileged user namespaces (or root). */
  userNamespaces: boolean;
  /** overlayfs mounts inside the sandbox's user namespace (Linux 5.11+): overlay roots, mount points in images. */
  overlayInUserNamespace: boolean;
  /** idmapped mounts (Linux 5.12+, and privilege over the filesystem: root). */
  idmappedMounts: boolean;
  /** A cgroup tree bunbox may make groups in: "v2", "v1", or none. */
  cgroups: "v2" | "v1" | false;
  /** The Landlock ABI version, or false. */
  landlock: number | false;
  /** seccomp user notification (Linux 5.0+): violations reported with the call and its arguments. */
  seccompNotify: boolean;
  /** The kernel release the answers are for. */
  kernel: string;
  /** Why each missing one is missing, in words. */
  why: Partial<Record<Exclude<keyof Capabilities, "why" | "kernel">, string>>;
}

const SECCOMP_RET_USER_NOTIF = 0x7fc00000;

let cached: Promise<Capabilities> | undefined;

/** This host's capabilities (probed once per process; `refresh` probes again). */
export function capabilities(opts: { refresh?: boolean } = {}): Promise<Capabilities> {
  if (!cached || opts.refresh) cached = probe();
  return cached;
}

/** A sandbox mounting an overlay, running a program that does not exist: how far its set-up got. */
async function probeSandbox(): Promise<{ userns: boolean; overlay: boolean; why?: string }> {
  const dirs = [mkdtempSync(join(tmpdir(), "bunbox-probe-")), mkdtempSync(join(tmpdir(), "bunbox-probe-"))];
  try {
    for (const d of dirs) chmodSync(d, 0o755);
    const policy = new PolicyBuilder().dangerDefaultAllowAll().emptyFilesystem().addOverlay("/o", dirs, { writable: true, size: "1M" }).build();
    const r = await new Sandbox(new Executor("/bunbox-probe", ["probe"], { limits: { wallTimeMs: 5000 } }), policy).run();
    const stage = r.setup?.stage;
    // The lookup of the program comes after the mounts: reaching it means both worked.
    if (stage === "lookup" || stage === "exec") return { userns: true, overlay: true };
    if (stage === "overlay") return { userns: true, overlay: false, why: r.setup!.message };
    return { userns: false, overlay: false, why: r.setup?.message ?? r.toString() };
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

/** The cgroup version whose tree this process may make groups in. */
function cgroupTree(): { tree: "v2" | "v1" | false; why?: string } {
  const own = (controller: string) => {
    for (const line of readFileSync("/proc/self/cgroup", "utf8").split("\n")) {
      const [, ctl, path] = line.split(":");
      if (ctl !== undefined && ctl.split(",").includes(controller)) return path;
    }
    return undefined;
  };
  const writable = (dir: string) => {
    try {
      accessSync(dir, constants.W_OK);
      return true;
    } catch {
      return false;
    }
  };
  try {
    if (existsSync("/sys/fs/cgroup/cgroup.controllers")) {
      const path = own("") ?? "/";
      const dir = join("/sys/fs/cgroup", path);
      return writable(dir) ? { tree: "v2" } : { tree: false, why: `cgroup v2: ${dir} is not writable (no delegation)` };
    }
    if (existsSync("/sys/fs/cgroup/memory")) {
      const dir = join("/sys/fs/cgroup/memory", own("memory") ?? "/");
      return writable(dir) ? { tree: "v1" } : { tree: false, why: `cgroup v1: ${dir} is not writable` };
    }
    return { tree: false, why: "no cgroup filesystem under /sys/fs/cgroup" };
  } catch (e) {
    return { tree: false, why: (e as Error).message };
  }
}

async function probe(): Promise<Capabilities> {
  const why: Capabilities["why"] = {};
  const sandbox = await probeSandbox();
  if (!sandbox.userns) why.userNamespaces = sandbox.why;
  else if (!sandbox.overlay) why.overlayInUserNamespace = sandbox.why;
  if (!sandbox.userns) why.overlayInUserNamespace = "no user namespaces";
  const notify = seccompActionAvailable(SECCOMP_RET_USER_NOTIF);
  if (!notify) why.seccompNotify = "the kernel has no SECCOMP_RET_USER_NOTIF (Linux 5.0+)";
  const ll = landlockAbi();
  if (ll <= 0) why.landlock = ll === -38 ? "the kernel has no Landlock (Linux 5.13+)" : "Landlock is built but not enabled (lsm=landlock)";
  const idmap = shim().bb_probe_idmap();
  if (idmap < 0) why.idmappedMounts = idmap === -38 ? "no mount_setattr (Linux 5.12+)" : "setting an idmap needs privilege over the filesystem (root)";
  const cg = cgroupTree();
  if (!cg.tree) why.cgroups = cg.why;
  return {
    userNamespaces: sandbox.userns,
    overlayInUserNamespace: sandbox.overlay,
    idmappedMounts: idmap === 0,
    cgroups: cg.tree,
    landlock: ll > 0 ? ll : false,
    seccompNotify: notify,
    kernel: release(),
    why,
  };
}
