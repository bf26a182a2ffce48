/**
 * Arguments and environment values that are not valid UTF-8. Bun decodes
 * argv and environ as UTF-8, each invalid byte becoming U+FFFD, and bunbox
 * passes strings on as UTF-8: `bunbox run -- cat $'\xff'` would open a file
 * of another name, `rm` remove another file. What bunbox cannot pass on
 * unchanged is a usage error (exit 2) naming it, never a silent change.
 * The kernel's copies, /proc/self/cmdline and /proc/self/environ, hold the
 * bytes as given; they are read only when a decoded string has a U+FFFD in
 * it (an invalid byte always leaves one), so a plain start reads neither.
 */
import { readFileSync } from "../native/fs.ts";
import { MAX_INPUT, readFileAtMost } from "../read-text.ts";
import { UsageError } from "../errors.ts";

const REPLACEMENT = "\uFFFD";
const HOW = "bunbox would pass it changed (each invalid byte as U+FFFD); make such a name inside the sandbox instead (printf in sh -c)";

/** The NUL-terminated strings of a /proc file, as bytes. */
function entries(path: string): Buffer[] {
  const raw = readFileSync(path);
  const out: Buffer[] = [];
  let start = 0;
  for (let i = raw.indexOf(0); i >= 0; start = i + 1, i = raw.indexOf(0, start)) out.push(raw.subarray(start, i));
  return out;
}

const same = (text: string, bytes: Buffer | undefined) => bytes !== undefined && Buffer.from(text, "utf8").equals(bytes);

/** Refuses an argument (bunbox's own, as process.argv gives them: the last of the command line) that was not valid UTF-8. */
export function checkArgsBytes(args: readonly string[]): void {
  if (!args.some((a) => a.includes(REPLACEMENT))) return;
  const raw = entries("/proc/self/cmdline").slice(-args.length);
  args.forEach((a, i) => {
    if (a.includes(REPLACEMENT) && !same(a, raw[i])) throw new UsageError(`argument ${i + 1} (${a})`, `not valid UTF-8: ${HOW}`);
  });
}

/** bunbox's environment variable `name`'s value, refused when it was not valid UTF-8; `subject` names the option that passes it. */
export function checkEnvBytes(name: string, value: string, subject: string): string {
  if (!value.includes(REPLACEMENT)) return value;
  const prefix = Buffer.from(`${name}=`, "utf8");
  const raw = entries("/proc/self/environ").find((e) => e.subarray(0, prefix.length).equals(prefix));
  if (!same(`${name}=${value}`, raw)) throw new UsageError(subject, `the value of ${name} is not valid UTF-8: ${HOW}`);
  return value;
}

/** A file's text, refused when it is not valid UTF-8 (`subject`: the option and path). */
export function readUtf8(path: string, subject: string): string {
  try {
    const bytes = readFileAtMost(path);
    if (bytes === undefined) throw new UsageError(subject, `${path}: more than ${MAX_INPUT >> 20}M: not a file of this kind (a device or a stream without an end?)`);
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (e) {
    if (e instanceof TypeError) throw new UsageError(subject, `${path}: not valid UTF-8: ${HOW}`);
    throw e;
  }
}
