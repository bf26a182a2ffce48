/**
 * What the kernel opens for an exec without a syscall the filter sees: the
 * ELF interpreter a dynamic program names (PT_INTERP, ld-linux-*.so) and the
 * interpreter of a script's `#!` line. A filesystem learned from a run must
 * hold them too. Read from the host file behind the sandbox path; a file
 * that is neither (or unreadable) names none.
 */
import { closeSync, openSync, readSync } from "node:fs";

const PT_INTERP = 3;

function readAt(fd: number, length: number, position: number): Buffer {
  const buf = Buffer.alloc(length);
  const n = readSync(fd, buf, 0, length, position);
  return buf.subarray(0, n);
}

/** The interpreter `hostPath` needs when exec'd: an absolute path inside the sandbox, or undefined. */
export function interpreterOf(hostPath: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(hostPath, "r");
  } catch {
    return undefined;
  }
  try {
    const head = readAt(fd, 256, 0);
    if (head[0] === 0x23 && head[1] === 0x21) {
      // "#!interp [arg]": the first word, up to the line's end (the kernel reads at most 255 bytes).
      const line = head.subarray(2).toString("latin1").split("\n")[0]!.trim();
      const interp = line.split(/[ \t]/)[0];
      return interp?.startsWith("/") ? interp : undefined;
    }
    // ELF64, little-endian (x86_64, aarch64): the program headers' PT_INTERP.
    if (head.length < 64 || head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1) return undefined;
    const phoff = Number(head.readBigUInt64LE(0x20));
    const phentsize = head.readUInt16LE(0x36);
    const phnum = head.readUInt16LE(0x38);
    if (phentsize < 56 || phnum > 256) return undefined;
    const table = readAt(fd, phentsize * phnum, phoff);
    for (let i = 0; i + phentsize <= table.length; i += phentsize) {
      if (table.readUInt32LE(i) !== PT_INTERP) continue;
      const off = Number(table.readBigUInt64LE(i + 8));
      const size = Number(table.readBigUInt64LE(i + 32));
      if (size > 4096) return undefined;
      const path = readAt(fd, size, off).toString("latin1").replace(/\0.*$/s, "");
      return path.startsWith("/") ? path : undefined;
    }
    return undefined;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}
