/**
 * A .ts/.js policy module (`--policy FILE`), imported with "bunbox"
 * resolving to this very bunbox: a compiled executable has no node_modules
 * beside the module, and a second copy of the library would make its
 * PolicyBuilder another class than ours (instanceof would fail). Bun's
 * runtime plugin API serves the loaded library as the module "bunbox"
 * (registered once, on the first module import).
 */
let registered = false;

async function registerSelf(): Promise<void> {
  if (registered) return;
  registered = true;
  const lib = await import("../index.ts");
  Bun.plugin({
    name: "bunbox-self",
    setup(build) {
      build.module("bunbox", () => ({ exports: { ...lib }, loader: "object" }));
    },
  });
}

/**
 * `fn`, the code of a policy module (its loading, or the function it
 * exports), with process.exit() refused meanwhile: bunbox would end there,
 * its exit code the module's, without the command having run.
 */
export async function withoutExit<T>(fn: () => T | Promise<T>): Promise<T> {
  const exit = process.exit;
  process.exit = ((code?: number | string | null) => {
    throw new Error(`it called process.exit(${code ?? ""}) (a policy module gives a policy; bunbox would have ended without running the command)`);
  }) as typeof process.exit;
  try {
    return await fn();
  } finally {
    process.exit = exit;
  }
}

/** Imports the module at the absolute `path`. */
export async function importPolicyModule(path: string): Promise<Record<string, unknown>> {
  await registerSelf();
  return withoutExit(() => import(path));
}
