/**
 * The smoke suite's library cases: bunbox used from TypeScript, as the
 * examples and test/sandbox/modes.test.ts use it, on the guest's kernel and
 * arch. Bundled by scripts/vm/build.ts and run by smoke.sh through the bunbox
 * executable itself (BUN_BE_BUN=1), with the guest's shim in BUNBOX_SHIM.
 * Prints smoke.sh's lines (BBVM ok|not ok LABEL NAME).
 *
 *   library.js LABEL FD_PATH     (FD_PATH: how this kernel closes fds at exec, for a case's name)
 *
 * For stress.sh (`bun run test:vm --stress`), instead of the cases:
 * BBVM_FORK_LOOP=N runs the fork-server case N times in this one process;
 * BBVM_PURE_JS=SECONDS runs, for that long, the fork-server case's own
 * JavaScript (a child's policy, its filter, the BPF encoding, messages and
 * promises) with no bun:ffi call at all: the shim is never loaded. README.md
 * ("Kernels and CPUs it is tested on") says what they showed.
 */
import { readdirSync, readlinkSync, readFileSync, openSync, closeSync } from "node:fs";
import { Executor, ForkServer, profileBuilder, Sandbox, type Policy } from "../../../src/index.ts";
import { encode } from "../../../src/policy/bpf.ts";
import { forkChildPolicy } from "../../../src/sandbox/launch/fork.ts";
import { armFilter } from "../../../src/sandbox/launch/launcher.ts";

const [label = "?", fdPath = "close_range"] = process.argv.slice(2);
const FX = `${process.env.BBVM_DIR ?? "/opt/bunbox"}/fx`;
const IS_ROOT = process.geteuid?.() === 0;

function policy(profile: string, edit?: (b: ReturnType<typeof profileBuilder>) => void): Policy {
  const b = profileBuilder(profile).allowComms();
  edit?.(b);
  return b.addDirectoryAt(FX, "/fx").build();
}

function check(cond: unknown, what: string): void {
  if (!cond) throw new Error(what);
}

async function t(name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
    console.log(`BBVM ok ${label} ${name}`);
  } catch (e) {
    console.log(`BBVM not ok ${label} ${name}: ${String((e as Error).message ?? e).replaceAll("\n", "|")}`);
  }
}

if (process.env.BBVM_PURE_JS) {
  const seconds = Number(process.env.BBVM_PURE_JS);
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const t0 = Date.now();
  let rounds = 0;
  await t(`pure JavaScript for ${seconds} s`, async () => {
    for (; Date.now() - t0 < seconds * 1000; rounds++) {
      const armed = armFilter(forkChildPolicy(policy("static", (b) => b.allowGetPids())).filter(true));
      const bytes = encode(armed.program);
      const views = new Map<number, DataView>();
      for (let k = 0; k < 50; k++) views.set(k, new DataView(bytes.buffer, k));
      const msg = JSON.parse(dec.decode(enc.encode(JSON.stringify({ op: "forked", id: rounds, magic: String(armed.magic) }))));
      check(msg.id === rounds && views.get(3)!.getUint8(0) === bytes[3], `round ${rounds} computed something else`);
      await new Promise((r) => setImmediate(r));
      await Promise.race([new Promise((r) => setTimeout(r, 0)), Promise.resolve(rounds).then((x) => x + 1)]);
    }
    // The bundle imports bun:ffi; nothing may have called it.
    check(!/libbunbox/.test(readFileSync("/proc/self/maps", "utf8")), "the shim was loaded");
  });
  console.log(`BBVM info ${label} pure JavaScript: ${rounds} rounds in ${seconds} s`);
  process.exit(0);
}

await t("comms round trip (bytes, string, JSON, an fd) with the C client", async () => {
  const ex = new Executor("/fx/comms_peer", ["comms_peer", "echo", "1023"], { limits: { wallTimeMs: 60_000 } });
  const comms = ex.ipc.comms();
  const sandbox = new Sandbox(ex, policy("static"));
  sandbox.runAsync();
  await sandbox.ready();
  await comms.sendBytes(new Uint8Array([1, 2, 3, 255]));
  check(Buffer.from(await comms.recvBytes()).equals(Buffer.from([1, 2, 3, 255])), "bytes came back changed");
  await comms.sendString("héllo");
  check((await comms.recvString()) === "héllo", "string came back changed");
  await comms.sendJson({ a: [1, 2], b: "x" });
  check(JSON.stringify(await comms.recvJson()) === '{"a":[1,2],"b":"x"}', "JSON came back changed");
  const fd = openSync("/proc/self/status", "r");
  await comms.sendFd(fd);
  const back = await comms.recvFd();
  closeSync(fd);
  check(readFileSync(`/proc/self/fd/${back}`, "utf8").includes("Name:"), "the fd that came back is not the file");
  closeSync(back);
  comms.close();
  const r = await sandbox.awaitResult();
  check(r.status === "OK", `the peer ended ${r.toString()}`);
});

