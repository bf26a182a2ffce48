#!/usr/bin/env bun
/**
 * `bun run test:vm`: bunbox on the kernels and CPUs its users run. Builds
 * the bunbox under test for each arch, boots each Debian kernel under QEMU
 * with an initramfs holding it, its fixtures and the smoke suite, once per
 * cgroup set-up, and prints one line per boot:
 *
 *   6.1 x86_64 cgroup2: 142 passed, 0 failed, 0 skipped
 *
 * then, for more than one boot, the support table as README.md has it.
 * Exits 1 when any case failed or any boot did not finish (timeout, panic),
 * 2 for bad usage.
 *
 *   bun run test:vm [--kernel 5.10|6.1|6.12|all] [--arch x86_64|aarch64|all]
 *                   [--cgroup 2|1|all] [--timeout SECONDS] [-v]
 *                   [--cpu MODEL] [--stress SPEC]
 *   bun run test:vm --table     the support table from every boot's last results
 *
 * --cpu: QEMU's -cpu instead of the arch's (config.ts says why it is what it
 * is); --stress: guest/stress.sh instead of the smoke suite (the Bun runtime's
 * own stability, e.g. `--stress pure:6:30,fork:25`). Neither run's results go
 * into the table.
 *
 * Defaults: --kernel 6.1 --arch x86_64 --cgroup all. Downloads and builds
 * are cached in .cache/vm/ (BUNBOX_VM_CACHE); boot logs go to .cache/vm/logs/,
 * each boot's results to .cache/vm/results/.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { build } from "./build.ts";
import { ARCHES, type ArchInfo, CACHE, CGROUPS, type CgroupMode, KERNELS, type KernelInfo } from "./config.ts";
import { ensureTools, RigError } from "./host.ts";
import { fetchKernel, makeInitramfs } from "./images.ts";
import { boot, type Outcome } from "./qemu.ts";
import { type Row, supportTable } from "./table.ts";

function usage(message: string): never {
  process.stderr.write(
    `test:vm: ${message}\nusage: bun run test:vm [--kernel 5.10|6.1|6.12|all] [--arch x86_64|aarch64|all] [--cgroup 2|1|all] [--timeout SECONDS] [-v] [--cpu MODEL] [--stress SPEC] | --table\n`,
  );
  process.exit(2);
}

function pick<T extends { name: string }>(option: string, value: string, all: readonly T[]): T[] {
  if (value === "all") return [...all];
  const found = all.filter((x) => x.name === value);
  if (found.length === 0) usage(`--${option} ${value}: not one of ${all.map((x) => x.name).join(", ")}, all`);
  return found;
}

function parse() {
  try {
    return parseArgs({
      options: {
        kernel: { type: "string", default: "6.1" },
        arch: { type: "string", default: "x86_64" },
        cgroup: { type: "string", default: "all" },
        timeout: { type: "string" },
        cpu: { type: "string" },
        stress: { type: "string" },
        verbose: { type: "boolean", short: "v", default: false },
        table: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }).values;
  } catch (e) {
    usage((e as Error).message);
  }
}
const args = parse();
if (args.help) usage("help");
const kernels: KernelInfo[] = pick("kernel", args.kernel!, KERNELS);
const arches: ArchInfo[] = pick("arch", args.arch!, Object.values(ARCHES));
const cgroups: CgroupMode[] = pick(
  "cgroup",
  args.cgroup === "all" ? "all" : `cgroup${args.cgroup}`,
  CGROUPS.map((name) => ({ name })),
).map((c) => c.name as CgroupMode);
const timeoutArg = args.timeout === undefined ? undefined : Number(args.timeout);
if (timeoutArg !== undefined && !(timeoutArg > 0)) usage(`--timeout ${args.timeout}: not a number of seconds`);
// Both go on QEMU's or the kernel's command line: nothing there may split them.
if (args.cpu !== undefined && !/^[\w=,.-]+$/.test(args.cpu)) usage(`--cpu ${args.cpu}: not a QEMU CPU model (NAME[,PROP=VALUE...])`);
if (args.stress !== undefined && !/^([\w-]+(:\d+)+)(,[\w-]+(:\d+)+)*$/.test(args.stress)) {
  usage(`--stress ${args.stress}: not KIND:N[:SECONDS],... (pure:6:30,fork:25; guest/stress.sh)`);
}

const say = (s: string) => process.stderr.write(`test:vm: ${s}\n`);

const RESULTS = join(CACHE, "results");

/** The support table from each boot's saved results, in the matrix's order. */
function savedTable(): string {
  const order = (r: Row) =>
    [KERNELS.findIndex((k) => k.name === r.kernel), Object.keys(ARCHES).indexOf(r.arch), CGROUPS.indexOf(r.cgroup as CgroupMode)];
  const saved = readdirSync(RESULTS)
    .filter((f) => f.endsWith(".json"))
    .map((f) => JSON.parse(readFileSync(join(RESULTS, f), "utf8")) as Row);
  saved.sort((a, b) => {
    const [x, y] = [order(a), order(b)];
    return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!;
  });
  return supportTable(saved);
}

