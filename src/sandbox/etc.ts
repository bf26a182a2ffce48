/**
 * The /etc files bunbox generates in an image root that lacks them (--root,
 * an overlay root; not in an empty plan, which gets nothing it did not ask
 * for): /etc/hosts and /etc/resolv.conf matching the network mode (no
 * network: localhost and no resolver; the host's network: the host's files),
 * and /etc/passwd and /etc/group entries for the sandbox's uid and gid where
 * the image has none for them, so that `id`, `whoami` and `ls -l` behave.
 *
 * Each is a read-only `file` mount: over the image's own file (its content
 * and the entry added) or at a mount point made for it; skipped where none
 * can be made (an optional file). The image's files are read with the image
 * as "/" (src/native/probe.ts readInRoot): an image whose etc/passwd links to
 * /etc/shadow gets its own shadow read, never the host's.
 */
import { readFileSync } from "../native/fs.ts";
import { readInRoot } from "../native/probe.ts";
import type { NetMode } from "../policy/policy.ts";
import type { MountOp, MountPlan } from "./mounts.ts";

export interface EtcContext {
  uid: number;
  gid: number;
  net: NetMode;
  hostname: string;
}

const decoder = new TextDecoder();

/** The image's layers, the one that wins first (an overlay's upper, then its top lower). */
function layers(plan: MountPlan): string[] {
  const r = plan.root;
  if (r.kind === "bind") return [r.src];
  if (r.kind === "overlay") return [...(r.upper ? [`${r.upper}/upper`] : []), ...[...r.lowers].reverse()];
  return [];
}

function hostFile(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** The name the host gives an id in its passwd or group file, if any. */
function hostName(file: string, id: number): string | undefined {
  for (const line of (hostFile(file) ?? "").split("\n")) {
    const f = line.split(":");
    if (f.length >= 3 && f[2] === String(id) && /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(f[0]!)) return f[0];
  }
  return undefined;
}

const hasId = (text: string, id: number) => text.split("\n").some((l) => l.split(":")[2] === String(id));
const withNewline = (text: string) => (text === "" || text.endsWith("\n") ? text : `${text}\n`);

/** The `file` mounts to add to a plan, for the sandbox's ids and network. */
export function generatedEtc(plan: MountPlan, ctx: EtcContext): MountOp[] {
  if (!plan.imageView || plan.ops.some((o) => o.dst === "/etc")) return [];
  const roots = layers(plan);
  const image = (rel: string) => {
    for (const root of roots) {
      const data = readInRoot(root, rel);
      if (data) return decoder.decode(data);
    }
    return undefined;
  };
  const taken = new Set(plan.ops.map((o) => o.dst));
  const out: MountOp[] = [];
  const file = (dst: string, text: string) => {
    if (!taken.has(dst)) out.push({ kind: "file", dst, content: new TextEncoder().encode(text), mode: 0o644, optional: true });
  };

  if (image("etc/hosts") === undefined) {
    const local = `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${ctx.hostname}\n`;
    file("/etc/hosts", ctx.net === "host" ? (hostFile("/etc/hosts") ?? local) : local);
  }
  if (image("etc/resolv.conf") === undefined) {
    const none = "# bunbox: this sandbox has no network to resolve names on\n";
    file("/etc/resolv.conf", ctx.net === "host" ? (hostFile("/etc/resolv.conf") ?? none) : none);
  }
  const user = ctx.uid === 0 ? "root" : ctx.uid === 65534 ? "nobody" : (hostName("/etc/passwd", ctx.uid) ?? "user");
  const group = ctx.gid === 0 ? "root" : ctx.gid === 65534 ? "nogroup" : (hostName("/etc/group", ctx.gid) ?? "user");
  const passwd = image("etc/passwd");
  if (passwd === undefined || !hasId(passwd, ctx.uid)) {
    const base = passwd ?? (ctx.uid === 0 ? "" : "root:x:0:0:root:/root:/bin/sh\n");
    file("/etc/passwd", `${withNewline(base)}${user}:x:${ctx.uid}:${ctx.gid}:${user}:/:/bin/sh\n`);
  }
  const groups = image("etc/group");
  if (groups === undefined || !hasId(groups, ctx.gid)) {
    const base = groups ?? (ctx.gid === 0 ? "" : "root:x:0:\n");
    file("/etc/group", `${withNewline(base)}${group}:x:${ctx.gid}:\n`);
  }
  return out;
}
