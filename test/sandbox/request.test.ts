/**
 * The shim's own check of a spawn request (csrc/request.c): TypeScript
 * refuses bad input first, but a request that reaches C malformed (a bug, or
 * an old or foreign caller) must end as a "request" setup error naming the
 * field, before any clone, never as a child indexing past its fixed arrays
 * (fds, mounts) or running without the pid namespace that guarantees it dies
 * before its stack is unmapped. Each case takes a valid request built by
 * buildRequest, breaks one field (offsets from src/native/abi.ts) and hands
 * it to the shim through the normal path (spawnAsync).
 */
import { describe, expect, test } from "bun:test";
import {
  BB_CLONE_NEWNET, BB_CLONE_NEWPID, BB_CLONE_NEWUSER, BB_F_NET_PROXY, BB_FDMAP, BB_FILE_MAX, BB_M_FILE, BB_M_LOWER, BB_M_OVERLAY, BB_M_PROC,
  BB_M_READONLY, BB_MOUNT, BB_MOUNTS_MAX, BB_FDS_MAX, BB_REQ, BB_RLIMIT, type Field,
} from "../../src/native/abi.ts";
import { discard, isFailure, type SetupFailure, spawnAsync } from "../../src/native/spawn.ts";
import { Executor } from "../../src/sandbox/executor.ts";
import { armFilter } from "../../src/sandbox/launch/launcher.ts";
import { SETUP_TIMEOUT_MS } from "../../src/sandbox/limits.ts";
import { buildRequest } from "../../src/sandbox/request.ts";
import { testPolicy } from "../helpers.ts";

const policy = testPolicy();

function request(): { bytes: Uint8Array; view: DataView; u32(f: Field, base?: number): number } {
  const ex = new Executor("/bin/true", ["true"], { limits: { wallTimeMs: 5000 } });
  ex.ipc.mapFd(0, 5);
  const { bytes } = buildRequest(ex, policy, { notify: true, ...armFilter(policy.filter(true)), mounts: policy.mountPlan(), setupTimeoutMs: SETUP_TIMEOUT_MS });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { bytes, view, u32: (f, base = 0) => view.getUint32(base + f.offset, true) };
}

async function refused(edit: (r: ReturnType<typeof request>) => void): Promise<SetupFailure> {
  const r = request();
  edit(r);
  const s = await spawnAsync(r.bytes);
  if (!isFailure(s)) {
    discard(s);
    throw new Error("the shim spawned a malformed request");
  }
  return s;
}

test("the unbroken request spawns (the cases below break one field each)", async () => {
  const s = await spawnAsync(request().bytes);
  expect(isFailure(s) ? s.message : "spawned").toBe("spawned");
  if (!isFailure(s)) discard(s);
});

const set = (r: ReturnType<typeof request>, f: Field, v: number, base = 0) =>
  f.type === "i32" ? r.view.setInt32(base + f.offset, v, true) : r.view.setUint32(base + f.offset, v >>> 0, true);
const fd0 = (r: ReturnType<typeof request>) => r.u32(BB_REQ.fds_off);
const mount0 = (r: ReturnType<typeof request>) => r.u32(BB_REQ.mounts_off);
const mount1 = (r: ReturnType<typeof request>) => mount0(r) + BB_MOUNT.sizeof;
const rlimit0 = (r: ReturnType<typeof request>) => r.u32(BB_REQ.rlimits_off);