async function main(): Promise<number> {
  if (args.table) {
    process.stdout.write(`${savedTable()}\n`);
    return 0;
  }
  const t0 = performance.now();
  const tools: [string | undefined, string][] = [["dpkg-deb", "dpkg"], ["apt-get", "apt"]];
  for (const a of arches) {
    tools.push([a.qemu, a.qemuPackage], [a.cc, a.ccPackages[0]!]);
    // The C library headers and static libc come in packages of their own.
    for (const p of a.ccPackages.slice(1)) tools.push([undefined, p]);
    if (a.compat32) tools.push([a.compat32.as, a.compat32.package]);
  }
  ensureTools(tools, say);
  const logs = join(CACHE, "logs");
  mkdirSync(logs, { recursive: true });
  const rows: Row[] = [];
  let bad = 0;
  for (const arch of arches) {
    say(`building bunbox, its shim and fixtures for ${arch.name}`);
    const art = build(arch);
    const initramfs = join(CACHE, "build", arch.name, "initramfs.cpio");
    makeInitramfs(art, initramfs);
    say(`setup for ${arch.name} done after ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    for (const k of kernels) {
      const kernel = fetchKernel(k, arch);
      for (const cgroup of cgroups) {
        const name = `${k.name} ${arch.name} ${cgroup}`;
        say(`booting ${kernel.package} ${kernel.version} (${name})`);
        // Alone on 2 cores a boot takes ~2.5 min (x86_64) or ~9 min (aarch64,
        // which TCG emulates more slowly); the limits leave room for a loaded host.
        const timeoutSeconds = timeoutArg ?? (arch.name === "x86_64" ? 1200 : 3000);
        const log = join(logs, `${k.name}-${arch.name}-${cgroup}.log`);
        const o = await boot({
          arch, kernel: kernel.image, initramfs, cgroup, log, timeoutSeconds, cpu: args.cpu, stress: args.stress,
          onLine: args.verbose ? (kind, text) => say(`${kind} ${text}`) : undefined,
        });
        report(name, o, log, timeoutSeconds);
        if (o.failed.length > 0 || !o.done) bad++;
        const row: Row = { kernel: k.name, arch: arch.name, cgroup, release: `${kernel.package} ${kernel.version}`, outcome: o };
        rows.push(row);
        if (args.cpu !== undefined || args.stress !== undefined) continue; // not the table's set-up
        mkdirSync(RESULTS, { recursive: true });
        writeFileSync(join(RESULTS, `${k.name}-${arch.name}-${cgroup}.json`), JSON.stringify({ ...row, date: new Date().toISOString() }));
      }
    }
  }
  if (rows.length > 1) process.stdout.write(`\n${supportTable(rows)}\n`);
  say(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return bad ? 1 : 0;
}

function report(name: string, o: Outcome, log: string, timeout: number): void {
  for (const line of o.info) say(`${name}: ${line}`);
  for (const line of o.skipped) say(`${name}: skipped ${line}`);
  for (const line of o.crashes) process.stdout.write(`${name}: the Bun runtime crashed (the case ran again): ${line}\n`);
  for (const line of o.failed) process.stdout.write(`${name}: FAILED ${line}\n`);
  const failed = o.failed.length + (o.done ? 0 : 1);
  if (!o.done) {
    const last = o.passed.at(-1) ?? "(none)";
    const why = o.timedOut ? `did not finish within ${timeout} s` : "ended before the suite did (panic?)";
    process.stdout.write(`${name}: FAILED the boot ${why}; the last case that passed: ${last}; log: ${log}\n`);
  }
  say(`${name}: boot and suite took ${o.seconds.toFixed(0)} s; log: ${log}`);
  process.stdout.write(`${name}: ${o.passed.length} passed, ${failed} failed, ${o.skipped.length} skipped\n`);
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    say(e instanceof RigError ? e.message : ((e as Error)?.stack ?? String(e)));
    process.exit(1);
  },
);
