/**
 * --net proxy-transparent's change to a policy's rules: connect() goes to
 * the monitor (TRACE) wherever the policy would allow it, so that a TCP
 * connect to an outside address can be taken over (transparent.ts). What
 * the policy refuses stays refused: only ALLOW becomes TRACE, in a whole-
 * syscall rule, inside argument programs, and at the end when the default
 * action is to allow.
 */
import type { Arch } from "../policy/arch.ts";
import { type Action, type Node, type Rule, TRACE } from "../policy/rules.ts";

type Rules = ReadonlyMap<number, readonly Rule[]>;

const traced = (a: Action): Action => (a.kind === "allow" ? TRACE : a);

function node(n: Node): Node {
  if (n.op === "ret") return { ...n, action: traced(n.action) };
  if ((n.op === "cmp" || n.op === "goto") && "kind" in n.target) return { ...n, target: traced(n.target) };
  return n;
}

/** `rules` with connect traced where it is allowed (`defaultAction` for what no rule decides). */
export function traceConnect(rules: Rules, arch: Arch, defaultAction: Action): Rules {
  const nr = arch.syscalls.connect;
  if (nr === undefined) return rules;
  const own = (rules.get(nr) ?? []).map((r): Rule => (r.kind === "action" ? { kind: "action", action: traced(r.action) } : { kind: "fragment", nodes: r.nodes.map(node) }));
  const last = own.at(-1);
  if (defaultAction.kind === "allow" && last?.kind !== "action") own.push({ kind: "action", action: TRACE });
  return new Map(rules).set(nr, own);
}
