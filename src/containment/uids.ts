/**
 * A kernel uid of its own for each sandbox bunbox starts as root (README.md
 * "Containment"). The kernel counts many budgets per user: pipe buffers,
 * RLIMIT_NPROC, inotify instances, message-queue bytes, pending signals. Two
 * sandboxes sharing one uid share them all, and a sandbox whose user
 * namespace root owns charges root's (csrc/contain.c makes the sandbox's uid
 * the owner).
 *
 * The ids come from a range (default 2113929216-2113994751, 0x7e000000 and
 * the 65535 after it: in the span systemd documents as unused, above the
 * container ranges and below 2^31), never one that /etc/passwd, /etc/group,
 * /etc/subuid or /etc/subgid names; the gid is the same number. Each is held
 * while its sandbox lives by an open-file-description lock on byte `uid` of
 * /run/bunbox/uids.lock: two bunbox processes (or two runs in one) never
 * hold the same one, and a bunbox that dies lets go of its ids with its fd.
 */
import { constants, lstatSync, mkdirSync, openSync, readFileSync } from "../native/fs.ts";
import { dirname } from "../posix-path.ts";
import { UsageError } from "../errors.ts";
import { describeErrno } from "../native/errno.ts";
import { lockRange } from "../native/sys.ts";
import { ContainmentError } from "./error.ts";

export interface UidRange {
  first: number;
  last: number;
}

export const DEFAULT_UID_RANGE: Readonly<UidRange> = Object.freeze({ first: 0x7e000000, last: 0x7e00ffff });
export const LOCK_DIR = "/run/bunbox";

const EAGAIN = 11;
const EACCES = 13;

/** "FIRST-LAST" (BUNBOX_UID_RANGE); errors name `subject`. */
export function parseUidRange(text: string, subject: string): UidRange {
  const m = /^(\d+)-(\d+)$/.exec(text.trim());
  return checkUidRange({ first: Number(m?.[1]), last: Number(m?.[2]) }, subject, `"${text}"`);
}

/** A range of kernel uids a sandbox may get: not 0, not the kernel's "no id" (2^32 - 1). */
export function checkUidRange(r: UidRange, subject: string, shown = `${r.first}-${r.last}`): UidRange {
  if (!Number.isSafeInteger(r.first) || !Number.isSafeInteger(r.last) || r.first < 1 || r.first > r.last || r.last > 0xfffffffe) {
    throw new UsageError(subject, `${shown} is not a uid range FIRST-LAST (1 <= FIRST <= LAST <= 4294967294)`);
  }
  return { first: r.first, last: r.last };
}

/** Every id the host's account files name: a sandbox must never be one of them. */
function namedIds(): Set<number> {
  const ids = new Set<number>();
  const lines = (path: string) => {
    try {
      return readFileSync(path, "utf8").split("\n");
    } catch {
      return [];
    }
  };
  for (const path of ["/etc/passwd", "/etc/group"]) {
    for (const line of lines(path)) {
      const id = line.split(":")[2];
      if (id && /^\d+$/.test(id)) ids.add(Number(id));
    }
  }
  return ids;
}

/** The [first, last] ranges /etc/subuid and /etc/subgid give to users. */
function subordinateRanges(): [number, number][] {
  const out: [number, number][] = [];
  for (const path of ["/etc/subuid", "/etc/subgid"]) {
    let text = "";
    try {
      text = readFileSync(path, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      const [, start, count] = line.split(":");
      if (start && count && /^\d+$/.test(start) && /^\d+$/.test(count)) out.push([Number(start), Number(start) + Number(count) - 1]);
    }
  }
  return out;
}

export interface HeldUid {
  /** The uid, and the gid: the same number. */
  readonly uid: number;
  /** Lets go of it: only once the sandbox's last process is gone. */
  release(): void;
}

export class UidAllocator {
  private named: Set<number> | undefined;
  private subordinate: [number, number][] = [];
  /** The lock file, open once: its description holds this allocator's locks. */
  private fd: number | undefined;
  /** The ids this allocator holds: a description's locks never conflict with each other. */
  private readonly held = new Set<number>();

  constructor(
    readonly range: UidRange = DEFAULT_UID_RANGE,
    private readonly lockDir = LOCK_DIR,
  ) {}

  private usable(id: number): boolean {
    if (!this.named) {
      this.named = namedIds();
      this.subordinate = subordinateRanges();
    }
    return !this.held.has(id) && !this.named.has(id) && !this.subordinate.some(([a, b]) => id >= a && id <= b);
  }

  /** The lock file, in a directory only root can write (anyone else could hold every id). */
  private lockFd(): number {
    if (this.fd !== undefined) return this.fd;
    try {
      // A minimal root filesystem (an initramfs) may have no /run.
      mkdirSync(dirname(this.lockDir), { recursive: true, mode: 0o755 });
      mkdirSync(this.lockDir, { mode: 0o700 });
    } catch {
      // exists (checked below) or cannot be made (the open fails below)
    }
    const path = `${this.lockDir}/uids.lock`;
    try {
      const st = lstatSync(this.lockDir);
      if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0) {
        throw new ContainmentError(this.lockDir, 0, `${this.lockDir} must be a directory of root's that no one else can write (it holds the sandbox uid locks)`, "uid");
      }
      // Bun opens every file close-on-exec.
      this.fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    } catch (e) {
      if (e instanceof ContainmentError) throw e;
      const errno = -((e as { errno?: number }).errno ?? -5);
      throw new ContainmentError(path, errno, `cannot open ${path} to take a uid for the sandbox: ${describeErrno(errno)}`, "uid");
    }
    return this.fd;
  }

  /** A uid no other sandbox holds; throws ContainmentError if none is left. */
  allocate(): HeldUid {
    const fd = this.lockFd();
    const size = this.range.last - this.range.first + 1;
    // From a random place: bunbox processes starting together rarely try the same ids.
    const start = Math.floor(Math.random() * size);
    for (let i = 0; i < size; i++) {
      const uid = this.range.first + ((start + i) % size);
      if (!this.usable(uid)) continue;
      const r = lockRange(fd, uid, 1);
      if (r === 0) {
        this.held.add(uid);
        return { uid, release: () => this.release(uid) };
      }
      if (-r !== EAGAIN && -r !== EACCES) {
        throw new ContainmentError(`${this.lockDir}/uids.lock`, -r, `locking uid ${uid} in ${this.lockDir}/uids.lock: ${describeErrno(-r)}`, "uid");
      }
    }
    throw new ContainmentError(
      `${this.lockDir}/uids.lock`,
      0,
      `every uid of the range ${this.range.first}-${this.range.last} is held by a running sandbox or named in the host's account files: ` +
        "set a larger range (BUNBOX_UID_RANGE=FIRST-LAST)",
      "uid",
    );
  }

  private release(uid: number): void {
    if (!this.held.delete(uid) || this.fd === undefined) return;
    lockRange(this.fd, uid, 1, true);
  }
}
