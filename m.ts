import { applyProfileRules, PROFILE_NAMES } from "./src/policy/profiles.ts";
import { PolicyBuilder } from "./src/policy/builder.ts";
import { compileFilter, effectiveRules, retValue } from "./src/policy/compiler.ts";
import { verifyFilter } from "./src/policy/verify.ts";
import { RET } from "./src/policy/bpf.ts";
import { REASON } from "./src/policy/safety.ts";
const t0 = performance.now();
const p = applyProfileRules(new PolicyBuilder({ arch: "x86_64" }), "default").build();
const t1 = performance.now();
console.log("first default build (incl compile+verify, cold)", (t1 - t0).toFixed(2));
for (const name of PROFILE_NAMES) {
  const p = applyProfileRules(new PolicyBuilder({ arch: "x86_64" }), name).build();
  const spec = { arch: p.arch, rules: p.rules, defaultAction: p.defaultAction, dangerAllowed: p.dangerAllowed, notify: true };
  const times: number[] = []; const vt: number[] = [];
  for (let i = 0; i < 20; i++) {
    const a = performance.now(); const f = compileFilter(spec); const b = performance.now();
    const rules = effectiveRules(spec);
    const c = performance.now();
    verifyFilter(f.insns, f.magic, { arch: p.arch, rules, defaultAction: p.defaultAction, ret: (x) => retValue(x, true), violation: (r) => (RET.USER_NOTIF | r) >>> 0, exec: (RET.USER_NOTIF | REASON.EXEC) >>> 0 });
    const d = performance.now();
    times.push(b - a); vt.push(d - c);
  }
  console.log(name, "compile+verify first", times[0]!.toFixed(2), "median", times.sort((x,y)=>x-y)[10]!.toFixed(2), "verify first", vt[0]!.toFixed(2), "median", vt.sort((x,y)=>x-y)[10]!.toFixed(2));
}
