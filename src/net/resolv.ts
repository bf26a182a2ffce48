/**
 * The /etc/resolv.conf of a `--net proxy` sandbox: its DNS stub on
 * 127.0.0.1 (dns-stub.ts), so that programs which resolve a name before
 * they connect (curl --socks5, transparent mode) get the stub's answers.
 * A read-only `file` mount over the sandbox's own (the host's, shown through
 * the read-only /etc bind, or an image's); where no mount point can be made
 * for it, nothing, and the stub still answers on 127.0.0.1:53.
 */
import type { MountPlan } from "../sandbox/mounts.ts";

export const RESOLV_CONF = "# bunbox --net proxy: its DNS stub, which answers only names the policy allows\nnameserver 127.0.0.1\n";

/** `plan` with the stub's resolv.conf at /etc/resolv.conf (a copy), unless the plan has its own. */
export function withResolvConf(plan: MountPlan): MountPlan {
  if (plan.ops.some((o) => o.dst === "/etc/resolv.conf")) return plan;
  const content = new TextEncoder().encode(RESOLV_CONF);
  return plan.clone().add({ kind: "file", dst: "/etc/resolv.conf", content, mode: 0o644, optional: true }, "--net proxy's /etc/resolv.conf");
}
