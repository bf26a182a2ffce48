/**
 * Shared by the comms tests: builds the C peer (test/fixtures/comms_peer.c,
 * with the client library csrc/client/ and -Werror) and starts a peer as a
 * child holding the other end of a socketpair as its fd 3.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { Comms, type CommsOptions } from "../../src/comms/index.ts";
import { closeFd } from "../../src/native/sys.ts";

const root = resolve(import.meta.dir, "../..");
export const TS_PEER = join(import.meta.dir, "client_peer.ts");

/** gcc -Wall -Wextra -Werror of the C peer into a fresh directory; its path. */
export function buildCPeer(): string {
  const out = join(mkdtempSync(join(tmpdir(), "bunbox-comms-")), "comms_peer");
  const p = Bun.spawnSync(
    ["gcc", "-O1", "-Wall", "-Wextra", "-Werror", "-o", out, join(root, "test/fixtures/comms_peer.c")],
    { stdout: "pipe", stderr: "pipe" },
  );
  if (p.exitCode !== 0) throw new Error(`building comms_peer failed:\n${p.stderr.toString()}`);
  return out;
}

export interface Peer {
  comms: Comms;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Waits for the peer to exit: its code, stdout and stderr. */
  done(): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** Runs `cmd` with the other end of a fresh socketpair as its fd 3. */
export function startPeer(cmd: string[], options: CommsOptions = {}): Peer {
  const { comms, peerFd } = Comms.pairWithFd(options);
  const proc = Bun.spawn(cmd, { stdio: ["ignore", "pipe", "pipe", peerFd] });
  closeFd(peerFd);
  return {
    comms,
    proc,
    async done() {
      const [stdout, stderr, code] = await Promise.all([
        new Response(proc.stdout).text(),
        new Response(proc.stderr).text(),
        proc.exited,
      ]);
      return { code, stdout, stderr };
    },
  };
}

/** The C peer in MODE. */
export function cPeer(bin: string, mode: string, options?: CommsOptions): Peer {
  return startPeer([bin, mode], options);
}

/** The TypeScript client peer in MODE (a Bun child). */
export function tsPeer(mode: string, options?: CommsOptions): Peer {
  return startPeer([process.execPath, TS_PEER, mode], options);
}
