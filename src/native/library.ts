/**
 * Loads the native shim (csrc/, built by scripts/build-shim.ts). The only
 * module besides src/native/*.ts that knows the shim exists.
 *
 * The import with `type: "file"` makes `bun build --compile` embed the library
 * into the executable; Bun extracts it for dlopen. From source (or bunx) it
 * resolves to build/libbunbox.so beside the source tree. BUNBOX_SHIM overrides
 * both, for packagers.
 */
import { dlopen, FFIType } from "bun:ffi";
import { existsSync } from "node:fs";
import embedded from "../../build/libbunbox.so" with { type: "file" };
import { BunboxError } from "../errors.ts";

const { i32, u32, u64, i64, ptr, function: fn } = FFIType;

const symbols = {
  bb_spawn: { args: [ptr, u32, ptr], returns: i32 },
  bb_reactor_start: { args: [fn], returns: i32 },
  bb_reactor_stop: { args: [], returns: i32 },
  bb_reactor_watch: { args: [i32, u32, u32, i32], returns: i32 },
  bb_wait: { args: [i32, ptr], returns: i32 },
  bb_pidfd_signal: { args: [i32, i32], returns: i32 },
  bb_notif_recv: { args: [i32, ptr], returns: i32 },
  bb_notif_send: { args: [i32, u64, i32, i64, u32], returns: i32 },
  bb_notif_id_valid: { args: [i32, u64], returns: i32 },
  bb_read: { args: [i32, ptr, u32], returns: i64 },
  bb_close: { args: [i32], returns: i32 },
} as const;

function open() {
  const path = process.env.BUNBOX_SHIM || embedded;
  if (!existsSync(path) && !path.startsWith("/$bunfs/")) {
    throw new BunboxError(
      "native",
      `the native shim is missing at ${path}: run \`bun run build:shim\` (needs gcc)`,
    );
  }
  try {
    return dlopen(path, symbols);
  } catch (e) {
    throw new BunboxError("native", `cannot load the native shim ${path}: ${(e as Error).message}`);
  }
}

let lib: ReturnType<typeof open> | undefined;

/** The shim's symbols, loaded on first use. */
export function shim(): ReturnType<typeof open>["symbols"] {
  lib ??= open();
  return lib.symbols;
}
