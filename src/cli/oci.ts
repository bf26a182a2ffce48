/**
 * `bunbox oci run [OPTIONS] BUNDLE`: runs an OCI runtime bundle (config.json
 * and its root filesystem) in a sandbox; what is not supported in it is an
 * error naming the field (src/oci/bundle.ts). `bunbox oci spec [--bundle DIR]`
 * writes a starter config.json that bunbox runs as it is.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../errors.ts";
import { PROFILE_NAMES, type ProfileName } from "../policy/profiles.ts";
import { parseDuration } from "../sandbox/units.ts";
import { defineCommand } from "./args.ts";
import { writeAll } from "./log.ts";
import { RUN_ARGS } from "./options.ts";

/** linux.resources' limits as a bundle names them, in messages. */
const OCI_LIMIT_NAMES = { memory: "linux.resources.memory.limit", cpus: "linux.resources.cpu.quota", weaker: "--allow-weaker-limits" };

const run = defineCommand({
  meta: { name: "run", description: "Run an OCI bundle: bunbox oci run [OPTIONS] BUNDLE" },
  args: {
    bundle: { type: "positional", description: "The bundle's directory (config.json and its root)", required: true },
    profile: { type: "string", description: "Syscalls when the bundle has no linux.seccomp (default: default)", valueHint: "NAME" },
    "time-limit": { type: "string", description: "Wall-clock limit (default: none)", valueHint: "SECONDS" },
    "allow-weaker-limits": RUN_ARGS["allow-weaker-limits"],
    json: RUN_ARGS.json,
    "result-file": RUN_ARGS["result-file"],
    verbose: RUN_ARGS.verbose,
    quiet: RUN_ARGS.quiet,
  },
  async run({ positionals, strings, flags }) {
    const t0 = performance.now();
    const profile = strings.profile;
    if (profile !== undefined && !(PROFILE_NAMES as readonly string[]).includes(profile)) {
      throw new UsageError("--profile", `unknown profile "${profile}" (${PROFILE_NAMES.join(", ")})`);
    }
    const { loadBundle } = await import("../oci/bundle.ts");
    const { planTerminal, terminalOptions } = await import("./tty.ts");
    // A bundle that asks for a terminal gets one, relayed to bunbox's stdin and stdout (as --tty).
    const terminal = planTerminal("tty")!;
    const { policy, executor } = loadBundle(positionals.bundle, {
      tty: terminalOptions(terminal),
      ...(profile !== undefined ? { profile: profile as ProfileName } : {}),
      ...(strings["time-limit"] !== undefined ? { limits: { wallTimeMs: parseDuration(strings["time-limit"], "--time-limit") } } : {}),
    });
    const { runPrepared } = await import("./run.ts");
    const reporting = {
      flags: { ...flags, "no-tty": undefined },
      strings: { "result-file": strings["result-file"], "time-limit": strings["time-limit"] },
      limitNames: OCI_LIMIT_NAMES,
    };
    return runPrepared(reporting, policy, executor, executor.tty ? terminal : undefined, t0);
  },
});

/** runc's starter, as far as bunbox runs it: no capabilities, no devpts, no sysfs. */
export function starterConfig(): Record<string, unknown> {
  return {
    ociVersion: "1.2.0",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ["sh"],
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
      cwd: "/",
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: true },
    hostname: "bunbox",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777", "size=64m"] },
    ],
    linux: {
      namespaces: [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }, { type: "cgroup" }, { type: "user" }],
      maskedPaths: [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
      ],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
  };
}

const spec = defineCommand({
  meta: { name: "spec", description: "Write a starter config.json (into the current directory, or --bundle DIR)" },
  args: {
    bundle: { type: "string", description: "Where to write config.json (default: the current directory)", valueHint: "DIR" },
  },
  run({ strings }) {
    const path = join(strings.bundle ?? process.cwd(), "config.json");
    if (existsSync(path)) throw new UsageError("oci spec", `${path} exists: remove it first`);
    try {
      writeFileSync(path, `${JSON.stringify(starterConfig(), null, 2)}\n`, { flag: "wx" });
    } catch (e) {
      throw new UsageError("oci spec", `${path}: cannot be written (${(e as NodeJS.ErrnoException).code})`);
    }
    writeAll(2, `wrote ${path}; put the root filesystem in rootfs/ next to it\n`);
  },
});

export const ociCommand = defineCommand({
  meta: { name: "oci", description: "Run OCI runtime bundles: oci run BUNDLE, oci spec" },
  subCommands: { run, spec },
});
