/**
 * The syscall half of PolicyBuilder (src/policy/builder.ts): rules per
 * syscall, Sandbox2's families, argument conditions by name, the default
 * action and what a refusal gets, the safety rules a policy lets go. Its
 * state is read by PolicyBuilder.tryBuild() through syscallSettings().
 */
import { errnoNumber } from "../native/errno.ts";
import { ARCHES, type Arch, archByName, type ArchName, hostArch, MAX_SYSCALL_NR } from "./arch.ts";
import type { Alternative } from "./allowif.ts";
import { FAMILIES, type FamilyName, type FamilyRule, futexRule, isFamilyName } from "./families.ts";
import { MountBuilder } from "./mount-builder.ts";
import { type Action, ALLOW, describeAction, errno, type Fragment, isAction, KILL, nodes, REFUSE, type Rule, sameAction } from "./rules.ts";
import { type DangerName, isDangerName } from "./safety.ts";
import { quote } from "../names.ts";

export type SyscallRef = string | number;
export type OnRefusal = "errno" | "kill";

export interface BuilderOptions {
  /** Target architecture (default: this machine's). */
  arch?: ArchName;
}

interface TaggedRule {
  rule: Rule;
  fromFamily: boolean;
}

/** What the syscall half contributes to a Policy, or the problems that stop it. */
export type SyscallSettings =
  | { rules: Map<number, Rule[]>; defaultAction: Action; dangerAllowed: Set<string>; audit: boolean; problem?: undefined }
  | { problem: string };

/** Argument conditions and their value tables, read only by a policy that has some (README.md, "Start-up"). */
const allowIf = () => require("./allowif.ts") as typeof import("./allowif.ts");

export abstract class SyscallRuleBuilder extends MountBuilder {
  protected readonly arch: Arch;
  private readonly rules = new Map<number, TaggedRule[]>();
  private defaultAct: Action = KILL;
  private readonly danger = new Set<string>();
  private onRefusalMode: OnRefusal | undefined;
  /** Set inside asBase() (a policy file's profile): gives way to the file's own default action. */
  private onRefusalFromBase = false;
  private auditMode = false;
  /** Inside asBase(): rules for syscalls already decided are dropped, not errors. */
  private base = false;

  constructor(options: BuilderOptions = {}) {
    super();
    const name = options.arch;
    const arch = name === undefined ? hostArch() : archByName(name);
    if (!arch) this.problems.push(`arch: unknown architecture ${quote(name)} (x86_64 or aarch64)`);
    this.arch = arch ?? hostArch();
  }


  /** The number of a syscall on the target arch, or undefined (with a problem recorded). */
  private resolve(ref: SyscallRef, where: string): number | undefined {
    if (typeof ref === "number") {
      if (!Number.isInteger(ref) || ref < 0 || ref > MAX_SYSCALL_NR) {
        this.problems.push(`${where}: syscall number ${ref} is out of range (0..${MAX_SYSCALL_NR})`);
        return undefined;
      }
      return ref;
    }
    // The table has no prototype: "toString" or "__proto__" is unknown like any typo.
    const nr = typeof ref === "string" ? this.arch.syscalls[ref] : undefined;
    if (nr === undefined) {
      this.problems.push(`${where}: unknown syscall ${quote(ref)} on ${this.arch.name}`);
    }
    return nr;
  }

  private add(nr: number, name: string, rule: Rule, fromFamily: boolean, where: string): void {
    const list = this.rules.get(nr) ?? [];
    const last = list[list.length - 1];
    if (last?.rule.kind === "action") {
      if (this.base) return; // the rule added earlier, on top of this base, wins
      if (rule.kind === "action") {
        if (!sameAction(last.rule.action, rule.action)) {
          this.problems.push(
            `${where}: ${name} is already ${describeAction(last.rule.action)}; it cannot also be ${describeAction(rule.action)}`,
          );
        }
        return;
      }
      // A family's argument rule after an outright decision adds nothing.
      if (fromFamily) return;
      this.problems.push(
        `${where}: the argument rule for ${name} is unreachable: an earlier rule makes it ${describeAction(last.rule.action)} outright`,
      );
      return;
    }
    list.push({ rule, fromFamily });
    this.rules.set(nr, list);
  }

