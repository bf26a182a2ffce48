/**
 * Benchmark 7: what `--net proxy` costs a program that downloads through it.
 *
 * The origin server (net-server.ts) runs in a process of its own on the
 * host's loopback. Direct, the client runs on the host and talks to it.
 * Through `bunbox run --net proxy` (dist/bunbox, named through --add-host),
 * the client runs in a sandbox and reaches it through the variables bunbox
 * sets; with --net proxy-transparent it ignores them and its connect() is
 * taken over. The proxy alone also runs in this process, as the tests feed
 * it (test/net/harness.ts: the client in a bare network namespace whose
 * 127.0.0.1:3128 is accepted on here), which isolates the proxy from the
 * sandbox and lets this process time its relay thread.
 *
 *   download   curl fetching 256 MiB, `-o /dev/null`; curl's own
 *              speed_download, so its start and the sandbox's set-up are
 *              not counted. Direct, through bunbox run (HTTP forwarding:
 *              the bulk path is the relay's splice either way; and
 *              transparent), through the proxy alone, and, when socat is
 *              installed, through `socat TCP-LISTEN … TCP:…` (the extra hop
 *              of sandbox-runtime's bwrap + socat design, without its
 *              proxy: a floor for that design).
 *   latency    net-client.ts: sequential small GETs, each on a new
 *              connection, timed from connect to the server's close: direct,
 *              forwarded by bunbox run's proxy and by the proxy alone,
 *              CONNECT then GET in the tunnel (one more round trip, inherent
 *              to CONNECT), and a transparent connect() by name.
 *
 * Rounds run every variant once, in a rotated order. Throughput goal: the
 * median of per-round ratios bunbox run / direct ≥ 0.8; latency goal:
 * median forwarded (bunbox run) minus median direct < 0.5 ms.
 */
