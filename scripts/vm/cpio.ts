/**
 * An uncompressed "newc" cpio archive, the format the kernel unpacks into its
 * rootfs at boot (Documentation/driver-api/early-userspace/buffer-format.rst).
 * Written here rather than with cpio(1) so that the rig needs no host tool
 * for it and every entry's owner and mode are exactly what the guest needs
 * (root-owned, whatever the checkout's owner). Uncompressed: the kernel
 * unpacks it faster than it could decompress it under TCG.
 */
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";

export type Entry =
  | { kind: "dir"; path: string; mode?: number }
  | { kind: "file"; path: string; mode?: number; data: Uint8Array | string }
  | { kind: "symlink"; path: string; target: string }
  | { kind: "char"; path: string; mode?: number; major: number; minor: number };

/** A file entry whose bytes come from the host file `src`. */
export function fileFrom(path: string, src: string, mode = 0o755): Entry {
  return { kind: "file", path, mode, data: readFileSync(src) };
}

const S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFLNK = 0o120000, S_IFCHR = 0o020000;

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}

/** Writes the archive to `out`; parent directories are added where missing. */
export function writeCpio(out: string, entries: Entry[]): void {
  const seen = new Set<string>();
  const all: Entry[] = [];
  for (const e of entries) {
    const parts = e.path.replace(/^\/+/, "").split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (!seen.has(dir)) {
        seen.add(dir);
        all.push({ kind: "dir", path: dir });
      }
    }
    const path = parts.join("/");
    if (seen.has(path) && e.kind === "dir") continue;
    if (seen.has(path)) throw new Error(`cpio: ${path} is in the archive twice`);
    seen.add(path);
    all.push({ ...e, path });
  }
  const fd = openSync(out, "w", 0o644);
  let offset = 0;
  const put = (b: Uint8Array) => {
    for (let off = 0; off < b.length; ) off += writeSync(fd, b, off);
    offset += b.length;
    const pad = (4 - (offset % 4)) % 4;
    if (pad) {
      writeSync(fd, new Uint8Array(pad));
      offset += pad;
    }
  };
  const header = (ino: number, mode: number, size: number, name: string, rdev = [0, 0]) => {
    const fields = [ino, mode, 0, 0, 1, 0, size, 0, 0, rdev[0]!, rdev[1]!, name.length + 1, 0];
    put(new TextEncoder().encode(`070701${fields.map(hex8).join("")}${name}\0`));
  };
  try {
    let ino = 1;
    for (const e of all) {
      const n = ino++;
      switch (e.kind) {
        case "dir":
          header(n, S_IFDIR | (e.mode ?? 0o755), 0, e.path);
          break;
        case "file": {
          const data = typeof e.data === "string" ? new TextEncoder().encode(e.data) : e.data;
          header(n, S_IFREG | (e.mode ?? 0o644), data.length, e.path);
          put(data);
          break;
        }
        case "symlink": {
          const data = new TextEncoder().encode(e.target);
          header(n, S_IFLNK | 0o777, data.length, e.path);
          put(data);
          break;
        }
        case "char":
          header(n, S_IFCHR | (e.mode ?? 0o600), 0, e.path, [e.major, e.minor]);
          break;
      }
    }
    header(0, 0, 0, "TRAILER!!!");
  } finally {
    closeSync(fd);
  }
}
