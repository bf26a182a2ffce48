/**
 * How bunbox opens libc through bun:ffi, for its file access (fs.ts) and the
 * sandboxee's comms client (src/comms/libc.ts). libc is there wherever Bun
 * runs (it needs it to start), glibc's or musl's; the shim
 * (build/libbunbox.so) is not mounted in a sandbox, and is not needed to
 * read a file.
 */
import { dlopen, type FFIFunction, type Library } from "bun:ffi";

const NAMES = ["libc.so.6", `libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`];

/** libc's `symbols`, or throws `fail(why)` naming each library tried. */
export function openLibc<S extends Record<string, FFIFunction>>(symbols: S, fail: (why: string) => Error): Library<S>["symbols"] {
  const errors: string[] = [];
  for (const name of NAMES) {
    try {
      return dlopen(name, symbols).symbols;
    } catch (e) {
      errors.push(`${name}: ${(e as Error).message}`);
    }
  }
  throw fail(errors.join("; "));
}
