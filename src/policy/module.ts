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

/** Imports the module at the absolute `path`. */
export async function importPolicyModule(path: string): Promise<Record<string, unknown>> {
  await registerSelf();
  return import(path);
}