  allowSyscall(ref: SyscallRef): this {
    return this.allowSyscalls([ref]);
  }

  allowSyscalls(refs: readonly SyscallRef[]): this {
    for (const ref of refs) {
      const nr = this.resolve(ref, "allowSyscall");
      if (nr !== undefined) this.add(nr, String(ref), { kind: "action", action: ALLOW }, false, "allowSyscall");
    }
    return this;
  }

  /**
   * Like allowSyscalls, but names the target arch lacks are skipped (profiles
   * use it); a name no arch has is a typo, and a problem.
   */
  allowAvailableSyscalls(names: readonly string[]): this {
    const arches = Object.values(ARCHES);
    const anywhere = (n: string) => arches.some((a) => a.syscalls[n] !== undefined);
    for (const n of names) {
      if (typeof n !== "string" || !anywhere(n)) this.problems.push(`allowAvailableSyscalls: unknown syscall ${quote(n)} on every arch`);
    }
    return this.allowSyscalls(names.filter((n) => typeof n === "string" && this.arch.syscalls[n] !== undefined));
  }

  /** The syscall fails with `err` (a number or a name like "ENOENT") instead of running. */
  blockSyscallWithErrno(ref: SyscallRef, err: number | string): this {
    return this.blockSyscallsWithErrno([ref], err);
  }

  blockSyscallsWithErrno(refs: readonly SyscallRef[], err: number | string): this {
    const n = typeof err === "string" ? errnoNumber(err) : err;
    if (n === undefined || !Number.isInteger(n) || n < 1 || n > 4095) {
      this.problems.push(`blockSyscallWithErrno: ${quote(err)} is not an errno (1..4095 or a name like "EPERM")`);
      return this;
    }
    for (const ref of refs) {
      const nr = this.resolve(ref, "blockSyscallWithErrno");
      if (nr !== undefined) this.add(nr, String(ref), { kind: "action", action: errno(n) }, false, "blockSyscallWithErrno");
    }
    return this;
  }

  /** An argument program for one syscall (see src/policy/rules.ts). */
  addPolicyOnSyscall(ref: SyscallRef, fragment: Fragment): this {
    return this.addPolicyOnSyscalls([ref], fragment);
  }

  addPolicyOnSyscalls(refs: readonly SyscallRef[], fragment: Fragment): this {
    if (!Array.isArray(fragment) || fragment.length === 0) {
      this.problems.push("addPolicyOnSyscall: the rule program is empty");
      return this;
    }
    for (const ref of refs) {
      const nr = this.resolve(ref, "addPolicyOnSyscall");
      if (nr === undefined) continue;
      const rule: Rule =
        fragment.length === 1 && isAction(fragment[0])
          ? { kind: "action", action: fragment[0] }
          : { kind: "fragment", nodes: nodes(fragment) };
      this.add(nr, String(ref), rule, false, "addPolicyOnSyscall");
    }
    return this;
  }

  /**
   * `name` allowed when its arguments match one of `alternatives`, written by
   * name (src/policy/allowif.ts): `allowIf("socket", { family: "AF_UNIX" })`,
   * `allowIf("openat", { flags: { subsetOf: "O_RDONLY|O_CLOEXEC" } })`. A
   * call that matches none falls through to the syscall's next rule.
   */
  allowIf(name: string, alternatives: Alternative | readonly Alternative[], where = `allowIf(${quote(name)})`): this {
    const nr = this.resolve(name, "allowIf");
    if (nr === undefined) return this;
    const alts = Array.isArray(alternatives) ? alternatives : [alternatives as Alternative];
    const r = allowIf().allowIfFragment(this.arch, name, alts, where);
    if ("problems" in r) this.problems.push(...r.problems);
    else this.add(nr, name, { kind: "fragment", nodes: nodes(r.fragment) }, false, "allowIf");
    return this;
  }

