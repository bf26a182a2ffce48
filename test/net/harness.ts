/**
 * Shared by the proxy's tests: the netns fixture (test/net/fixtures/netns.c),
 * clients run inside a fresh network namespace whose sockets reach the proxy
 * exactly as a sandbox's will (a listening socket created inside and accepted
 * on by the host, or each connection's fd passed out), and local servers on
 * loopback (HTTP, HTTPS with a certificate made here by openssl).
 */
import { dlopen, FFIType, ptr } from "bun:ffi";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RecvScratch, recvFrame, socketpair } from "../../src/native/comms.ts";
import { closeFd } from "../../src/native/sys.ts";
import { EPOLLIN, watch } from "../../src/native/reactor.ts";
import type { NetProxy } from "../../src/net/proxy.ts";

export const IS_ROOT = process.geteuid?.() === 0;

/** python3 itself (a version manager's shim costs a shell per start). */
export const PYTHON = (() => {
  const p = Bun.spawnSync(["python3", "-c", "import sys; print(sys.executable)"], { stderr: "ignore" });
  return p.exitCode === 0 ? p.stdout.toString().trim() : "python3";
})();
/** The proxy's port inside a client's namespace (any port is free there). */
export const PROXY_PORT = 3128;

let workDir: string | undefined;

/** A private temporary directory, removed at exit. */
export function work(): string {
  if (!workDir) {
    workDir = mkdtempSync(join(tmpdir(), "bunbox-net-test-"));
    const dir = workDir;
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  }
  return workDir;
}

let netnsPath: string | undefined;

/** test/net/fixtures/netns.c, built once per process (or given by the parent, in a world). */
export function netns(): string {
  netnsPath ??= process.env.BUNBOX_NETNS_FIXTURE;
  if (netnsPath) return netnsPath;
  const out = join(work(), "netns");
  const p = Bun.spawnSync(["gcc", "-O1", "-Wall", "-o", out, join(import.meta.dir, "fixtures", "netns.c")], { stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`building the netns fixture failed:\n${p.stderr.toString()}`);
  netnsPath = out;
  return out;
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `argv` in a fresh network namespace whose 127.0.0.1:PROXY_PORT is
 * served by `proxy`: "listen" hands the proxy a listening socket made
 * inside, "accept" each connection accepted inside.
 */
export async function runInNamespace(proxy: NetProxy, argv: string[], opts: { mode?: "listen" | "accept"; env?: Record<string, string>; stdin?: string } = {}): Promise<Run> {
  const mode = opts.mode ?? "listen";
  const pair = socketpair();
  if (typeof pair === "number") throw new Error(`socketpair: ${pair}`);
  const [ours, theirs] = pair;
  const scratch = new RecvScratch();
  const buf = new Uint8Array(64);
  const w = watch(ours, EPOLLIN, () => {
    for (;;) {
      const n = recvFrame(ours, buf, scratch);
      for (const fd of scratch.received) {
        if (mode === "listen") proxy.serveListener(fd);
        else proxy.adopt(fd);
      }
      // EOF stays readable: re-arming after it would spin the reactor.
      if (n === 0) return w.close();
      if (n < 0) break;
    }
    w.rearm();
  });
  try {
    const proc = Bun.spawn([netns(), mode, String(PROXY_PORT), "--", ...argv], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: work(), ...opts.env },
      stdio: [opts.stdin === undefined ? "ignore" : new Blob([opts.stdin]), "pipe", "pipe", theirs],
    });
    closeFd(theirs);
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { code, stdout, stderr };
  } finally {
    w.close();
    closeFd(ours);
  }
}

export interface Servers {
  http: number;
  https: number;
  /** The CA (self-signed certificate) clients must trust. */
  ca: string;
  stop(): void;
}

/**
 * HTTP and HTTPS servers on 127.0.0.1: /hello answers "hello", /host the
 * Host header it got, /bytes?n=N N bytes, /echo the request body. The
 * certificate names allowed.test, other.test, wild.test, *.wild.test and
 * 127.0.0.1. Ports: ephemeral unless given (a world may take 80 and 443).
 */
