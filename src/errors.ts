/**
 * bunbox's own errors. Each names what went wrong (the option, field, path or
 * setup stage) and carries the exit code the CLI uses for it (README.md "Exit codes"):
 * 2 for bad usage or an invalid policy, 125 for a failure of bunbox itself.
 */
export const EXIT_USAGE = 2;
export const EXIT_SETUP = 125;

export class BunboxError extends Error {
  override readonly name: string = "BunboxError";
  constructor(
    /** What failed: a setup stage, "native", "policy", an option name… */
    readonly stage: string,
    message: string,
    readonly exitCode: number = EXIT_SETUP,
  ) {
    super(message);
  }
}

/**
 * Bad input with several problems, all reported at once (an invalid policy,
 * an OCI bundle): the headline, then one line per problem. Exit 2.
 */
export class ProblemsError extends BunboxError {
  override readonly name: string = "ProblemsError";
  constructor(
    stage: string,
    readonly headline: string,
    readonly problems: readonly string[],
  ) {
    super(stage, `${headline}:\n${problems.map((p) => `  - ${p}`).join("\n")}`, EXIT_USAGE);
  }
}

/** Bad input from the user: an option, a policy field, a path. Exit 2. */
export class UsageError extends BunboxError {
  override readonly name = "UsageError";
  constructor(
    /** The option or dotted field path at fault, e.g. "--memory-limit". */
    readonly subject: string,
    message: string,
  ) {
    super("usage", `${subject}: ${message}`, EXIT_USAGE);
  }
}