import { readdirSync, readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { NetPolicy } from "../../src/net/policy.ts";
import { NetProxy } from "../../src/net/proxy.ts";
import { PROXY_PORT, runInNamespace } from "../../test/net/harness.ts";
import { type Benchmark, goal, type Measurement } from "./report.ts";
import { BenchError, BUNBOX } from "./setup.ts";
import { median, summarize } from "./stats.ts";

export interface NetOptions {
  rounds: number;
  downloadMiB: number;
  /** Small GETs per latency sample run. */
  requests: number;
  log: (s: string) => void;
}

const NAME = "bench.test";

/** CPU time (user + system) of the relay thread so far, in ms (0 before it starts). */
function relayCpuMs(): number {
  for (const tid of readdirSync("/proc/self/task")) {
    if (readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim() !== "bunbox-relay") continue;
    const f = readFileSync(`/proc/self/task/${tid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms (USER_HZ 100)
  }
  return 0;
}

async function startServer(mib: number): Promise<{ port: number; stop(): void }> {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "net-server.ts"), String(mib)], { stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new BenchError("net-server.ts exited before it listened");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return { port: Number(text.trim()), stop: () => proc.kill() };
}

function startSocat(socat: string, target: number): { port: number; stop(): void } {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const proc = Bun.spawn([socat, `TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`, `TCP:127.0.0.1:${target}`], { stdio: ["ignore", "ignore", "inherit"] });
  return { port, stop: () => proc.kill() };
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then(
      (s) => (s.end(), true),
      () => false,
    );
    if (ok) return;
    await Bun.sleep(10);
  }
  throw new BenchError(`nothing listens on 127.0.0.1:${port}`);
}

/** curl's speed_download (MB/s) from `argv`'s output. */
function speed(out: { code: number; stdout: string; stderr: string }, what: string, bytes: number): number {
  const [size, bps] = out.stdout.trim().split(" ").map(Number);
  if (out.code !== 0 || size !== bytes) throw new BenchError(`${what}: curl exited ${out.code} with ${size} bytes: ${out.stderr.trim()}`);
  return bps! / 1e6;
}

async function spawnOut(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

function times(out: { code: number; stdout: string; stderr: string }, what: string): number[] {
  if (out.code !== 0) throw new BenchError(`${what}: net-client exited ${out.code}: ${out.stderr.trim()}`);
  return JSON.parse(out.stdout) as number[];
}

export async function benchNet(opts: NetOptions): Promise<Benchmark[]> {
  const curl = Bun.which("curl");
  if (!curl) throw new BenchError("curl is not installed; the network benchmark needs it (apt-get install curl)");
  const socat = Bun.which("socat");
  const bytes = opts.downloadMiB * 1024 * 1024;
  const server = await startServer(opts.downloadMiB);
  const relay = socat ? startSocat(socat, server.port) : undefined;
  const proxy = new NetProxy({ policy: new NetPolicy({ allow: [NAME], addHosts: { [NAME]: "127.0.0.1" } }) });
  const client = join(import.meta.dir, "net-client.ts");
  // bunbox run with the server's name allowed; the client script and this Bun bound in for the latency runs.
  const sandboxed = (mode: "proxy" | "proxy-transparent", argv: string[]) =>
    spawnOut([
      BUNBOX, "run", "--net", mode, "--allow-host", NAME, "--add-host", `${NAME}:127.0.0.1`,
      "--ro", `${import.meta.dir}:/bench`, "--ro", `${realpathSync(process.execPath)}:/bench-bun`, "--", ...argv,
    ]);
  const inside = (mode: string, ...args: string[]) => ["/bench-bun", "/bench/net-client.ts", mode, ...args];
  try {
    if (relay) await waitForPort(relay.port);
    const fmt = "%{size_download} %{speed_download}";
    const download: Record<string, () => Promise<number>> = {
      direct: async () => speed(await spawnOut([curl, "-s", "-o", "/dev/null", "-w", fmt, `http://127.0.0.1:${server.port}/big`]), "direct", bytes),
      bunbox: async () => speed(await sandboxed("proxy", [curl, "-s", "-o", "/dev/null", "-w", fmt, `http://${NAME}:${server.port}/big`]), "bunbox run --net proxy", bytes),
      transparent: async () =>
        speed(await sandboxed("proxy-transparent", [curl, "-s", "--noproxy", "*", "-o", "/dev/null", "-w", fmt, `http://${NAME}:${server.port}/big`]), "bunbox run --net proxy-transparent", bytes),
      proxy: async () => {
        const cpu = relayCpuMs();
        const s = speed(await runInNamespace(proxy, [curl, "-s", "-o", "/dev/null", "-w", fmt, "-x", `http://127.0.0.1:${PROXY_PORT}`, `http://${NAME}:${server.port}/big`]), "proxy", bytes);
        relayMs.push(relayCpuMs() - cpu);
        return s;
      },
      ...(relay ? { socat: async () => speed(await spawnOut([curl, "-s", "-o", "/dev/null", "-w", fmt, `http://127.0.0.1:${relay.port}/big`]), "socat", bytes) } : {}),
    };
    const n = String(opts.requests);
    const latency: Record<string, () => Promise<number[]>> = {
      direct: async () => times(await spawnOut([process.execPath, client, "direct", NAME, String(server.port), n]), "direct"),
      bunbox: async () => times(await sandboxed("proxy", inside("forward", String(PROXY_PORT), `http://${NAME}:${server.port}/small`, n)), "bunbox run --net proxy"),
      transparent: async () => times(await sandboxed("proxy-transparent", inside("name", NAME, String(server.port), n)), "bunbox run --net proxy-transparent"),
      forward: async () => times(await runInNamespace(proxy, [process.execPath, client, "forward", String(PROXY_PORT), `http://${NAME}:${server.port}/small`, n]), "forward"),
      connect: async () => times(await runInNamespace(proxy, [process.execPath, client, "connect", String(PROXY_PORT), `${NAME}:${server.port}`, n]), "connect"),
    };
    const relayMs: number[] = [];
    const got: Record<string, number[]> = {};
    const lat: Record<string, number[]> = {};
    const ratios: number[] = [];
    const proxyRatios: number[] = [];
    for (let round = -1; round < opts.rounds; round++) {
      opts.log(`net: round ${round + 1}/${opts.rounds}${round < 0 ? " (warm-up)" : ""}`);
      const keys = Object.keys(download);
      const order = keys.map((_, i) => keys[(i + Math.max(round, 0)) % keys.length]!);
      const sample: Record<string, number> = {};
      for (const k of order) sample[k] = await download[k]!();
      const lkeys = Object.keys(latency);
      const lorder = lkeys.map((_, i) => lkeys[(i + Math.max(round, 0)) % lkeys.length]!);
      const lsample: Record<string, number[]> = {};
      for (const k of lorder) lsample[k] = await latency[k]!();
      if (round < 0) continue;
      for (const [k, v] of Object.entries(sample)) (got[k] ??= []).push(v);
      for (const [k, v] of Object.entries(lsample)) (lat[k] ??= []).push(...v);
      ratios.push(sample.bunbox! / sample.direct!);
      proxyRatios.push(sample.proxy! / sample.direct!);
    }
    const failed = proxy.report().failed + proxy.report().denied;
    if (failed > 0) throw new BenchError(`the proxy refused or failed ${failed} connections of the benchmark`);

    const dl: Measurement[] = [
      { label: "direct (curl → server)", unit: "MB/s", stat: summarize(got.direct!) },
      { label: "bunbox run --net proxy (curl in the sandbox, http_proxy)", unit: "MB/s", stat: summarize(got.bunbox!) },
      { label: "bunbox run --net proxy-transparent (curl --noproxy, connect() taken over)", unit: "MB/s", stat: summarize(got.transparent!) },
      { label: "the proxy alone (curl in a bare namespace → proxy in this process)", unit: "MB/s", stat: summarize(got.proxy!) },
      ...(got.socat ? [{ label: "through socat (one TCP hop, no proxy: sandbox-runtime's extra hop)", unit: "MB/s", stat: summarize(got.socat) }] : []),
    ];
    const ratio = median(ratios);
    const downloadBench: Benchmark = {
      id: "net-download",
      title: `${opts.downloadMiB} MiB download over loopback: direct vs through bunbox run --net proxy`,
      measurements: dl,
      derived: [
        { label: "bunbox run / direct, median of per-round ratios", value: ratio },
        { label: "the proxy alone / direct, median of per-round ratios", value: median(proxyRatios) },
        { label: "transparent / direct, medians", value: median(got.transparent!) / median(got.direct!) },
        // Load-independent: what moving the bytes costs bunbox (the relay thread's CPU time; the warm-up round included).
        { label: "relay thread CPU per GiB moved", value: (median(relayMs) * 1024) / opts.downloadMiB, unit: "ms" },
        ...(got.socat ? [{ label: "socat / direct, medians", value: median(got.socat) / median(got.direct!) }] : []),
      ],
      goal: goal("bunbox run --net proxy ≥ 0.8 of direct", "bunbox run / direct", ratio, ">=", 0.8),
      notes: [
        "on loopback every byte crosses the kernel's TCP stack twice through any relay (client ↔ proxy, proxy ↔ server): with curl and the server already keeping the CPUs busy, the relay's share is what the ratio loses",
        ...(socat ? [] : ["socat is not installed (apt-get install socat): its comparison is skipped"]),
      ],
    };
    const overhead = median(lat.bunbox!) - median(lat.direct!);
    const latencyBench: Benchmark = {
      id: "net-latency",
      title: "small GET on a new connection: direct vs through bunbox run --net proxy",
      measurements: [
        { label: "direct", unit: "µs", stat: summarize(lat.direct!) },
        { label: "bunbox run --net proxy, forwarded (GET http://…)", unit: "µs", stat: summarize(lat.bunbox!) },
        { label: "bunbox run --net proxy-transparent (connect() by name)", unit: "µs", stat: summarize(lat.transparent!), note: "the connect() waits while bunbox connects upstream" },
        { label: "the proxy alone, forwarded", unit: "µs", stat: summarize(lat.forward!) },
        { label: "the proxy alone, CONNECT then GET in the tunnel", unit: "µs", stat: summarize(lat.connect!), note: "one more round trip: the client waits for 200" },
      ],
      derived: [
        { label: "bunbox run forwarded − direct, medians", value: overhead, unit: "µs" },
        { label: "transparent − direct, medians", value: median(lat.transparent!) - median(lat.direct!), unit: "µs" },
        { label: "proxy alone forwarded − direct, medians", value: median(lat.forward!) - median(lat.direct!), unit: "µs" },
        { label: "CONNECT − direct, medians", value: median(lat.connect!) - median(lat.direct!), unit: "µs" },
      ],
      goal: goal("under 0.5 ms added per request", "bunbox run forwarded − direct (ms)", overhead / 1000, "<=", 0.5),
      notes: [],
    };
    return [downloadBench, latencyBench];
  } finally {
    await proxy.close();
    relay?.stop();
    server.stop();
  }
}
