/**
 * Sizes ("64M", "2G", "512k", "1048576") and durations ("1.5", "250ms", "2m")
 * as the CLI and policy files write them. Binary units: 1K = 1024.
 */
import { UsageError } from "../errors.ts";
import { nameTable } from "../names.ts";

/** By the unit a user writes (no prototype: src/names.ts). */
const SIZE_UNITS = nameTable<Record<string, number>>({
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
});

/** Bytes for "64M"; "unlimited" is Infinity. Errors name `subject`. */
export function parseSize(text: string | number, subject: string): number {
  if (typeof text === "number") {
    if (!Number.isFinite(text) && text !== Infinity) throw new UsageError(subject, `bad size ${text}`);
    if (text < 0 || (Number.isFinite(text) && !Number.isInteger(text))) {
      throw new UsageError(subject, `size must be a whole number of bytes, not ${text}`);
    }
    return text;
  }
  const t = text.trim().toLowerCase();
  if (t === "unlimited" || t === "inf" || t === "infinity") return Infinity;
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(t);
  const unit = m ? SIZE_UNITS[m[2]!] : undefined;
  if (!m || unit === undefined) {
    throw new UsageError(subject, `"${text}" is not a size (examples: 65536, 64K, 64M, 2G, unlimited)`);
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new UsageError(subject, `"${text}" is too large`);
  return bytes;
}

/**
 * Milliseconds for "1.5" (seconds), "250ms", "2m", "1h"; 0 means no limit,
 * so a duration above 0 is at least 1 ms ("0.0001" must not lift the limit).
 */
export function parseDuration(text: string | number, subject: string): number {
  const ms = (n: number) => {
    // Past 2^53 ms (285,000 years) a number is no longer exact, and packed as an rlimit it would wrap to 0.
    if (n > Number.MAX_SAFE_INTEGER) throw new UsageError(subject, `"${text}" is too large`);
    return n > 0 ? Math.max(1, Math.round(n)) : 0;
  };
  if (typeof text === "number") {
    if (!Number.isFinite(text) || text < 0) throw new UsageError(subject, `bad duration ${text}`);
    return ms(text * 1000);
  }
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|)$/.exec(text.trim().toLowerCase());
  if (!m) throw new UsageError(subject, `"${text}" is not a duration (examples: 10, 1.5, 250ms, 2m)`);
  const scale = { ms: 1, s: 1000, "": 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "" | "m" | "h"];
  return ms(Number(m[1]) * scale);
}

/** A non-negative integer option ("--max-procs 64"). */
export function parseCount(text: string | number, subject: string): number {
  const n = typeof text === "number" ? text : /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (n > Number.MAX_SAFE_INTEGER) throw new UsageError(subject, `"${text}" is too large`);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new UsageError(subject, `"${text}" is not a whole number`);
  }
  return n;
}

/** "256 MiB", "1.5 GiB", "512 KiB", "100 bytes": for messages. */
export function formatBytes(bytes: number): string {
  for (const [unit, scale] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes >= scale) return `${Math.round((bytes / scale) * 10) / 10} ${unit}`;
  }
  return `${bytes} bytes`;
}

export function formatSize(bytes: number): string {
  if (bytes === Infinity) return "unlimited";
  for (const [unit, scale] of [["G", 1024 ** 3], ["M", 1024 ** 2], ["K", 1024]] as const) {
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale}${unit}`;
  }
  return `${bytes}`;
}
