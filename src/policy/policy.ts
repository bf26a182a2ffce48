/**
 * A built policy: *what is allowed*. Syscall rules (compiled to seccomp-BPF
 * on demand, for the arch it was built for), the filesystem view, the
 * network mode, hostname and inside ids. Immutable; PolicyBuilder makes one,
 * `derive` makes a changed copy (the CLI adds its mount options that way).
 */
import type { Arch } from "./arch.ts";
import { BPF, RET } from "./bpf.ts";
import type { Filter } from "./filter.ts";
import type { Action, Rule } from "./rules.ts";
import { REASON } from "./safety.ts";
import { UsageError } from "../errors.ts";
import { HOST_MOUNT_TEXT, type HostMount } from "../sandbox/exposure.ts";
import { MountPlan } from "../sandbox/mounts.ts";
import type { Runtime } from "../sandbox/runtime.ts";
import { NetPolicy } from "../net/policy.ts";
import { traceConnect } from "../net/trace-connect.ts";

/**
 * none (and loopback, the same): a network namespace of its own with only
 * lo, up; host: the host's network (a relaxation); proxy: the same as none,
 * and bunbox's proxy, which lets through only what `network` allows
 * (docs/network.md); proxy-transparent: the same, and connect() to an
 * outside address goes through the proxy too.
 */
export type NetMode = "none" | "loopback" | "host" | "proxy" | "proxy-transparent";
export const NET_MODES: readonly NetMode[] = ["none", "loopback", "host", "proxy", "proxy-transparent"];

/** Whether `mode` runs bunbox's proxy. */
export function isProxyMode(mode: NetMode): mode is "proxy" | "proxy-transparent" {
  return mode === "proxy" || mode === "proxy-transparent";
}

type Rules = ReadonlyMap<number, readonly Rule[]>;

export interface PolicyInit {
  arch: Arch;
  /** The rules, or a function building them on first use. */
  rules: Rules | (() => Rules);
  defaultAction: Action;
  /** Safety rules relaxed with dangerAllowUnsafe(...). */
  dangerAllowed: ReadonlySet<string>;
  /** The filesystem; undefined: the default view (MountPlan.defaultView). */
  mounts: MountPlan | undefined;
  /** What of the host's kernel binds may show (dangerAllowHostMount); none by default. */
  hostMounts?: ReadonlySet<HostMount>;
  hostname: string;
  net: NetMode;
  /** With a proxy mode: the hosts it lets through (none given: nothing is allowed). Ignored otherwise. */
  network?: NetPolicy | undefined;
  /** Inside ids; undefined: the caller's ids (65534 when the caller is root). */
  uid: number | undefined;
  gid: number | undefined;
  /**
   * Where `bunbox run` starts the command when --cwd is not given; undefined:
   * "/". The build profile sets the directory it mounts writable.
   */
  workdir?: string | undefined;
  /** Audit mode: refused calls run and are recorded (PolicyBuilder.setAudit). */
  audit?: boolean;
  /** Where this policy came from ("profile default", a file path…), for messages only. */
  origin: string;
  /** The notify filter, already compiled for these rules (src/policy/precompiled.ts). */
  notifyFilter?: Filter;
}

type Layout = "tree" | "linear";

/** What each relaxation gives away, in words (`bunbox run -v`, `policy check`). */
const RELAXATION = {
  defaultAllowAll: "dangerDefaultAllowAll: every syscall not otherwise ruled is allowed",
  unsafe: (name: string) => `dangerAllowUnsafe("${name}"): a safety rule is off`,
  netHost: "network host: the sandboxee shares the host's network",
  hostMount: (kind: HostMount, shown: readonly string[] | undefined) =>
    `dangerAllowHostMount("${kind}"): ${HOST_MOUNT_TEXT[kind]} may be bound into the sandbox${shown ? ` (${shown.join(", ")})` : ""}`,
  audit: "audit: calls the policy refuses run anyway and are recorded; only the safety rules are enforced",
  netProxy: (mode: string, hosts: NetPolicy) => {
    const allowed = hosts.allow.map((p) => p.text);
    const shown = allowed.length > 8 ? `${allowed.slice(0, 8).join(", ")}, …` : allowed.join(", ");
    const how = mode === "proxy-transparent" ? "bunbox's proxy, and connect() to outside addresses through it too" : "bunbox's proxy";
    return `network ${mode}: the sandboxee may reach ${allowed.length} host pattern${allowed.length === 1 ? "" : "s"} through ${how}${allowed.length ? ` (${shown})` : ""}`;
  },
} as const;

/**
 * The problems of a mount plan whose binds show more of the host's kernel
 * than `allowed` (one per bind and kind), for PolicyBuilder and Policy.
 */
export function hostMountProblems(plan: MountPlan | undefined, allowed: ReadonlySet<HostMount>): string[] {
  const problems: string[] = [];
  for (const [kind, binds] of plan?.hostExposure() ?? []) {
    if (allowed.has(kind)) continue;
    for (const b of binds) {
      problems.push(
        `bind ${b}: shows ${HOST_MOUNT_TEXT[kind]}; allow it with dangerAllowHostMount("${kind}") ` +
          `(--danger-allow-host-mount ${kind}; in a policy file "filesystem": { "dangerAllowHostMounts": ["${kind}"] })`,
      );
    }
  }
  return problems;
}

