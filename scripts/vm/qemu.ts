/**
 * One boot: QEMU under TCG (with -enable-kvm this machine's QEMU hangs at
 * boot; TCG needs no /dev/kvm either), the serial console on our stdout,
 * read line by line for the guest's "BBVM ..." lines (scripts/vm/guest/
 * smoke.sh says what they mean). The whole console goes to a log file. A
 * boot that does not say "BBVM done" within the time limit is killed and
 * counted as a failure, with the last case that started.
 */
import { createWriteStream } from "node:fs";
import type { ArchInfo, CgroupMode } from "./config.ts";

export interface Outcome {
  passed: string[];
  failed: string[];
  skipped: string[];
  info: string[];
  /** The Bun runtime under bunbox crashed (the case then ran once more). */
  crashes: string[];
  /** The guest reached "BBVM done". */
  done: boolean;
  timedOut: boolean;
  seconds: number;
}

export interface BootOptions {
  arch: ArchInfo;
  kernel: string;
  initramfs: string;
  cgroup: CgroupMode;
  log: string;
  timeoutSeconds: number;
  /** QEMU's `-cpu` instead of the arch's. */
  cpu?: string;
  /** Run guest/stress.sh with this spec instead of the smoke suite. */
  stress?: string;
  /** Called with each result line as it arrives. */
  onLine?: (kind: "ok" | "not ok" | "skip" | "info" | "crash", text: string) => void;
}

const LINE = /BBVM (ok|not ok|skip|info|crash|done)\b ?(.*)$/;

/** A QEMU must not outlive us (CI's timeout sends SIGTERM). */
const running = new Set<{ kill(sig?: number): void }>();
for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  process.on(sig, () => {
    for (const p of running) p.kill(9);
    process.exit(code);
  });
}

export async function boot(o: BootOptions): Promise<Outcome> {
  const append = [
    `console=${o.arch.console}`,
    "panic=-1",
    "oops=panic",
    // Only emergencies on the console (init.sh also lowers printk): kernel
    // messages would cut the result lines.
    "loglevel=1",
    // Expedited RCU grace periods: a network namespace is torn down after
    // several of them, and under TCG the normal ones are slow enough to queue
    // up the teardown of every sandbox's namespace (a later clone waits for it).
    "rcupdate.rcu_expedited=1",
    `bbvm.cgroup=${o.cgroup}`,
    ...(o.stress ? [`bbvm.stress=${o.stress}`] : []),
  ].join(" ");
  const cmd = [
    o.arch.qemu,
    ...o.arch.qemuArgs,
    "-cpu", o.cpu ?? o.arch.cpu,
    "-smp", "2",
    "-m", "3072",
    "-nographic",
    "-no-reboot",
    "-monitor", "none",
    "-serial", "stdio",
    "-nic", "none",
    "-kernel", o.kernel,
    "-initrd", o.initramfs,
    "-append", append,
  ];
  const started = performance.now();
  const out: Outcome = { passed: [], failed: [], skipped: [], info: [], crashes: [], done: false, timedOut: false, seconds: 0 };
  const log = createWriteStream(o.log);
  log.write(`# ${cmd.join(" ")}\n`);
  const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  running.add(proc);
  const timer = setTimeout(() => {
    out.timedOut = true;
    proc.kill("SIGKILL");
  }, o.timeoutSeconds * 1000);
  const stderr = new Response(proc.stderr).text();
  const decoder = new TextDecoder();
  let pending = "";
  const take = (line: string) => {
    log.write(`${line}\n`);
    const m = LINE.exec(line.replace(/\r$/, ""));
    if (!m) return;
    const [, kind, text = ""] = m;
    if (kind === "done") {
      out.done = true;
      return;
    }
    ({ ok: out.passed, "not ok": out.failed, skip: out.skipped, info: out.info, crash: out.crashes })[kind as "ok"].push(text);
    o.onLine?.(kind as "ok", text);
  };
  for await (const chunk of proc.stdout) {
    pending += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = pending.indexOf("\n")) >= 0) {
      take(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  }
  if (pending) take(pending);
  await proc.exited;
  running.delete(proc);
  clearTimeout(timer);
  const err = await stderr;
  if (err) log.write(`# qemu stderr:\n${err}`);
  await new Promise((r) => log.end(r));
  out.seconds = (performance.now() - started) / 1000;
  return out;
}
