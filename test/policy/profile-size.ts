/** A policy's size for the comparisons of the learned profiles: the syscalls it can allow (src/policy/explain.ts). */
import { allowedCount as allowedIn } from "../../src/policy/explain.ts";
import type { Policy } from "../../src/policy/policy.ts";

export function allowedCount(policy: Policy): number {
  return allowedIn(policy.filter(true).insns, policy.arch);
}
