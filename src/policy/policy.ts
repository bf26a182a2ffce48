/**
 * A built policy: *what is allowed*. Syscall rules (compiled to seccomp-BPF
 * on demand, for the arch it was built for), the filesystem view, the
 * network mode, hostname and inside ids. Immutable; PolicyBuilder makes one,
 * `derive` makes a changed copy (the CLI adds its mount options that way).
 */
import type { Arch } from "./arch.ts";
import { BPF, RET } from "./bpf.ts";
import { compileFilter, type Filter } from "./compiler.ts";
import type { Action, Rule } from "./rules.ts";
import { REASON } from "./safety.ts";
import { MountPlan } from "../sandbox/mounts.ts";
import type { Runtime } from "../sandbox/runtime.ts";

export type NetMode = "none" | "loopback" | "host";
export const NET_MODES: readonly NetMode[] = ["none", "loopback", "host"];

type Rules = ReadonlyMap<number, readonly Rule[]>;

export interface PolicyInit {
  arch: Arch;
  /** The rules, or a function building them on first use. */
  rules: Rules | (() => Rules);
  defaultAction: Action;
  /** Safety rules relaxed with dangerAllowUnsafe(...). */
  dangerAllowed: ReadonlySet<string>;
  /** The filesystem; undefined: DESIGN.md's default view. */
  mounts: MountPlan | undefined;
  hostname: string;
  net: NetMode;
  /** Inside ids; undefined: the caller's ids (65534 when the caller is root). */
  uid: number | undefined;
  gid: number | undefined;
  /** Every relaxation in force, in words, for `bunbox run -v`. */
  relaxations: readonly string[];
  /** Where this policy came from ("profile default", a file path…). */
  origin: string;
  /** The notify filter, already compiled for these rules (src/policy/precompiled.ts). */
  notifyFilter?: Filter;
}

export class Policy {
  readonly arch: Arch;
  readonly defaultAction: Action;
  readonly dangerAllowed: ReadonlySet<string>;
  readonly mounts: MountPlan | undefined;
  readonly hostname: string;
  readonly net: NetMode;
  readonly uid: number | undefined;
  readonly gid: number | undefined;
  readonly relaxations: readonly string[];
  readonly origin: string;
  private readonly filters = new Map<string, Filter>();
  private rulesOrFactory: Rules | (() => Rules);

  constructor(init: PolicyInit) {
    this.arch = init.arch;
    this.rulesOrFactory = init.rules;
    if (init.notifyFilter) this.filters.set("true:tree", init.notifyFilter);
    this.defaultAction = init.defaultAction;
    this.dangerAllowed = init.dangerAllowed;
    this.mounts = init.mounts;
    this.hostname = init.hostname;
    this.net = init.net;
    this.uid = init.uid;
    this.gid = init.gid;
    this.relaxations = init.relaxations;
    this.origin = init.origin;
    Object.freeze(this.relaxations);
  }

  /** Syscall rules by number (built on first use for a precompiled profile). */
  get rules(): Rules {
    if (typeof this.rulesOrFactory === "function") this.rulesOrFactory = this.rulesOrFactory();
    return this.rulesOrFactory;
  }

  /** The seccomp program; `notify` routes violations and TRACE to the monitor. */
  filter(notify: boolean, layout: "tree" | "linear" = "tree"): Filter {
    const key = `${notify}:${layout}`;
    let f = this.filters.get(key);
    if (!f) {
      f = compileFilter({
        arch: this.arch,
        rules: this.rules,
        defaultAction: this.defaultAction,
        dangerAllowed: this.dangerAllowed,
        notify,
        layout,
      });
      this.filters.set(key, f);
    }
    return f;
  }

  /** The mount plan in force (the default view when the policy has none, as `runtime` last saw the host). */
  mountPlan(runtime?: Runtime): MountPlan {
    return this.mounts?.clone() ?? MountPlan.defaultView(runtime);
  }

  /** A copy with some fields changed (the compiled filter carries over unless the rules change). */
  derive(changes: Partial<PolicyInit>): Policy {
    const sameFilter = !["rules", "defaultAction", "dangerAllowed", "arch"].some((k) => k in changes);
    const compiled = sameFilter ? this.filters.get("true:tree") : undefined;
    return new Policy({
      arch: this.arch,
      rules: this.rulesOrFactory,
      defaultAction: this.defaultAction,
      dangerAllowed: this.dangerAllowed,
      mounts: this.mounts,
      hostname: this.hostname,
      net: this.net,
      uid: this.uid,
      gid: this.gid,
      relaxations: this.relaxations,
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
  usesTrace(): boolean {
    const trace = (RET.USER_NOTIF | REASON.TRACE) >>> 0;
    return this.filter(true).insns.some((i) => i.code === (BPF.RET | BPF.K) && i.k === trace);
  }
}
