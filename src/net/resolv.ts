/**
 * The /etc/resolv.conf of a `--net proxy` sandbox: its DNS stub on
 * 127.0.0.1 (dns-stub.ts), so that programs which resolve a name before
 * they connect (curl --socks5, transparent mode) get the stub's answers.
 *
 * The file is a host file bound read-only over the sandbox's
 * /etc/resolv.conf: written once per bunbox process in a directory of its
 * own (mkdtemp: no other user can have planted it), removed at exit. Where
 * the sandbox's /etc/resolv.conf cannot take a bind (the host's is a
 * symlink, as with systemd-resolved, shown through the read-only /etc
 * bind), the file is left as it is: the stub still answers on 127.0.0.1:53.
 */
import { chmodSync, lstatSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MountPlan } from "../sandbox/mounts.ts";

export const RESOLV_CONF = "# bunbox --net proxy: its DNS stub, which answers only names the policy allows\nnameserver 127.0.0.1\n";

let file: string | undefined;

function resolvConfFile(): string {
  if (!file) {
    const dir = mkdtempSync(join(tmpdir(), "bunbox-dns-"));
    chmodSync(dir, 0o755); // a sandbox of any uid reads it through the bind
    const path = join(dir, "resolv.conf");
    writeFileSync(path, RESOLV_CONF, { mode: 0o644 });
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    file = path;
  }
  return file;
}

/** `plan` with the stub's resolv.conf bound at /etc/resolv.conf (a copy), unless the plan has its own or cannot take it. */
export function withResolvConf(plan: MountPlan): MountPlan {
  if (plan.ops.some((o) => o.dst === "/etc/resolv.conf")) return plan;
  const etc = plan.ops.find((o) => o.dst === "/etc");
  if (etc && etc.kind !== "bind" && etc.kind !== "tmpfs") return plan;
  if (etc?.kind === "bind") {
    try {
      if (!lstatSync(join(etc.src, "resolv.conf")).isFile()) return plan; // a read-only bind cannot take a new file or a mount on a symlink
    } catch {
      return plan;
    }
  }
  return plan.clone().add({ kind: "bind", src: resolvConfFile(), dst: "/etc/resolv.conf", rw: false }, "--net proxy's /etc/resolv.conf");
}
