/**
 * The sandboxee's environment from the command line, applied in this order
 * (a later step wins): PATH; HOME (the working directory when one was
 * chosen, else /tmp: a program that writes its dot files has somewhere to
 * put them); TERM when the sandboxee has a terminal; --keep-env; each
 * --env-file; --env; then --unsetenv removes what it names, whatever set it.
 * Nothing else of bunbox's environment enters the sandbox.
 */
import { UsageError } from "../errors.ts";
import { DEFAULT_PATH } from "../sandbox/executor.ts";
import { checkEnvBytes, readUtf8 } from "./bytes.ts";

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** bunbox's own variable, never one of Object.prototype's; refused (naming `subject`) when not valid UTF-8. */
const host = (name: string, subject: string) => (Object.hasOwn(process.env, name) ? checkEnvBytes(name, process.env[name]!, subject) : undefined);

export interface EnvInput {
  keep: readonly string[];
  files: readonly string[];
  set: readonly string[];
  unset: readonly string[];
  /** The working directory inside, when the user or the profile chose one. */
  cwd: string | undefined;
  /** The sandboxee has a terminal of its own: TERM is passed. */
  terminal: boolean;
}

/**
 * An --env-file: NAME=VALUE lines taken as they are (no quotes or escapes
 * are interpreted, as docker reads them), NAME alone passes bunbox's value
 * if it has one, blank lines and lines starting with # are skipped.
 */
export function readEnvFile(path: string, into: Record<string, string>): void {
  let text;
  try {
    text = readUtf8(path, "--env-file");
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError("--env-file", `${path}: ${code === "ENOENT" ? "no such file" : `cannot be read (${code})`}`);
  }
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "" || line.trimStart().startsWith("#")) return;
    const eq = line.indexOf("=");
    const name = eq < 0 ? line.trim() : line.slice(0, eq);
    if (!NAME.test(name)) throw new UsageError("--env-file", `${path}:${i + 1}: "${name}" is not a variable name (NAME=VALUE, or NAME to pass bunbox's)`);
    if (line.includes("\0")) throw new UsageError("--env-file", `${path}:${i + 1}: a NUL byte`);
    if (eq >= 0) into[name] = line.slice(eq + 1);
    else if (host(name, `--env-file ${path}`) !== undefined) into[name] = host(name, `--env-file ${path}`)!;
  });
}

export function buildEnv(o: EnvInput): Record<string, string> {
  // No prototype: a variable may be called __proto__ or constructor.
  const env: Record<string, string> = Object.assign(Object.create(null), { PATH: DEFAULT_PATH, HOME: o.cwd && o.cwd !== "/" ? o.cwd : "/tmp" });
  const term = o.terminal ? host("TERM", "TERM (passed to the sandbox's terminal)") : undefined;
  if (term) env.TERM = term;
  for (const name of o.keep) {
    if (!NAME.test(name)) throw new UsageError("--keep-env", `"${name}" is not a variable name`);
    const value = host(name, `--keep-env ${name}`);
    if (value !== undefined) env[name] = value;
  }
  for (const file of o.files) readEnvFile(file, env);
  for (const pair of o.set) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError("--env", `"${pair}" is not NAME=VALUE`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  for (const name of o.unset) {
    if (!NAME.test(name)) throw new UsageError("--unsetenv", `"${name}" is not a variable name`);
    delete env[name];
  }
  return env;
}
