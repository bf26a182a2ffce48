/**
 * A world for `bunbox run --net proxy` (sandbox.test.ts): run by the netns
 * fixture in a network namespace with only `lo`, it starts HTTP on
 * 127.0.0.1:80 and HTTPS on 127.0.0.1:443 (harness.ts startServers) and runs
 * each `bunbox run` of the scenario, as root or as user nobody (setpriv), a
 * few at a time. bunbox, its proxy and its sandboxes all live in here: a
 * refusal that broke could not reach past this loopback.
 *
 * Input (stdin): a SandboxScenario. Output (stdout): { [run]: SandboxRun }.
 * In arguments, {CA} is the HTTPS server's certificate (world-readable).
 */
import { chmodSync } from "node:fs";
import { dirname } from "node:path";
import { startServers } from "./harness.ts";

export interface SandboxScenario {
  /** The bunbox executable. */
  bunbox: string;
  runs: Record<string, { args: string[]; nobody?: boolean }>;
}

export interface SandboxRun {
  code: number;
  stdout: string;
  stderr: string;
  /** The Result (--json: bunbox's last line on stderr), when it printed one. */
  result?: Record<string, any>;
}

const PARALLEL = 6;

const scenario = (await Bun.stdin.json()) as SandboxScenario;
const servers = startServers({ http: 80, https: 443 });
// The certificate is read by bunbox run as nobody too (bound into its sandboxes).
chmodSync(dirname(servers.ca), 0o755);
chmodSync(servers.ca, 0o644);

async function run(args: string[], nobody: boolean): Promise<SandboxRun> {
  const full = [scenario.bunbox, "run", "--json", ...args.map((a) => a.replaceAll("{CA}", servers.ca))];
  const cmd = nobody ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...full] : full;
  const proc = Bun.spawn(cmd, { cwd: "/", env: { PATH: "/usr/bin:/bin" }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const last = stderr.trimEnd().split("\n").at(-1) ?? "";
  let result: Record<string, any> | undefined;
  try {
    result = last.startsWith("{") ? JSON.parse(last) : undefined;
  } catch {
    result = undefined;
  }
  return { code, stdout, stderr, ...(result ? { result } : {}) };
}

const out: Record<string, SandboxRun> = {};
const queue = Object.entries(scenario.runs);
await Promise.all(
  Array.from({ length: PARALLEL }, async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const [name, r] = next;
      out[name] = await run(r.args, r.nobody ?? false);
    }
  }),
);
servers.stop();
// Written out before the exit: the Results of a flood run are a megabyte, more than a pipe holds.
await Bun.write(Bun.stdout, JSON.stringify(out));
process.exit(0);