  /**
   * Syscalls by name, and conditions on them, for any arch (what `bunbox
   * learn` writes): a name this arch lacks is read as the call it makes
   * instead (open as openat on aarch64, conditions included), or left out
   * when it has none; a name no arch has is a problem. `where` prefixes
   * problems (a policy file's field).
   */
  allowPortable(names: readonly string[], conditions: Readonly<Record<string, Alternative | readonly Alternative[]>> = {}, where = ""): this {
    const lists = Object.fromEntries(Object.entries(conditions).map(([k, v]) => [k, Array.isArray(v) ? v : [v as Alternative]]));
    const { allowIfFragment, resolvePortable } = allowIf();
    const r = resolvePortable(this.arch, names, lists, where);
    this.problems.push(...r.problems);
    this.allowSyscalls([...r.outright]);
    for (const [name, alts] of r.conditional) {
      const w = where ? `${where}: allowIf.${name}` : `allowPortable(${quote(name)})`;
      const f = allowIfFragment(this.arch, name, alts, w);
      if ("problems" in f) this.problems.push(...f.problems);
      else this.add(this.arch.syscalls[name]!, name, { kind: "fragment", nodes: nodes(f.fragment) }, false, "allowPortable");
    }
    return this;
  }

  /**
   * What a call outside the policy gets: "kill" (the default: a violation
   * ends the run, Sandbox2's model) or "errno": it fails with EPERM (ENOSYS
   * for a number the arch does not name, so libc falls back), the Result
   * lists it, and the run goes on. Safety rules stay violations either way.
   */
  setOnRefusal(mode: OnRefusal): this {
    if (mode !== "errno" && mode !== "kill") this.problems.push(`setOnRefusal: ${quote(mode)} is not "errno" or "kill"`);
    else {
      this.onRefusalMode = mode;
      this.onRefusalFromBase = this.base;
    }
    return this;
  }

  /**
   * Audit mode, for a production soak: calls the policy refuses run anyway
   * and the Result lists each (decoded, counted, with the change that would
   * allow it). Only the safety rules are enforced: a relaxation, listed by
   * `bunbox run -v`. Needs seccomp user notification.
   */
  setAudit(on = true): this {
    this.auditMode = on;
    return this;
  }

  /** What happens to every syscall no rule decides (default: KILL, a violation). */
  defaultAction(action: Action): this {
    if (!isAction(action)) {
      this.problems.push("defaultAction: not an action (ALLOW, KILL, TRACE or errno(n))");
      return this;
    }
    if (action.kind === "allow") {
      this.problems.push("defaultAction(ALLOW) gives away the allowlist: use dangerDefaultAllowAll() to mean it");
      return this;
    }
    this.defaultAct = action;
    return this;
  }

  /** Every syscall no rule decides is allowed. The safety rules still apply. */
  dangerDefaultAllowAll(): this {
    this.defaultAct = ALLOW;
    return this;
  }

  /** Lets one safety rule go (a dangerous syscall, or "clone-namespaces" etc.). */
  dangerAllowUnsafe(name: DangerName | string): this {
    if (!isDangerName(name)) {
      this.problems.push(`dangerAllowUnsafe: ${quote(name)} is not a safety rule`);
      return this;
    }
    this.danger.add(name);
    return this;
  }

  /**
   * Rules added inside `fn` are a base under the ones already added: where an
   * earlier rule decides a syscall outright, the base's rule for it is
   * dropped instead of conflicting (a policy file's rules over its profile).
   */
  asBase(fn: (b: this) => void): this {
    const was = this.base;
    this.base = true;
    try {
      fn(this);
    } finally {
      this.base = was;
    }
    return this;
  }

  /** Adds one of Sandbox2's families by name ("read", "staticStartup"…). */
  allowFamily(name: FamilyName): this {
    if (!isFamilyName(name)) {
      this.problems.push(`allowFamily: unknown family ${quote(name)}`);
      return this;
    }
    return this.family(name);
  }

  private family(name: FamilyName): this {
    for (const item of FAMILIES[name]() as readonly FamilyRule[]) {
      const [sys, fragment] = typeof item === "string" ? [item, undefined] : item;
      const nr = this.arch.syscalls[sys];
      if (nr === undefined) continue; // not on this arch
      const rule: Rule = fragment ? { kind: "fragment", nodes: nodes(fragment) } : { kind: "action", action: ALLOW };
      this.add(nr, sys, rule, true, `allow${name[0]!.toUpperCase()}${name.slice(1)}`);
    }
    return this;
  }