export class Policy {
  readonly arch: Arch;
  readonly defaultAction: Action;
  readonly dangerAllowed: ReadonlySet<string>;
  readonly mounts: MountPlan | undefined;
  readonly hostMounts: ReadonlySet<HostMount>;
  readonly hostname: string;
  readonly net: NetMode;
  /** The hosts bunbox's proxy lets through: set exactly when `net` is a proxy mode. */
  readonly network: NetPolicy | undefined;
  readonly uid: number | undefined;
  readonly gid: number | undefined;
  readonly workdir: string | undefined;
  readonly audit: boolean;
  readonly origin: string;
  /** Compiled filters: with user notification or without, by layout. */
  private readonly filters: Record<"notify" | "kill", Partial<Record<Layout, Filter>>> = { notify: {}, kill: {} };
  private rulesOrFactory: Rules | (() => Rules);

  constructor(init: PolicyInit) {
    this.arch = init.arch;
    this.rulesOrFactory = init.rules;
    if (init.notifyFilter) this.filters.notify.tree = init.notifyFilter;
    this.defaultAction = init.defaultAction;
    this.dangerAllowed = init.dangerAllowed;
    this.mounts = init.mounts;
    this.hostMounts = init.hostMounts ?? new Set();
    // A copy changed by derive (the command line's mounts) is checked here too.
    const problems = hostMountProblems(this.mounts, this.hostMounts);
    if (problems.length) throw new UsageError("filesystem", problems.join("\n  "));
    this.hostname = init.hostname;
    this.net = init.net;
    this.network = isProxyMode(init.net) ? (init.network ?? new NetPolicy({})) : undefined;
    this.uid = init.uid;
    this.gid = init.gid;
    this.workdir = init.workdir;
    this.audit = init.audit ?? false;
    this.origin = init.origin;
  }

  /**
   * Every relaxation in force, in words, for `bunbox run -v`: read off the
   * policy's own settings, so that no copy of it (derive) can disagree.
   */
  get relaxations(): readonly string[] {
    return Object.freeze([
      ...(this.defaultAction.kind === "allow" ? [RELAXATION.defaultAllowAll] : []),
      ...[...this.dangerAllowed].map(RELAXATION.unsafe),
      ...(this.net === "host" ? [RELAXATION.netHost] : []),
      ...[...this.hostMounts].map((k) => RELAXATION.hostMount(k, this.mounts?.hostExposure().get(k))),
      ...(this.audit ? [RELAXATION.audit] : []),
      ...(this.network ? [RELAXATION.netProxy(this.net, this.network)] : []),
    ]);
  }

  /**
   * What a call outside the policy gets: "errno" (EPERM or ENOSYS, listed in
   * the Result) or "kill" (a violation); undefined when the default action
   * is something else (an errno of the policy's choosing, TRACE, ALLOW).
   */
  get onRefusal(): "errno" | "kill" | undefined {
    return this.defaultAction.kind === "refuse" ? "errno" : this.defaultAction.kind === "kill" ? "kill" : undefined;
  }

  /** Syscall rules by number (built on first use for a precompiled profile). */
  get rules(): Rules {
    if (typeof this.rulesOrFactory === "function") this.rulesOrFactory = this.rulesOrFactory();
    return this.rulesOrFactory;
  }

  /** The seccomp program; `notify` routes violations and TRACE to the monitor. */
  filter(notify: boolean, layout: Layout = "tree"): Filter {
    const cache = this.filters[notify ? "notify" : "kill"];
    let f = cache[layout];
    if (!f) {
      // The compiler and its verifier are read only here: a precompiled profile's run never is (README.md, "Start-up").
      const { compileFilter } = require("./compiler.ts") as typeof import("./compiler.ts");
      f = compileFilter({
        arch: this.arch,
        // proxy-transparent: connect() goes to the monitor where it is allowed (src/net/trace-connect.ts).
        rules: this.net === "proxy-transparent" ? traceConnect(this.rules, this.arch, this.defaultAction) : this.rules,
        defaultAction: this.defaultAction,
        dangerAllowed: this.dangerAllowed,
        notify,
        layout,
      });
      cache[layout] = f;
    }
    return f;
  }

  /** The mount plan in force (the default view when the policy has none, as `runtime` last saw the host). */
  mountPlan(runtime?: Runtime): MountPlan {
    return this.mounts?.clone() ?? MountPlan.defaultView(runtime);
  }

  /** A copy with some fields changed (the compiled filter carries over unless the rules change). */
  derive(changes: Partial<PolicyInit>): Policy {
    const transparent = (net: NetMode) => net === "proxy-transparent";
    const sameFilter =
      !(["rules", "defaultAction", "dangerAllowed", "arch"] as const).some((k) => Object.hasOwn(changes, k)) &&
      (changes.net === undefined || transparent(changes.net) === transparent(this.net));
    const compiled = sameFilter ? this.filters.notify.tree : undefined;
    return new Policy({
      arch: this.arch,
      rules: this.rulesOrFactory,
      defaultAction: this.defaultAction,
      dangerAllowed: this.dangerAllowed,
      mounts: this.mounts,
      hostMounts: this.hostMounts,
      hostname: this.hostname,
      net: this.net,
      network: this.network,
      uid: this.uid,
      gid: this.gid,
      workdir: this.workdir,
      audit: this.audit,
      origin: this.origin,
      ...(compiled ? { notifyFilter: compiled } : {}),
      ...changes,
    });
  }

  /**
   * True when a rule may ask the monitor (TRACE). Read off the compiled
   * notify filter, where TRACE is the only source of this return value, so
   * that a precompiled profile need not build its rules (~5 ms) to answer.
   */
  /** Whether a run needs the monitor's answers (TRACE rules, audit mode), so never the fallback without user notification. */
  needsMonitor(): boolean {
    return this.audit || this.usesTrace();
  }

  usesTrace(): boolean {
    const trace = (RET.USER_NOTIF | REASON.TRACE) >>> 0;
    return this.filter(true).insns.some((i) => i.code === (BPF.RET | BPF.K) && i.k === trace);
  }
}