export function startServers(ports: { http?: number; https?: number } = {}): Servers {
  const dir = work();
  const key = join(dir, "server.key");
  const cert = join(dir, "server.crt");
  const p = Bun.spawnSync(
    [
      "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=bunbox test", "-addext", "subjectAltName=DNS:allowed.test,DNS:other.test,DNS:wild.test,DNS:*.wild.test,IP:127.0.0.1",
      "-keyout", key, "-out", cert,
    ],
    { stderr: "pipe" },
  );
  if (p.exitCode !== 0) throw new Error(`openssl failed:\n${p.stderr.toString()}`);
  const fetch = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    if (url.pathname === "/hello") return new Response("hello");
    if (url.pathname === "/host") return new Response(req.headers.get("host") ?? "");
    if (url.pathname === "/bytes") return new Response(new Uint8Array(Number(url.searchParams.get("n") ?? 0)).fill(120));
    if (url.pathname === "/echo") return new Response(await req.arrayBuffer());
    return new Response("not found", { status: 404 });
  };
  const http = Bun.serve({ hostname: "127.0.0.1", port: ports.http ?? 0, fetch });
  const https = Bun.serve({ hostname: "127.0.0.1", port: ports.https ?? 0, fetch, tls: { key: Bun.file(key), cert: Bun.file(cert) } });
  return {
    http: http.port!,
    https: https.port!,
    ca: cert,
    stop() {
      http.stop(true);
      https.stop(true);
    },
  };
}

/** Writes a file in the work directory and returns its path. */
export function writeWork(name: string, text: string): string {
  const path = join(work(), name);
  writeFileSync(path, text);
  return path;
}

/** Waits until `cond` holds (polling the event loop), or throws after `ms`. */
export async function until(cond: () => boolean, ms = 10_000, what = "the condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

// ---- raw TCP sockets for the relay's tests (libc through bun:ffi) ----

const libc = dlopen("libc.so.6", {
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  listen: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  getsockname: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
}).symbols;

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;

/** A listening TCP socket on 127.0.0.1 (an ephemeral port) in this process's namespace. */
export function tcpListener(): { fd: number; port: number } {
  const fd = libc.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sa = new Uint8Array(16);
  sa[0] = AF_INET;
  sa.set([127, 0, 0, 1], 4);
  if (fd < 0 || libc.bind(fd, ptr(sa), 16) < 0 || libc.listen(fd, 4096) < 0) throw new Error("test: cannot listen on 127.0.0.1");
  const len = new Uint32Array([16]);
  libc.getsockname(fd, ptr(sa), ptr(len));
  return { fd, port: (sa[2]! << 8) | sa[3]! };
}

/** getsockopt(IPPROTO_TCP, TCP_NODELAY). */
export function noDelay(fd: number): boolean {
  const v = new Int32Array(1);
  const len = new Uint32Array([4]);
  if (libc.getsockopt(fd, 6, 1, ptr(v), ptr(len)) < 0) throw new Error(`test: getsockopt on fd ${fd}`);
  return v[0] !== 0;
}

/** How many fds this process has open. */
export function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

export type WorldRun = Run & { records: import("../../src/net/report.ts").ConnectionRecord[] };

/** Runs a scenario in a world of its own (world.ts): the results of each client run. */
export function runWorld(scenario: import("./world.ts").Scenario): Promise<Record<string, WorldRun>> {
  return inWorld("world.ts", scenario);
}

/** Runs `bunbox run`s in a world of their own (sandbox-world.ts). */
export function runSandboxWorld(scenario: import("./sandbox-world.ts").SandboxScenario): Promise<Record<string, import("./sandbox-world.ts").SandboxRun>> {
  return inWorld("sandbox-world.ts", scenario);
}

async function inWorld<T>(script: string, scenario: unknown): Promise<T> {
  const proc = Bun.spawn([netns(), "world", "--", process.execPath, join(import.meta.dir, script)], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: work(), BUNBOX_NETNS_FIXTURE: netns() },
    stdin: new Blob([JSON.stringify(scenario)]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`the world exited ${code}:\n${stderr}`);
  return JSON.parse(stdout);
}