const forkServerCase = async () => {
  const server = await ForkServer.start(new Executor("/fx/modes", ["modes", "fork-server"]), policy("static"));
  try {
    const child = () => new Sandbox(server.executor({ limits: { wallTimeMs: 60_000 } }), policy("static", (b) => b.allowGetPids()));
    const pids: string[] = [];
    for (const n of [3, 12]) {
      const s = child();
      s.runAsync();
      await s.ready();
      await s.comms!.sendString(`square ${n}`);
      const answer = await s.comms!.recvString();
      const m = /^(\d+) \(table 500500, pid (\d+)\)$/.exec(answer);
      check(m && Number(m[1]) === n * n, `answered "${answer}" for square ${n}`);
      pids.push(m![2]!);
      await s.comms!.sendString("exit 7");
      const r = await s.awaitResult();
      check(r.status === "OK" && r.exitCode === 7, `a child ended ${r.toString()}`);
    }
    check(pids[0] !== pids[1], "two children had the same pid");
    const bad = child();
    bad.runAsync();
    await bad.ready();
    await bad.comms!.sendString("ptrace");
    const r = await bad.awaitResult();
    check(r.status === "VIOLATION" && r.violation?.syscall === "ptrace", `the violating child ended ${r.toString()}`);
  } finally {
    server.close();
  }
};
const forkLoop = Number(process.env.BBVM_FORK_LOOP ?? 0);
if (forkLoop > 0) {
  for (let k = 0; k < forkLoop; k++) await t(`fork server, round ${k + 1} of ${forkLoop}`, forkServerCase);
  process.exit(0);
}
await t("fork server: fresh children, each its own Result; a child's violation is its own", forkServerCase);

await t("sandbox me here: allowed before the call, the policy after it", async () => {
  // stdout a socket, as in test/sandbox/modes.test.ts: on a terminal, stdio's
  // isatty() would be an ioctl the static profile does not allow.
  const ok = new Executor("/fx/modes", ["modes", "me-here", "ok"], { sandboxBeforeExec: false });
  const out = ok.ipc.receiveFd(1);
  const r = await new Sandbox(ok, policy("static")).run();
  check(r.toString() === "OK: exit code 0", `ended ${r.toString()}`);
  const said = readFileSync(out, "utf8");
  closeSync(out);
  check(said === "sandboxed\n", `printed "${said}" after the call`);
  const bad = new Executor("/fx/modes", ["modes", "me-here", "open", "/etc/hostname"], { sandboxBeforeExec: false });
  const badOut = bad.ipc.receiveFd(1);
  const v = await new Sandbox(bad, policy("static")).run();
  closeSync(badOut);
  check(v.status === "VIOLATION" && /^open/.test(v.violation?.syscall ?? ""), `open after the call ended ${v.toString()}`);
});

// init gets its fds close-on-exec from A: by close_range(CLOSE_RANGE_CLOEXEC)
// or, before Linux 5.11, one by one. A mapped fd (the sandboxee's) must not
// stay open in init. Only root may look into init's fd table (it is not dumpable).
if (IS_ROOT) {
  await t(`init holds no mapped fd (${fdPath})`, async () => {
    const ex = new Executor("/fx/probe", ["probe", "sleep", "30"]);
    const mapped = openSync(`${FX}/probe`, "r");
    ex.ipc.mapFd(mapped, 100);
    const s = new Sandbox(ex, policy("static"));
    s.runAsync();
    await s.ready();
    try {
      const ppid = readFileSync(`/proc/${s.pid}/stat`, "utf8").split(") ")[1]!.split(" ")[1]!;
      const links = readdirSync(`/proc/${ppid}/fd`).map((fd) => readlinkSync(`/proc/${ppid}/fd/${fd}`));
      check(links.length > 0, "init has no fds at all?");
      check(!links.some((l) => l.endsWith("/fx/probe")), `init holds the mapped file: ${links.join(", ")}`);
    } finally {
      s.kill();
      closeSync(mapped);
    }
    await s.awaitResult();
  });
}
