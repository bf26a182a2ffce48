/**
 * How many syscalls a policy allows, for the size comparisons of the learned
 * profiles and the learn benchmark: those for which the compiled filter can
 * return ALLOW (for some arguments).
 */
import { reachableReturns } from "../../src/policy/explain.ts";
import { RET } from "../../src/policy/bpf.ts";
import type { Policy } from "../../src/policy/policy.ts";

export const ALLOW_RET = RET.ALLOW;

export function allowedCount(policy: Policy): number {
  const prog = policy.filter(true).insns;
  return Object.values(policy.arch.syscalls).filter((nr) => reachableReturns(prog, policy.arch, nr).has(RET.ALLOW)).length;
}
