/**
 * Every built-in profile's notify filter, for src/policy/precompiled.ts:
 * scripts/build.ts passes the table to the executable as the
 * BUNBOX_PRECOMPILED define (test/cli/startup.test.ts sets the same global
 * for a run from source). For the arch the executable is built for (it runs
 * on no other): the table is read at every start of `bunbox run`, ~0.4 ms
 * per arch here; another arch's profile (`policy explain --arch`) is
 * compiled when asked for.
 */
import { type ArchName, hostArch } from "../src/policy/arch.ts";
import { encode } from "../src/policy/bpf.ts";
import { PolicyBuilder } from "../src/policy/builder.ts";
import type { PrecompiledTable } from "../src/policy/precompiled.ts";
import { applyProfileRules, PROFILE_NAMES, profileOnRefusal } from "../src/policy/profiles.ts";

export function precompile(arches: readonly ArchName[] = [hostArch().name]): PrecompiledTable {
  const table: PrecompiledTable = {};
  for (const name of PROFILE_NAMES) {
    table[name] = {};
    for (const arch of arches) {
      // The rules and what a refusal does: the two parts of a profile its filter holds.
      const f = applyProfileRules(new PolicyBuilder({ arch }), name).setOnRefusal(profileOnRefusal(name)).build().filter(true);
      table[name]![arch] = [Buffer.from(encode(f.insns)).toString("base64"), f.magic[0], f.magic[1]];
    }
  }
  return table;
}
