/**
 * A built policy: *what is allowed*. Syscall rules (compiled to seccomp-BPF
 * on demand, for the arch it was built for), the filesystem view, the
 * network mode, hostname and inside ids. Immutable; PolicyBuilder makes one,
 * `derive` makes a changed copy (the CLI adds its mount options that way).
 */
import type { Arch } from "./arch.ts";
import { compileFilter, type Filter } from "./compiler.ts";
import type { Action, Rule } from "./rules.ts";
import { MountPlan } from "../sandbox/mounts.ts";

export type NetMode = "none" | "loopback" | "host";
export const NET_MODES: readonly NetMode[] = ["none", "loopback", "host"];

export interface PolicyInit {
  arch: Arch;
  rules: ReadonlyMap<number, readonly Rule[]>;
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
}

export class Policy implements PolicyInit {
  readonly arch: Arch;
  readonly rules: ReadonlyMap<number, readonly Rule[]>;
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

  constructor(init: PolicyInit) {
    this.arch = init.arch;
    this.rules = init.rules;
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

  /** The mount plan in force (the default view when the policy has none). */
  mountPlan(): MountPlan {
    return this.mounts?.clone() ?? MountPlan.defaultView();
  }

  /** A copy with some fields changed. */
  derive(changes: Partial<PolicyInit>): Policy {
    return new Policy({ ...this, ...changes });
  }

  /** True when a rule may ask the monitor (TRACE). */
  usesTrace(): boolean {
    if (this.defaultAction.kind === "trace") return true;
    for (const rules of this.rules.values()) {
      for (const r of rules) {
        if (r.kind === "action" ? r.action.kind === "trace" : r.nodes.some((n) =>
          (n.op === "ret" && n.action.kind === "trace") ||
          ((n.op === "cmp" || n.op === "goto") && "kind" in n.target && n.target.kind === "trace"))) {
          return true;
        }
      }
    }
    return false;
  }
}
