#!/usr/bin/env bun
/**
 * Builds the native shim: build/init (the sandbox's pid 1, freestanding) and
 * build/libbunbox.so (spawn + monitor helpers, with init embedded by .incbin).
 * Skips the work when the outputs are newer than every source.
 * Usage: bun scripts/build-shim.ts [--force]
 */
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
const csrc = join(root, "csrc");
const out = join(root, "build");
const init = join(out, "init");
const shim = join(out, "libbunbox.so");

// No calls into libc from the CLONE_VM children: gcc must not turn loops into
// memset/strlen calls, and no PLT slot may be resolved lazily (by ld.so, in
// memory shared with Bun) while they run.
const CFLAGS = [
  "-O2", "-g0", "-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-std=gnu11",
  "-fno-tree-loop-distribute-patterns",
];
const SHIM_SOURCES = ["spawn.c", "request.c", "init_fd.c", "child.c", "mounts.c", "monitor.c", "comms.c", "spawner.c", "net_socket.c", "net_relay.c"];

function newestSource(): number {
  return Math.max(
    ...readdirSync(csrc)
      .filter((f) => /\.[ch]$/.test(f))
      .map((f) => statSync(join(csrc, f)).mtimeMs),
    statSync(import.meta.path).mtimeMs,
  );
}

function upToDate(): boolean {
  if (!existsSync(init) || !existsSync(shim)) return false;
  const built = Math.min(statSync(init).mtimeMs, statSync(shim).mtimeMs);
  return built >= newestSource();
}

function gcc(args: string[], what: string): void {
  const cc = process.env.CC ?? "gcc";
  const proc = Bun.spawnSync([cc, ...args], { cwd: root, stdout: "inherit", stderr: "inherit" });
  if (proc.exitCode !== 0) {
    console.error(`bunbox: building ${what} failed (${cc} exited ${proc.exitCode}); is gcc installed?`);
    process.exit(1);
  }
}

export function buildShim(force = false): string {
  if (!force && upToDate()) return shim;
  mkdirSync(out, { recursive: true });
  gcc(
    [
      ...CFLAGS,
      "-Os",
      "-static",
      "-nostdlib",
      "-ffreestanding",
      "-fno-stack-protector",
      "-fno-asynchronous-unwind-tables",
      "-fno-pie",
      "-no-pie",
      "-Wl,--build-id=none",
      "-o",
      init,
      join(csrc, "init.c"),
    ],
    "build/init",
  );
  gcc(
    [
      ...CFLAGS,
      "-fPIC",
      "-shared",
      "-fvisibility=hidden",
      "-Wl,-z,now",
      `-DBB_INIT_PATH="${init}"`,
      "-o",
      shim,
      ...SHIM_SOURCES.map((f) => join(csrc, f)),
      "-lpthread",
    ],
    "build/libbunbox.so",
  );
  return shim;
}

if (import.meta.main) {
  const path = buildShim(process.argv.includes("--force"));
  console.log(`built ${path.replace(root + "/", "")}`);
}
