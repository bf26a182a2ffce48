/**
 * The shim's host-side probes (csrc/probe.c): a file read inside an image as
 * its own root, and what the kernel offers (Landlock, seccomp actions).
 */
import { ptr } from "bun:ffi";
import { closeSync, fstatSync, readSync } from "./fs.ts";
import { shim } from "./library.ts";

const cstring = (s: string) => new TextEncoder().encode(`${s}\0`);

/**
 * The regular file `path` of the directory tree `root`, resolved with
 * `root` as "/" (an absolute symlink in it stays in it), up to `max`
 * bytes; undefined when there is none.
 */
export function readInRoot(root: string, path: string, max = 1 << 20): Uint8Array | undefined {
  const r = cstring(root);
  const p = cstring(path);
  const fd = shim().bb_open_in_root(ptr(r), ptr(p));
  if (fd < 0) return undefined;
  try {
    const size = Math.min(fstatSync(fd).size, max);
    const buf = new Uint8Array(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, got);
      if (n <= 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** The Landlock ABI version this kernel offers, or -errno (-ENOSYS, -EOPNOTSUPP: none). */
export function landlockAbi(): number {
  return shim().bb_landlock_abi();
}

/** Whether seccomp knows the return action `action` (SECCOMP_GET_ACTION_AVAIL). */
export function seccompActionAvailable(action: number): boolean {
  return shim().bb_seccomp_action(action >>> 0) === 0;
}
