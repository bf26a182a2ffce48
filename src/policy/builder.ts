/**
 * PolicyBuilder: Sandbox2's builder in camelCase.
 *
 *   const policy = new PolicyBuilder()
 *     .allowStaticStartup().allowRead().allowWrite().allowExit()
 *     .addPolicyOnSyscall("write", [arg(0), jeq(1, ALLOW), jeq(2, ALLOW), KILL])
 *     .blockSyscallWithErrno("open", ENOENT)
 *     .addFile("/etc/localtime").addTmpfs("/tmp", { size: "16M" })
 *     .build();
 *
 * Errors are sticky: each call records its problems and returns the builder;
 * build() throws one PolicyError listing them all, tryBuild() returns them.
 * A builder builds once. Rules for a syscall apply in the order added, the
 * first that decides wins; everything not allowed falls to the default
 * action (a violation unless changed). The safety rules (src/policy/safety.ts)
 * come before every policy's own. The filesystem methods (addFile, setRoot…)
 * are its base class's, src/policy/mount-builder.ts.
 */
import { ProblemsError } from "../errors.ts";
import { errnoNumber } from "../native/errno.ts";
import { ARCHES, type Arch, archByName, type ArchName, hostArch, MAX_SYSCALL_NR } from "./arch.ts";
import { FilterTooLong } from "./assembler.ts";
import { FAMILIES, type FamilyName, type FamilyRule, futexRule, isFamilyName } from "./families.ts";
import type { Alternative } from "./allowif.ts";
import { MountBuilder } from "./mount-builder.ts";
import { hostMountProblems, isProxyMode, NET_MODES, type NetMode, Policy } from "./policy.ts";
import { NetPolicy, type RuleSubjects } from "../net/policy.ts";
import { parsePattern } from "../net/pattern.ts";
import { normalizeName } from "../net/host.ts";
import { parseIp } from "../net/address.ts";
import { type Action, ALLOW, CompileError, describeAction, errno, type Fragment, isAction, KILL, nodes, REFUSE, type Rule, sameAction } from "./rules.ts";
import { type DangerName, isDangerName } from "./safety.ts";
import { quote } from "../names.ts";

export class PolicyError extends ProblemsError {
  override readonly name = "PolicyError";
  constructor(problems: readonly string[]) {
    super("policy", "invalid policy", problems);
  }
}

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

/** Argument conditions and their value tables, read only by a policy that has some (README.md, "Start-up"). */
const allowIf = () => require("./allowif.ts") as typeof import("./allowif.ts");

export class PolicyBuilder extends MountBuilder {
  private readonly arch: Arch;
  private readonly rules = new Map<number, TaggedRule[]>();
  private defaultAct: Action = KILL;
  private readonly danger = new Set<string>();
  private hostname = "bunbox";
  private net: NetMode = "none";
  /** setNetwork was called: a host list then does not switch the mode to proxy. */
  private netSet = false;
  private readonly hosts = { allow: [] as string[], deny: [] as string[], addHosts: {} as Record<string, string> };
  private uid: number | undefined;
  private gid: number | undefined;
  private workdir: string | undefined;
  private onRefusalMode: OnRefusal | undefined;
  /** Set inside asBase() (a policy file's profile): gives way to the file's own default action. */
  private onRefusalFromBase = false;
  private auditMode = false;
  private origin = "PolicyBuilder";
  private built = false;
  /** Inside asBase(): rules for syscalls already decided are dropped, not errors. */
  private base = false;

  constructor(options: BuilderOptions = {}) {
    super();
    const name = options.arch;
    const arch = name === undefined ? hostArch() : archByName(name);
    if (!arch) this.problems.push(`arch: unknown architecture ${quote(name)} (x86_64 or aarch64)`);
    this.arch = arch ?? hostArch();
  }

  // ---- syscalls ----

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

  // ---- namespaces ----

  setHostname(name: string): this {
    if (/^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/.test(name)) this.hostname = name;
    else this.problems.push(`setHostname: "${name}" is not a hostname (letters, digits, . and -, at most 63)`);
    return this;
  }

  /**
   * none (and loopback, the same): a network namespace of its own with only
   * lo, up; host: the host's network (a relaxation); proxy: the same as none,
   * and bunbox's proxy, through which the hosts of allowHosts are reachable;
   * proxy-transparent: the same, with connect() to outside addresses proxied
   * too (docs/network.md).
   */
  setNetwork(mode: NetMode): this {
    if (!NET_MODES.includes(mode)) {
      this.problems.push(`setNetwork: "${mode}" is not one of ${NET_MODES.join(", ")}`);
      return this;
    }
    this.net = mode;
    this.netSet = true;
    return this;
  }

  /**
   * Hosts the sandboxee may reach through bunbox's proxy: names
   * ("registry.npmjs.org"), wildcards for subdomains ("*.pythonhosted.org"),
   * IP addresses and CIDR ranges, each with an optional ":port". Implies
   * setNetwork("proxy") unless a proxy mode is set.
   */
  allowHosts(...patterns: string[]): this {
    return this.hostPatterns("allowHosts", this.hosts.allow, patterns);
  }

  /** Hosts refused whatever allowHosts says (the same patterns). */
  denyHosts(...patterns: string[]): this {
    return this.hostPatterns("denyHosts", this.hosts.deny, patterns);
  }

