/**
 * `bunbox run`'s filesystem options, turned into the entries of a policy
 * file's "filesystem" section (src/policy/filesystem.ts) and applied by the
 * same code, so that the command line and policy files mean the same:
 *
 *   --root DIR [--root-rw]        "root": DIR, or { "path": DIR, "writable": true }
 *   --overlay, --overlay-upper DIR, --overlay-lower DIR, --overlay-size SIZE
 *                                 "root": { "path": DIR, "overlay": { "upper", "lowers", "size" } }
 *   --ro / --rw SRC[:DST]         { "bind": SRC, "at": DST, "writable" }
 *   --ro-try / --rw-try SRC[:DST] the same with "try": true (--bind-try is --rw-try)
 *   --tmpfs DST[:SIZE]            { "tmpfs": DST, "size": SIZE, "mode": 0o1777 }
 *   --dir DST                     { "dir": DST }
 *   --symlink TARGET:DST          { "symlink": DST, "target": TARGET }
 *   --file SRC:DST                { "file": DST, "source": SRC } (SRC an fd number: its content, read now)
 *   --proc DST, --dev DST         { "proc": DST }, { "dev": DST }
 *   --mask DST, --remount-ro DST  { "mask": DST }, { "readonly": DST }
 *   --danger-allow-host-mount K   "dangerAllowHostMounts": [K]
 */
import { UsageError } from "../errors.ts";
import { applyMount, type FileBytes, type MountEntry, type RootEntry, rootOp, TOO_LARGE } from "../policy/filesystem.ts";
import { readAtMost } from "../read-text.ts";
import { HOST_MOUNTS, type HostMount } from "../sandbox/exposure.ts";
import { MAX_FILE_CONTENT, type MountPlan } from "../sandbox/mounts.ts";
import type { Parsed } from "./args.ts";
import type { RUN_ARGS } from "./options.ts";

type RunOptions = Parsed<typeof RUN_ARGS>;

/** A:B split at the first ":" (B defaults to A unless `both`); errors name the option. */
function pair(spec: string, option: string, what: [string, string], both = false): [string, string] {
  const i = spec.indexOf(":");
  if (i < 0 && both) throw new UsageError(option, `"${spec}" is not ${what[0]}:${what[1]}`);
  const a = i < 0 ? spec : spec.slice(0, i);
  const b = i < 0 ? spec : spec.slice(i + 1);
  if (!a) throw new UsageError(option, `"${spec}" has no ${what[0].toLowerCase()} path before ":"`);
  if (!b) throw new UsageError(option, `"${spec}" has no ${what[1].toLowerCase()} path after ":"`);
  return [a, b];
}

/** --file SRC:DST: SRC a path (copied when the plan is made) or an open fd's number (read now, to its end). */
function fileEntry(spec: string): MountEntry | FileBytes {
  const [src, dst] = pair(spec, "--file", ["SOURCE", "DESTINATION"], true);
  if (!/^\d+$/.test(src)) return { file: dst, source: src };
  let bytes;
  try {
    bytes = readAtMost(Number(src), MAX_FILE_CONTENT);
  } catch (e) {
    throw new UsageError(`--file ${spec}`, `fd ${src} cannot be read (${(e as NodeJS.ErrnoException).code})`);
  }
  if (bytes === undefined) throw new UsageError(`--file ${spec}`, `fd ${src}: ${TOO_LARGE}: bind a host file instead`);
  return { file: dst, bytes };
}

/** The root the options ask for, as a policy file's "root"; undefined: the policy's own. */
function rootEntry(o: RunOptions): RootEntry | undefined {
  const s = o.strings;
  const lowers = o.lists["overlay-lower"];
  const overlay = !!o.flags.overlay || s["overlay-upper"] !== undefined || s["overlay-size"] !== undefined || lowers.length > 0;
  if (s.root === undefined) {
    if (o.flags["root-rw"]) throw new UsageError("--root-rw", "makes --root DIR writable: give --root");
    if (!overlay) return undefined;
    if (lowers.length === 0) throw new UsageError("--overlay", "needs a lower layer: --root DIR (or --overlay-lower DIR)");
  }
  if (overlay && o.flags["root-rw"]) {
    throw new UsageError("--root-rw", "an --overlay root is writable already (its changes go to the upper layer); give one of them");
  }
  const [path, ...rest] = s.root !== undefined ? [s.root, ...lowers] : lowers;
  if (!overlay) return o.flags["root-rw"] ? { path: path!, writable: true } : path!;
  return {
    path: path!,
    overlay: {
      ...(rest.length ? { lowers: rest } : {}),
      ...(s["overlay-upper"] !== undefined ? { upper: s["overlay-upper"] } : {}),
      ...(s["overlay-size"] !== undefined ? { size: s["overlay-size"] } : {}),
    },
  };
}

/** Applies the filesystem options to `plan`; returns the host mounts they allow. */
export function applyMountOptions(plan: MountPlan, o: RunOptions): HostMount[] {
  const root = rootEntry(o);
  if (root !== undefined) plan.setRoot(rootOp(root, "--root"), typeof root === "string" ? `--root ${root}` : "--root");
  const add = (option: string, spec: string, entry: MountEntry | FileBytes) => applyMount(plan, entry, `${option} ${spec}`);
  const binds = [["ro", false, false], ["rw", true, false], ["ro-try", false, true], ["rw-try", true, true]] as const;
  for (const [name, writable, optional] of binds) {
    for (const spec of o.lists[name]) {
      const [src, dst] = pair(spec, `--${name}`, ["SOURCE", "DESTINATION"]);
      add(`--${name}`, spec, { bind: src, at: dst, writable, ...(optional ? { try: true } : {}) });
    }
  }
  for (const spec of o.lists.tmpfs) {
    const i = spec.indexOf(":");
    add("--tmpfs", spec, { tmpfs: i < 0 ? spec : spec.slice(0, i), mode: 0o1777, ...(i < 0 ? {} : { size: spec.slice(i + 1) }) });
  }
  for (const spec of o.lists.dir) add("--dir", spec, { dir: spec });
  for (const spec of o.lists.symlink) {
    const [target, dst] = pair(spec, "--symlink", ["TARGET", "DESTINATION"], true);
    add("--symlink", spec, { symlink: dst, target });
  }
  for (const spec of o.lists.file) add("--file", spec, fileEntry(spec));
  for (const spec of o.lists.proc) add("--proc", spec, { proc: spec });
  for (const spec of o.lists.dev) add("--dev", spec, { dev: spec });
  for (const spec of o.lists.mask) add("--mask", spec, { mask: spec });
  for (const spec of o.lists["remount-ro"]) add("--remount-ro", spec, { readonly: spec });
  return o.lists["danger-allow-host-mount"].map((k) => {
    if (!(HOST_MOUNTS as readonly string[]).includes(k)) {
      throw new UsageError("--danger-allow-host-mount", `"${k}" is not one of ${HOST_MOUNTS.join(", ")}`);
    }
    return k as HostMount;
  });
}
