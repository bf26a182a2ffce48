/**
 * Where this process's cgroups are: the cgroup2 mount and the cgroup v1
 * hierarchies this process can see (/proc/self/mountinfo), and its own
 * cgroup in each (/proc/self/cgroup), as directories. Pure parsing; the
 * files are read by readLayout().
 */
import { readText } from "../read-text.ts";
import * as posix from "../posix-path.ts";

export interface Hierarchy {
  /** Where it is mounted. */
  mount: string;
  /** This process's cgroup, as /proc/self/cgroup says ("/user.slice/x.scope"). */
  own: string;
  /** That cgroup's directory. */
  dir: string;
}

export interface V1Hierarchy extends Hierarchy {
  /** The controllers mounted together here ("cpu", "cpuacct"). */
  controllers: string[];
}

export interface Layout {
  /** The cgroup2 hierarchy, if mounted and this process has a cgroup in it. */
  v2: Hierarchy | undefined;
  /** The v1 hierarchies by controller ("memory", "pids", "cpu"). */
  v1: Map<string, V1Hierarchy>;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

interface CgroupMount {
  root: string;
  mount: string;
  type: "cgroup" | "cgroup2";
  options: string[];
}

function cgroupMounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mountinfo.split("\n")) {
    // id parent maj:min root mountpoint options [optional...] - type source superoptions
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const head = line.slice(0, sep).split(" ");
    const [type, , superOptions] = line.slice(sep + 3).split(" ");
    if (type !== "cgroup" && type !== "cgroup2") continue;
    out.push({ root: unescape(head[3]!), mount: unescape(head[4]!), type, options: (superOptions ?? "").split(",") });
  }
  return out;
}

/** The directory of cgroup `own` under a mount of `root`, if the mount shows it. */
function dirOf(m: CgroupMount, own: string): string | undefined {
  const rel = posix.relative(m.root, own);
  if (rel.startsWith("..") || posix.isAbsolute(rel)) return undefined;
  return rel ? posix.join(m.mount, rel) : m.mount;
}

/** The layout from the text of /proc/self/cgroup and /proc/self/mountinfo. */
export function parseLayout(procCgroup: string, mountinfo: string): Layout {
  const mounts = cgroupMounts(mountinfo);
  const layout: Layout = { v2: undefined, v1: new Map() };
  for (const line of procCgroup.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, id, list, own] = m;
    if (id === "0" && list === "") {
      for (const mount of mounts.filter((x) => x.type === "cgroup2")) {
        const dir = dirOf(mount, own!);
        if (dir) {
          layout.v2 = { mount: mount.mount, own: own!, dir };
          break;
        }
      }
      continue;
    }
    const controllers = list!.split(",").filter((c) => c && !c.startsWith("name="));
    if (controllers.length === 0) continue;
    for (const mount of mounts.filter((x) => x.type === "cgroup" && controllers.every((c) => x.options.includes(c)))) {
      const dir = dirOf(mount, own!);
      if (!dir) continue;
      const h: V1Hierarchy = { mount: mount.mount, own: own!, dir, controllers };
      for (const c of controllers) layout.v1.set(c, h);
      break;
    }
  }
  return layout;
}

export function readLayout(): Layout {
  const read = (p: string) => readText(p) ?? "";
  return parseLayout(read("/proc/self/cgroup"), read("/proc/self/mountinfo"));
}