  /** `name` resolves to `ip` for the run (like curl --resolve), trusted: its address is not checked. */
  addHost(name: string, ip: string): this {
    const n = typeof name === "string" ? normalizeName(name) : { ok: false as const, error: "not a string" };
    if (!n.ok) this.problems.push(`addHost: ${quote(name)} is not a host name: ${n.error}`);
    else if (typeof ip !== "string" || !parseIp(ip.replace(/^\[(.*)\]$/, "$1"))) this.problems.push(`addHost(${name}): ${quote(ip)} is not an IP address`);
    else this.hosts.addHosts[name] = ip;
    return this;
  }

  private hostPatterns(where: string, into: string[], patterns: string[]): this {
    for (const text of patterns) {
      const p = typeof text === "string" ? parsePattern(text) : { ok: false as const, error: "a host pattern is a string" };
      if (p.ok) into.push(text);
      else this.problems.push(`${where}: ${quote(text)}: ${p.error}`);
    }
    return this;
  }

  /** The proxy's rules, when the mode is a proxy one (a host list without setNetwork makes it "proxy"). */
  private networkRules(): NetPolicy | undefined {
    const h = this.hosts;
    const given = h.allow.length + h.deny.length + Object.keys(h.addHosts).length > 0;
    if (given && !isProxyMode(this.net)) {
      if (this.netSet) {
        this.problems.push(`allowHosts/denyHosts/addHost: the network is "${this.net}"; host lists need "proxy" or "proxy-transparent"`);
        return undefined;
      }
      this.net = "proxy";
    }
    if (!isProxyMode(this.net)) return undefined;
    const subjects: RuleSubjects = { allow: () => "allowHosts", deny: () => "denyHosts", addHost: (n) => `addHost(${n})` };
    try {
      return new NetPolicy(h, subjects);
    } catch (e) {
      this.problems.push((e as Error).message);
      return undefined;
    }
  }

  /** The uid inside the sandbox (the kernel uid stays unprivileged). */
  setUid(uid: number): this {
    if (!Number.isInteger(uid) || uid < 0 || uid > 0xfffffffe) this.problems.push(`setUid: bad uid ${uid}`);
    else this.uid = uid;
    return this;
  }

  setGid(gid: number): this {
    if (!Number.isInteger(gid) || gid < 0 || gid > 0xfffffffe) this.problems.push(`setGid: bad gid ${gid}`);
    else this.gid = gid;
    return this;
  }

  /**
   * Where `bunbox run` starts the command when --cwd is not given (the build
   * profile: the directory it mounts writable); "/" otherwise.
   */
  setWorkdir(path: string): this {
    if (typeof path !== "string" || !path.startsWith("/")) this.problems.push(`setWorkdir: ${quote(path)} is not an absolute path`);
    else this.workdir = path;
    return this;
  }

  /** Names where the policy came from, for messages ("profile shell", a file). */
  setOrigin(origin: string): this {
    this.origin = origin;
    return this;
  }

  /** Records a problem found by a loader (policy files use this). */
  problem(text: string): this {
    this.problems.push(text);
    return this;
  }

  /**
   * Runs `fn`, naming the problems it records by `label` (a policy file's
   * key: "block.getpid", "filesystem.mounts.0") instead of by the builder
   * method that found them ("blockSyscallWithErrno", "bind(/x)"): the
   * writer of a file knows its keys, not our methods.
   */
  at(label: string, fn: () => void): this {
    const from = this.problems.length;
    fn();
    for (let i = from; i < this.problems.length; i++) {
      this.problems[i] = `${label}: ${this.problems[i]!.replace(/^[A-Za-z]+(\([^)]*\))?( size)?: /, "")}`;
    }
    return this;
  }

  // ---- build ----

  tryBuild(): { policy: Policy; problems?: undefined } | { policy?: undefined; problems: string[] } {
    if (this.built) return { problems: ["this PolicyBuilder has already built its policy"] };
    this.built = true;
    const network = this.networkRules();
    if (this.problems.length) return { problems: [...this.problems] };
    let defaultAction = this.defaultAct;
    if (this.onRefusalMode === "errno" && !(this.onRefusalFromBase && defaultAction.kind !== "kill")) {
      if (defaultAction.kind !== "kill") return { problems: [`onRefusal "errno" needs a policy whose default is a violation, not ${describeAction(defaultAction)}`] };
      defaultAction = REFUSE;
    }
    const rules = new Map<number, Rule[]>();
    for (const [nr, list] of this.rules) rules.set(nr, list.map((t) => t.rule));
    const exposed = hostMountProblems(this.mounts, this.hostMounts);
    if (exposed.length) return { problems: exposed };
    const policy = new Policy({
      arch: this.arch,
      rules,
      defaultAction,
      dangerAllowed: new Set(this.danger),
      audit: this.auditMode,
      mounts: this.mounts,
      hostMounts: new Set(this.hostMounts),
      hostname: this.hostname,
      net: this.net,
      network,
      uid: this.uid,
      gid: this.gid,
      workdir: this.workdir,
      origin: this.origin,
    });
    // Compiling checks the rules (labels, widths, the 4096 limit); the
    // variant without user notification is compiled when a run needs it.
    // Without rules of its own (the safety rules alone, as for a
    // precompiled profile's settings) nothing can fail: compiled on use.
    if (rules.size === 0) return { policy };
    try {
      policy.filter(true);
    } catch (e) {
      if (e instanceof CompileError || e instanceof FilterTooLong) return { problems: [e.message] };
      throw e;
    }
    return { policy };
  }

  build(): Policy {
    const r = this.tryBuild();
    if (r.problems) throw new PolicyError(r.problems);
    return r.policy;
  }
}
