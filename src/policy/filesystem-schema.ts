/**
 * The schema of a policy's filesystem section (src/policy/filesystem.ts
 * applies it): valibot, read only by what validates a policy file, so that
 * `bunbox run`'s mount options, which build the same entries, do not load
 * it on every start (README.md, "Start-up").
 */
import * as v from "valibot";
import { HOST_MOUNTS } from "../sandbox/exposure.ts";

const Size = v.union([v.string(), v.number()]);
const Mode = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(0o7777));

export const MountSchema = v.union([
  v.strictObject({ bind: v.string(), at: v.optional(v.string()), writable: v.optional(v.boolean()), try: v.optional(v.boolean()) }),
  v.strictObject({ tmpfs: v.string(), size: v.optional(Size), mode: v.optional(Mode) }),
  v.strictObject({ symlink: v.string(), target: v.string() }),
  v.strictObject({ proc: v.string() }),
  v.strictObject({ dev: v.string() }),
  v.strictObject({ devpts: v.string() }),
  v.strictObject({ dir: v.string(), mode: v.optional(Mode) }),
  v.pipe(
    v.strictObject({ file: v.string(), content: v.optional(v.string()), source: v.optional(v.string()), mode: v.optional(Mode) }),
    v.check((f) => (f.content === undefined) !== (f.source === undefined), "a file takes its content from \"content\" or from \"source\" (a host file), one of them"),
  ),
  v.strictObject({
    overlay: v.string(),
    lowers: v.array(v.string()),
    upper: v.optional(v.string()),
    size: v.optional(Size),
    writable: v.optional(v.boolean()),
  }),
  v.strictObject({ mask: v.string() }),
  v.strictObject({ readonly: v.string() }),
]);
export type MountEntry = v.InferOutput<typeof MountSchema>;
const OverlaySchema = v.union([
  v.boolean(),
  v.strictObject({ upper: v.optional(v.string()), size: v.optional(Size), lowers: v.optional(v.array(v.string())) }),
]);
export const RootSchema = v.union([
  v.string(),
  v.strictObject({ path: v.string(), writable: v.optional(v.boolean()), overlay: v.optional(OverlaySchema) }),
]);
export type RootEntry = v.InferOutput<typeof RootSchema>;

export const FilesystemSchema = v.strictObject({
  base: v.optional(v.picklist(["default", "empty"])),
  root: v.optional(RootSchema),
  mounts: v.optional(v.array(MountSchema)),
  dangerAllowHostMounts: v.optional(v.array(v.picklist(HOST_MOUNTS))),
});
export type FilesystemEntry = v.InferOutput<typeof FilesystemSchema>;
