/**
 * The "network" key of a policy file (src/policy/file.ts uses it):
 *
 *   "network": "none" | "loopback" | "host" | "proxy" | "proxy-transparent"
 *   "network": {
 *     "mode": "proxy",                 (or "proxy-transparent")
 *     "allow": ["registry.npmjs.org", "*.pythonhosted.org:443", "10.1.2.0/24"],
 *     "deny": ["evil.pythonhosted.org"],
 *     "addHosts": { "mirror.internal": "10.1.2.3" }
 *   }
 *
 * Checked with the same parsers the proxy uses (pattern.ts, address.ts), so
 * an entry the file accepts is one the proxy understands; each issue names
 * its entry ("network.allow.2: \"*foo.com\": * may only begin a pattern…").
 * The string or object form is chosen by the input's type (v.lazy), so a
 * mistake in the object is reported as itself, not as "not a mode name".
 */
import * as v from "valibot";
import { NET_MODES } from "../policy/policy.ts";
import { parseIp } from "./address.ts";
import { normalizeName } from "./host.ts";
import { parsePattern } from "./pattern.ts";

const PatternSchema = v.pipe(
  v.string("a host pattern is a string"),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const p = parsePattern(dataset.value);
    if (!p.ok) addIssue({ message: `"${dataset.value}": ${p.error}` });
  }),
);

const AddHostNameSchema = v.pipe(
  v.string(),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const n = normalizeName(dataset.value);
    if (!n.ok) addIssue({ message: `"${dataset.value}" is not a host name: ${n.error}` });
  }),
);

const AddHostAddressSchema = v.pipe(
  v.string("an address is a string, like \"10.1.2.3\" or \"::1\""),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const text = dataset.value.replace(/^\[(.*)\]$/, "$1");
    if (!parseIp(text)) addIssue({ message: `"${dataset.value}" is not an IP address` });
  }),
);

export const NetworkProxySchema = v.strictObject({
  mode: v.picklist(["proxy", "proxy-transparent"], "mode: \"proxy\" or \"proxy-transparent\" (the other modes are written as a string: \"none\", \"loopback\", \"host\")"),
  allow: v.optional(v.array(PatternSchema)),
  deny: v.optional(v.array(PatternSchema)),
  addHosts: v.optional(v.record(AddHostNameSchema, AddHostAddressSchema)),
});

export const NetworkSchema = v.lazy((input: unknown) =>
  typeof input === "object" && input !== null && !Array.isArray(input)
    ? NetworkProxySchema
    : v.picklist(NET_MODES, `a network mode (${NET_MODES.join(", ")}), or { "mode": "proxy", "allow": [...] }`),
);

export type NetworkFile = v.InferOutput<typeof NetworkSchema>;
