/**
 * The floor of `bunbox run -- /bin/true` in this design, measured rather than
 * estimated: a Bun executable (compiled like bunbox) that does nothing but
 * load bunbox's shim and spawn the very sandbox `bunbox run` would, from a
 * request serialised here at build time (default profile, its precompiled
 * filter, the default mount plan), then read how the sandboxee ended and exit
 * with its code. It checks no host path, makes no cgroup or kernel uid,
 * builds no Result: what is left is the Bun runtime, `dlopen`, and the
 * sandbox's own processes (the set-up child, its mounts, init, the filter,
 * the exec). No `bunbox run` can start faster than this program.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { profilePolicy } from "../../src/policy/precompiled.ts";
import { Executor } from "../../src/sandbox/executor.ts";
import { armFilter } from "../../src/sandbox/launch/launcher.ts";
import { Limits, SETUP_TIMEOUT_MS } from "../../src/sandbox/limits.ts";
import { buildRequest } from "../../src/sandbox/request.ts";
import { BB_REPORT, BB_SPAWN_OUT } from "../../src/native/abi.ts";
import { BenchError, ROOT } from "./setup.ts";

/** The request `bunbox run -- /bin/true` builds (as its caller: no containment), as base64. */
function request(): string {
  const policy = profilePolicy("default", "/");
  const executor = new Executor("/bin/true", ["/bin/true"], { env: { PATH: "/usr/bin:/bin" }, cwd: "/", limits: new Limits({}) });
  const armed = armFilter(policy.filter(true));
  const r = buildRequest(executor, policy, { notify: true, ...armed, mounts: policy.mountPlan(), setupTimeoutMs: SETUP_TIMEOUT_MS });
  return Buffer.from(r.bytes).toString("base64");
}

/** The program's source: bun:ffi only (no node:fs), the request inline. */
function source(shimPath: string): string {
  return `import { dlopen, ptr } from "bun:ffi";
const req = Uint8Array.fromBase64(${JSON.stringify(request())});
const lib = dlopen(${JSON.stringify(shimPath)}, {
  bb_spawn: { args: ["ptr", "u32", "ptr", "i32"], returns: "i32" },
  bb_read: { args: ["i32", "ptr", "u32"], returns: "i64" },
}).symbols;
const out = new Uint8Array(${BB_SPAWN_OUT.sizeof});
const r = lib.bb_spawn(ptr(req), req.length, ptr(out), 1000);
if (r !== 0) process.exit(125);
const view = new DataView(out.buffer);
// init writes the sandboxee's wait status to its report pipe as it exits.
const report = new Uint8Array(${BB_REPORT.sizeof});
const n = Number(lib.bb_read(view.getInt32(${BB_SPAWN_OUT.report.offset}, true), ptr(report), report.length));
const status = n === report.length ? new DataView(report.buffer).getInt32(${BB_REPORT.wstatus.offset}, true) : -1;
process.exit(status >= 0 && (status & 0x7f) === 0 ? (status >> 8) & 0xff : 125);
`;
}

/** Compiles the floor program into dir (the flags of scripts/build.ts that change start-up time); its path. */
export function buildFloor(dir: string): string {
  const src = join(dir, "floor.ts");
  const out = join(dir, "floor");
  const shim = join(ROOT, "build", "libbunbox.so");
  if (!existsSync(shim)) throw new BenchError(`${shim} is missing: run \`bun run build\``);
  writeFileSync(src, source(shim));
  const p = Bun.spawnSync(
    [process.execPath, "build", "--compile", "--minify", "--bytecode", "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig", src, "--outfile", out],
    { stdout: "pipe", stderr: "pipe" },
  );
  if (p.exitCode !== 0) throw new BenchError(`bun build --compile (floor) failed:\n${p.stderr.toString()}`);
  return out;
}
