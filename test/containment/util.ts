/**
 * Shared by test/containment/: the hog fixture (test/fixtures/hog.c) inside
 * a sandbox, held while the test looks at the host, and outside one.
 */
import { readdirSync, readFileSync } from "node:fs";
import { BUNBOX, DIR, FX } from "../helpers.ts";

export const HOG = `${FX}/hog`;
const NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];

export { json } from "../helpers.ts";

export interface Held {
  /** What the hog printed before "holding" (how far it got). */
  line: string;
  proc: ReturnType<typeof Bun.spawn>;
  /** Ends the sandbox (SIGTERM to bunbox, which forwards it) and waits for bunbox. */
  stop(): Promise<void>;
}

/** `bunbox run ARGS -- hog MODE…`, once the hog says it is holding what it took. */
export async function holding(mode: string[], runArgs: string[] = [], opts: { nobody?: boolean } = {}): Promise<Held> {
  const cmd = [...(opts.nobody ? NOBODY : []), BUNBOX, "run", "--ro", `${DIR}:${FX}`, ...runArgs, "--", HOG, ...mode];
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", cwd: "/", env: { PATH: "/usr/bin:/bin" } });
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  let text = "";
  while (!text.includes("holding\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the hog ended before holding: ${text} ${await new Response(proc.stderr as ReadableStream).text()}`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return {
    line: text.split("\n")[0]!,
    proc,
    stop: async () => {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

/** The hog outside any sandbox (as root, or as nobody): its one line. */
export function onHost(mode: string[], opts: { nobody?: boolean } = {}): string {
  const p = Bun.spawnSync([...(opts.nobody ? NOBODY : []), `${DIR}/hog`, ...mode], { stdout: "pipe", stderr: "pipe" });
  return p.stdout.toString().trim();
}

/** The host pid of the sandboxee under bunbox `pid`: its init is a child of one of bunbox's threads (-1 if none). */
export function sandboxeePid(bunboxPid: number): number {
  const children = (pid: number, tid = pid) => {
    try {
      return readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  for (const tid of readdirSync(`/proc/${bunboxPid}/task`).map(Number)) {
    for (const init of children(bunboxPid, tid)) {
      const [sandboxee] = children(init);
      if (sandboxee) return sandboxee;
    }
  }
  return -1;
}
