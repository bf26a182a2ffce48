/**
 * bunbox as a library: run a program in a sandbox and learn exactly how it
 * ended. See README.md.
 *
 *   const policy = new PolicyBuilder().allowStaticStartup().allowRead().allowWrite().allowExit().build();
 *   const result = await new Sandbox(new Executor("/bin/cat", ["cat"]), policy).run();
 */
export { BunboxError, UsageError } from "./errors.ts";
export { PolicyBuilder, PolicyError, type OnRefusal } from "./policy/builder.ts";
export { type Alternative, type Condition } from "./policy/allowif.ts";
export { Policy, type NetMode } from "./policy/policy.ts";
export { profileBuilder, PROFILE_NAMES, type ProfileName } from "./policy/profiles.ts";
export { loadPolicyFile, policyFromJson } from "./policy/file.ts";
export {
  ALLOW, KILL, TRACE, USER_NOTIF, REFUSE, errno, arg, arg32, jeq, jne, jset, jge, jgt, jle, jlt, label, goto,
  type Action, type Fragment,
} from "./policy/rules.ts";
export { FUTEX } from "./policy/families.ts";
export { evaluate, type SeccompData } from "./policy/interpreter.ts";
export { Executor, Ipc, type ExecutorOptions } from "./sandbox/executor.ts";
export { Limits, DEFAULT_LIMITS, type LimitsInit } from "./sandbox/limits.ts";
export { MountPlan, type MountOp, type RootOp } from "./sandbox/mounts.ts";
export type { HostMount } from "./sandbox/exposure.ts";
export {
  runSandbox, degrade, MAXIMUM_ISOLATION, type SandboxlibConfig, type SandboxlibResult, type ExtraMount, type Output, type Degraded,
} from "./sandbox/sandboxlib.ts";
export { capabilities, type Capabilities } from "./sandbox/capabilities.ts";
export { loadBundle, BundleError, type Bundle, type BundleOptions } from "./oci/bundle.ts";
export { applySeccompProfile, SeccompProfileError, type SeccompProfile } from "./oci/seccomp.ts";
export { Result, type Status, type Violation, type Rusage } from "./sandbox/result.ts";
export type { ContainmentInfo } from "./containment/containment.ts";
export type { NetLimits, ConnectionRecord, NetEvent, SandboxNetworkReport, DnsEvent, DnsReport } from "./net/index.ts";
export { Sandbox, type SandboxHooks } from "./sandbox/sandbox.ts";
export { Runtime, type RuntimeOptions } from "./sandbox/runtime.ts";
export type { SyscallEvent, SyscallDecision } from "./monitor/monitor.ts";
export { Comms, SharedBuffer, CommsError, type CommsOptions } from "./comms/index.ts";
export { ForkServer } from "./sandbox/fork-server.ts";
export { Learner, learn, type LearnerOptions, type LearnRun } from "./learn/learner.ts";
export { type Observations } from "./learn/observations.ts";
export { type Suggestion, applySuggestion } from "./monitor/suggest.ts";
export { type RefusedCall } from "./sandbox/result.ts";
export { COMMS_FD } from "./sandbox/executor.ts";
