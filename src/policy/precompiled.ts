/**
 * The built-in profiles' filters, compiled when the executable is built
 * (scripts/build.ts passes them as the BUNBOX_PRECOMPILED define), so that
 * `bunbox run --profile NAME` does not build and compile a 350-rule policy
 * with a cold JIT on every start (~10 ms). The rules themselves are built
 * only if something asks for them (-v, explain, TRACE checks).
 *
 * From source the define is absent and everything is compiled as usual; a
 * test compares the executable's filters with the source's.
 */
import { type ArchName, hostArch } from "./arch.ts";
import { decode } from "./bpf.ts";
import { PolicyBuilder } from "./builder.ts";
import type { Filter } from "./filter.ts";
import type { Policy } from "./policy.ts";
import { applyProfileSettings, profileBuilder } from "./profiles.ts";

/** profile → arch → [base64 sock_filter[], magic lo index, magic hi index] */
export type PrecompiledTable = Record<string, Partial<Record<ArchName, [string, number, number]>>>;

declare const BUNBOX_PRECOMPILED: PrecompiledTable | undefined;

export function precompiledFilter(profile: string, arch: ArchName): Filter | undefined {
  const table = typeof BUNBOX_PRECOMPILED === "undefined" ? undefined : BUNBOX_PRECOMPILED;
  // A plain object from JSON: only its own keys count ("toString" is no profile).
  const byArch = table && Object.hasOwn(table, profile) ? table[profile] : undefined;
  const entry = byArch && Object.hasOwn(byArch, arch) ? byArch[arch] : undefined;
  if (!entry) return undefined;
  const [b64, lo, hi] = entry;
  // Not Buffer.from(b64, "base64"): a run that meets no other Buffer would set Buffer up for this alone.
  return { insns: decode(Uint8Array.fromBase64(b64)), magic: [lo, hi] };
}

/**
 * A built-in profile's policy for this machine's arch: precompiled in the
 * executable (its rules built only if asked for), compiled from source.
 */
export function profilePolicy(name: string, cwd: string, arch: ArchName = hostArch().name): Policy {
  const filter = precompiledFilter(name, arch);
  if (!filter) return profileBuilder(name, { cwd, arch }).build();
  const settings = applyProfileSettings(new PolicyBuilder({ arch }).setOrigin(`profile ${name}`), name, { cwd }).build();
  // The default action (a violation, or EPERM with "onRefusal": "errno") is a setting: settings has it.
  return settings.derive({
    rules: () => profileBuilder(name, { cwd, arch }).build().rules,
    defaultAction: settings.defaultAction,
    notifyFilter: filter,
  });
}
