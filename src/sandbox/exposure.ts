/**
 * What of the host's kernel a bind would show: the host's /proc (every host
 * process, its memory maps and environment where permissions allow, kernel
 * settings), its /sys (devices, kernel internals), or its device nodes.
 * Each is a named relaxation (dangerAllowHostMount("proc" | "sys" | "dev")):
 * a bind that shows one is refused without it, and listed by `bunbox run -v`
 * and `--json` with it.
 *
 * A bind is recursive, so a source shows what is mounted under it too
 * (binding "/" shows all three). Read from the source's path, the type of
 * the filesystem it is on and of every mount under it (/proc/self/mountinfo),
 * and, for a device, its file type. The six nodes of the minimal /dev (null,
 * zero, full, random, urandom, tty) are no relaxation.
 */
import { statSync } from "../native/fs.ts";
import { readText } from "../read-text.ts";

export type HostMount = "proc" | "sys" | "dev";
export const HOST_MOUNTS: readonly HostMount[] = ["proc", "sys", "dev"];

/** The nodes a sandbox's minimal /dev binds from the host. */
export const DEV_NODES = ["null", "zero", "full", "random", "urandom", "tty"] as const;

/** What each gives away, in words (relaxations, errors). */
export const HOST_MOUNT_TEXT: Record<HostMount, string> = {
  proc: "the host's /proc (every host process, kernel settings)",
  sys: "the host's /sys (devices, kernel internals)",
  dev: "host device nodes (beyond null, zero, full, random, urandom, tty)",
};

const FS_KIND: Record<string, HostMount> = {
  proc: "proc",
  sysfs: "sys",
  securityfs: "sys",
  debugfs: "sys",
  tracefs: "sys",
  cgroup: "sys",
  cgroup2: "sys",
  bpf: "sys",
  pstore: "sys",
  efivarfs: "sys",
  configfs: "sys",
  fusectl: "sys",
  binfmt_misc: "sys",
  devtmpfs: "dev",
  devpts: "dev",
  mqueue: "dev",
};
const TOP: Record<string, HostMount> = { "/proc": "proc", "/sys": "sys", "/dev": "dev" };

interface Mount {
  at: string;
  kind: HostMount | undefined;
}

let mountsMemo: { at: number; mounts: Mount[] } | undefined;

/** The host's mounts (this process's namespace), read at most once a second. */
function hostMounts(): Mount[] {
  const now = performance.now();
  if (mountsMemo && now - mountsMemo.at < 1000) return mountsMemo.mounts;
  // No /proc: the path rules still apply.
  const text = readText("/proc/self/mountinfo") ?? "";
  const mounts: Mount[] = [];
  for (const line of text.split("\n")) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    const fields = line.split(" ");
    const dash = fields.indexOf("-");
    if (dash < 5) continue;
    const raw = fields[4]!;
    const at = raw.includes("\\") ? raw.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) : raw;
    mounts.push({ at, kind: FS_KIND[fields[dash + 1]!] ?? TOP[at] });
  }
  mountsMemo = { at: now, mounts };
  return mounts;
}

const under = (path: string, dir: string) => dir === "/" || path === dir || path.startsWith(`${dir}/`);

/** One of the minimal /dev's nodes: usable wherever it is bound, no relaxation. */
export const minimalNode = (src: string) => (DEV_NODES as readonly string[]).some((n) => src === `/dev/${n}`);

/** What a bind of the host path `src` (resolved) shows of the host's kernel. */
export function hostExposure(src: string): Set<HostMount> {
  const out = new Set<HostMount>();
  if (minimalNode(src)) return out;
  for (const [top, kind] of Object.entries(TOP)) if (under(src, top)) out.add(kind);
  let st;
  try {
    st = statSync(src);
  } catch {
    return out; // a bind-try of a missing source shows nothing
  }
  if (st.isCharacterDevice() || st.isBlockDevice()) out.add("dev");
  let on: Mount | undefined;
  for (const m of hostMounts()) {
    // The filesystem src is on: the longest mount point above it (a path
    // that reaches /proc's filesystem through a bind elsewhere included).
    if (under(src, m.at) && (!on || m.at.length >= on.at.length)) on = m;
    // Everything mounted under it comes along: the bind is recursive.
    if (st.isDirectory() && m.at !== src && under(m.at, src) && m.kind) out.add(m.kind);
  }
  if (on?.kind) out.add(on.kind);
  return out;
}