const CASES: [what: string, detail: RegExp, edit: (r: ReturnType<typeof request>) => void][] = [
  ["without CLONE_NEWPID", /^clone_flags: CLONE_NEWUSER and CLONE_NEWPID are required/, (r) => set(r, BB_REQ.clone_flags, r.u32(BB_REQ.clone_flags) & ~BB_CLONE_NEWPID)],
  ["without CLONE_NEWUSER", /^clone_flags: CLONE_NEWUSER and CLONE_NEWPID are required/, (r) => set(r, BB_REQ.clone_flags, r.u32(BB_REQ.clone_flags) & ~BB_CLONE_NEWUSER)],
  ["with a clone flag that is no namespace (CLONE_VM)", /^clone_flags: bits 0x100 /, (r) => set(r, BB_REQ.clone_flags, r.u32(BB_REQ.clone_flags) | 0x100)],
  ["an unknown flag", /^flags: unknown bits 0x80/, (r) => set(r, BB_REQ.flags, r.u32(BB_REQ.flags) | 0x80)],
  ["another ABI version", /^version: 1, the shim's is /, (r) => set(r, BB_REQ.version, 1)],
  ["a target fd of INT_MAX (dst + 1 overflows)", /^fds\[0\]\.dst: 2147483647, not in 0\.\.65535/, (r) => set(r, BB_FDMAP.dst, 0x7fffffff, fd0(r))],
  ["a negative target fd", /^fds\[0\]\.dst: -3/, (r) => set(r, BB_FDMAP.dst, -3, fd0(r))],
  ["a negative source fd", /^fds\[0\]\.src: -1/, (r) => set(r, BB_FDMAP.src, -1, fd0(r))],
  ["a source fd of INT_MAX", /^fds\[0\]\.src: 2147483647/, (r) => set(r, BB_FDMAP.src, 0x7fffffff, fd0(r))],
  [`more fds than the children's arrays (${BB_FDS_MAX})`, /^nfds: 257, at most 256/, (r) => set(r, BB_REQ.nfds, BB_FDS_MAX + 1)],
  ["fds past the end of the buffer", /^fds_off: 1 fds at /, (r) => set(r, BB_REQ.fds_off, r.bytes.length - 4)],
  [`more mounts than A's fd array (${BB_MOUNTS_MAX})`, /^nmounts: 1025, at most 1024/, (r) => set(r, BB_REQ.nmounts, BB_MOUNTS_MAX + 1)],
  ["mounts past the end of the buffer", /^mounts_off: /, (r) => set(r, BB_REQ.mounts_off, r.bytes.length - 8)],
  ["an unknown mount kind", /^mounts\[0\]\.kind: 12/, (r) => set(r, BB_MOUNT.kind, BB_M_READONLY + 1, mount0(r))],
  ["a first mount that is not the root", /^mounts\[0\]: the first mount must be the root/, (r) => set(r, BB_MOUNT.kind, BB_M_PROC, mount0(r))],
  ["a second root", /^mounts\[1\]\.dst: \/ is the root's/, (r) => set(r, BB_MOUNT.dst_off, r.u32(BB_MOUNT.dst_off, mount0(r)), mount1(r))],
  ["a lower layer with no overlay after it", /^mounts\[1\]: 1 lower layers not followed by their overlay/, (r) => {
    set(r, BB_MOUNT.kind, BB_M_LOWER, mount0(r));
    set(r, BB_MOUNT.src_off, r.u32(BB_MOUNT.dst_off, mount0(r)), mount0(r));
  }],
  ["an overlay counting more lower layers than precede it", /^mounts\[0\]\.aux: 2 lower layers, 0 before it/, (r) => {
    set(r, BB_MOUNT.kind, BB_M_OVERLAY, mount0(r));
    set(r, BB_MOUNT.aux, 2, mount0(r));
  }],
  ["file content past the end of the buffer", /^mounts\[1\]\.src_off\/size: 100 bytes at /, (r) => {
    set(r, BB_MOUNT.kind, BB_M_FILE, mount1(r));
    set(r, BB_MOUNT.src_off, r.bytes.length - 50, mount1(r));
    set(r, BB_MOUNT.size, 100, mount1(r));
  }],
  [`file content over ${BB_FILE_MAX} bytes`, /^mounts\[1\]\.src_off\/size: 16777217 bytes/, (r) => {
    set(r, BB_MOUNT.kind, BB_M_FILE, mount1(r));
    r.view.setBigUint64(mount1(r) + BB_MOUNT.size.offset, BigInt(BB_FILE_MAX + 1), true);
  }],
  ["a mount destination that is not absolute", /^mounts\[1\]\.dst: not absolute/, (r) => {
    r.bytes[r.u32(BB_MOUNT.dst_off, mount1(r))] = "x".charCodeAt(0);
  }],
  // The second op's destination ("/usr", the default view's first) rewritten in place, as long as it was.
  ...["//sr", "/./r", "/../", "/us/"].map((text): (typeof CASES)[number] => [`a mount destination "${text}", not normalised`, /^mounts\[1\]\.dst: not a normalised path/, (r) => {
    const at = r.u32(BB_MOUNT.dst_off, mount1(r));
    for (let k = 0; k < text.length; k++) r.bytes[at + k] = text.charCodeAt(k);
  }]),
  ["a mount destination outside the buffer", /^mounts\[0\]\.dst_off: no string at /, (r) => set(r, BB_MOUNT.dst_off, r.bytes.length, mount0(r))],
  ["an argv string outside the buffer", /^argv\[0\]: no string at /, (r) => r.view.setUint32(r.u32(BB_REQ.argv_off), r.bytes.length + 10, true)],
  ["no argv", /^argv_off\/argc: 0 strings/, (r) => set(r, BB_REQ.argc, 0)],
  ["a misaligned mount array", /^mounts_off: /, (r) => set(r, BB_REQ.mounts_off, mount0(r) + 4)],
  ["an rlimit the kernel does not have", /^rlimits\[0\]\.resource: 99/, (r) => set(r, BB_RLIMIT.resource, 99, rlimit0(r))],
  ["a filter longer than the kernel takes", /^bpf_(len|off): /, (r) => set(r, BB_REQ.bpf_len, 4097)],
  ["a setup timeout of 0", /^setup_timeout_ms: 0/, (r) => set(r, BB_REQ.setup_timeout_ms, 0)],
  ["a size field that is not the buffer's", /^size: /, (r) => set(r, BB_REQ.size, r.bytes.length + 8)],
  // --net proxy's sockets are bound on the sandbox's own lo, never the host's (docs/network.md).
  ["the proxy's sockets without a network namespace", /^flags: BB_F_NET_PROXY needs BB_CLONE_NEWNET/, (r) => {
    set(r, BB_REQ.flags, r.u32(BB_REQ.flags) | BB_F_NET_PROXY);
    set(r, BB_REQ.proxy_port, 3128);
    set(r, BB_REQ.clone_flags, r.u32(BB_REQ.clone_flags) & ~BB_CLONE_NEWNET);
  }],
  ["the proxy on port 53 (the DNS stub's)", /^proxy_port: 53, not a port other than 53/, (r) => {
    set(r, BB_REQ.flags, r.u32(BB_REQ.flags) | BB_F_NET_PROXY);
    set(r, BB_REQ.proxy_port, 53);
  }],
  ["a proxy port without the proxy", /^proxy_port: 3128 without BB_F_NET_PROXY/, (r) => set(r, BB_REQ.proxy_port, 3128)],
];

describe("the shim refuses a request", () => {
  for (const [what, detail, edit] of CASES) {
    test(what, async () => {
      const s = await refused(edit);
      expect(s.stage).toBe("request");
      expect(s.detail).toMatch(detail);
      expect(s.errnoName).toBe("EINVAL");
    });
  }
});