  allowExit(): this { return this.family("exit"); }
  allowRead(): this { return this.family("read"); }
  allowWrite(): this { return this.family("write"); }
  allowOpen(): this { return this.family("open"); }
  allowStat(): this { return this.family("stat"); }
  allowAccess(): this { return this.family("access"); }
  allowDup(): this { return this.family("dup"); }
  allowPipe(): this { return this.family("pipe"); }
  allowChmod(): this { return this.family("chmod"); }
  allowChown(): this { return this.family("chown"); }
  allowReaddir(): this { return this.family("readdir"); }
  allowReadlink(): this { return this.family("readlink"); }
  allowLink(): this { return this.family("link"); }
  allowSymlink(): this { return this.family("symlink"); }
  allowMkdir(): this { return this.family("mkdir"); }
  allowUtime(): this { return this.family("utime"); }
  allowUnlink(): this { return this.family("unlink"); }
  allowRename(): this { return this.family("rename"); }
  allowSafeFcntl(): this { return this.family("safeFcntl"); }
  allowFork(): this { return this.family("fork"); }
  allowWait(): this { return this.family("wait"); }
  allowAlarm(): this { return this.family("alarm"); }
  allowPosixTimers(): this { return this.family("posixTimers"); }
  allowHandleSignals(): this { return this.family("handleSignals"); }
  allowKill(): this { return this.family("kill"); }
  allowTcGets(): this { return this.family("tcgets"); }
  allowTime(): this { return this.family("time"); }
  allowSleep(): this { return this.family("sleep"); }
  allowGetIds(): this { return this.family("getIds"); }
  allowGetPids(): this { return this.family("getPids"); }
  allowGetRlimit(): this { return this.family("getRlimit"); }
  allowSetRlimit(): this { return this.family("setRlimit"); }
  allowGetRandom(): this { return this.family("getRandom"); }
  allowEpoll(): this { return this.family("epoll"); }
  allowInotify(): this { return this.family("inotify"); }
  allowSelect(): this { return this.family("select"); }
  allowPoll(): this { return this.family("poll"); }
  allowEventFd(): this { return this.family("eventfd"); }
  allowPrctlSetName(): this { return this.family("prctlSetName"); }
  allowMlock(): this { return this.family("mlock"); }
  allowFutex(): this { return this.family("futex"); }
  allowMmap(): this { return this.family("mmap"); }
  allowMmapWithoutExec(): this { return this.family("mmapWithoutExec"); }
  allowMprotect(): this { return this.family("mprotect"); }
  allowMprotectWithoutExec(): this { return this.family("mprotectWithoutExec"); }
  allowSystemMalloc(): this { return this.family("systemMalloc"); }
  allowStaticStartup(): this { return this.family("staticStartup"); }
  allowDynamicStartup(): this { return this.family("dynamicStartup"); }
  allowSharedMemory(): this { return this.family("sharedMemory"); }
  allowComms(): this { return this.family("comms"); }

  /** futex with one operation (FUTEX.WAIT…), private and clock variants included. */
  allowFutexOp(op: number): this {
    const [name, fragment] = futexRule([op]) as readonly [string, Fragment];
    const nr = this.arch.syscalls[name];
    if (nr !== undefined) this.add(nr, name, { kind: "fragment", nodes: nodes(fragment) }, true, "allowFutexOp");
    return this;
  }

  /** The rules as the Policy takes them, and the default action a refusal mode makes of the default. */
  protected syscallSettings(): SyscallSettings {
    let defaultAction = this.defaultAct;
    if (this.onRefusalMode === "errno" && !(this.onRefusalFromBase && defaultAction.kind !== "kill")) {
      if (defaultAction.kind !== "kill") return { problem: `onRefusal "errno" needs a policy whose default is a violation, not ${describeAction(defaultAction)}` };
      defaultAction = REFUSE;
    }
    const rules = new Map<number, Rule[]>();
    for (const [nr, list] of this.rules) rules.set(nr, list.map((t) => t.rule));
    return { rules, defaultAction, dangerAllowed: new Set(this.danger), audit: this.auditMode };
  }
}
