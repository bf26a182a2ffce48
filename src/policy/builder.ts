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
 * come before every policy's own. The syscall methods (allowSyscall, the
 * families, allowIf, defaultAction…) are its base class's,
 * src/policy/syscall-builder.ts; the filesystem methods (addFile,
 * setRoot…) that one's base, src/policy/mount-builder.ts.
 */
import { ProblemsError } from "../errors.ts";
import { FilterTooLong } from "./assembler.ts";
import { hostMountProblems, isProxyMode, NET_MODES, type NetMode, Policy } from "./policy.ts";
import { NetPolicy, type RuleSubjects } from "../net/policy.ts";
import { parsePattern } from "../net/pattern.ts";
import { normalizeName } from "../net/host.ts";
import { parseIp } from "../net/address.ts";
import { CompileError } from "./rules.ts";
import { type BuilderOptions, SyscallRuleBuilder } from "./syscall-builder.ts";
import { quote } from "../names.ts";

export type { BuilderOptions, OnRefusal, SyscallRef } from "./syscall-builder.ts";

export class PolicyError extends ProblemsError {
  override readonly name = "PolicyError";
  constructor(problems: readonly string[]) {
    super("policy", "invalid policy", problems);
  }
}

export class PolicyBuilder extends SyscallRuleBuilder {
  private hostname = "bunbox";
  private net: NetMode = "none";
  /** setNetwork was called: a host list then does not switch the mode to proxy. */
  private netSet = false;
  private readonly hosts = { allow: [] as string[], deny: [] as string[], addHosts: {} as Record<string, string> };
  private uid: number | undefined;
  private gid: number | undefined;
  private workdir: string | undefined;
  private origin = "PolicyBuilder";
  private built = false;

  constructor(options: BuilderOptions = {}) {
    super(options);
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
    const s = this.syscallSettings();
    if (s.problem !== undefined) return { problems: [s.problem] };
    const { rules, defaultAction, dangerAllowed, audit } = s;
    const exposed = hostMountProblems(this.mounts, this.hostMounts);
    if (exposed.length) return { problems: exposed };
    const policy = new Policy({
      arch: this.arch,
      rules,
      defaultAction,
      dangerAllowed,
      audit,
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
