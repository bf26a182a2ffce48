/**
 * SharedBuffer (Sandbox2's Buffer): memory shared with a sandboxee through a
 * memfd mapped MAP_SHARED on both sides. Send its fd over Comms (sendFd);
 * the sandboxee maps it with bunbox_buffer_from_fd (C) or
 * ClientBuffer.fromFd (client.ts), and both see each other's writes at once.
 * The bytes are no copy: `bytes` is a view of the mapping.
 *
 *   const buf = SharedBuffer.create(1 << 20);
 *   buf.bytes.set(data);
 *   await comms.sendFd(buf.fd);
 *
 * Why sealed: if the file under a mapping shrinks, touching the pages past
 * its new end raises SIGBUS, and SIGBUS in bunbox kills bunbox, not the
 * sandboxee. So create() seals its memfds against any resize, and fromFd()
 * maps only a file that cannot shrink: a memfd already sealed with
 * F_SEAL_SHRINK, or one that still allows sealing (it gets F_SEAL_SHRINK
 * here, which binds the sender too). Other fds are refused.
 *
 * After close() the mapping is gone and `bytes` (and every view of its
 * ArrayBuffer) is detached, so a late access reads undefined instead of
 * faulting. A buffer dropped without close() is unmapped when its memory is
 * garbage-collected, and its fd closed when the SharedBuffer is.
 */
import { closeFd } from "../native/sys.ts";
import { describeErrno } from "../native/errno.ts";
import { bufferCheck, bufferCreate, bufferMap, bufferUnmap } from "../native/comms.ts";
import { CommsError } from "./error.ts";

const EBADFD = 77;
const EINVAL = 22;
const EPERM = 1;

interface Region {
  address: number;
  size: number;
}

const unmapOnCollect = new FinalizationRegistry<Region>((r) => bufferUnmap(r.address, r.size));
const closeOnCollect = new FinalizationRegistry<number>((fd) => closeFd(fd));

export class SharedBuffer {
  private region: Region | undefined;
  private owned: number;

  private constructor(
    /** The memfd; send it to the peer with Comms.sendFd. */
    readonly fd: number,
    readonly size: number,
    /** The shared memory itself (empty after close()). */
    readonly bytes: Uint8Array,
    address: number,
  ) {
    this.owned = fd;
    this.region = { address, size };
    unmapOnCollect.register(bytes.buffer, this.region, this.region);
    closeOnCollect.register(this, fd, this);
  }

  /** A new zero-filled buffer of `size` bytes (a memfd sealed against resizing). */
  static create(size: number, name = "bunbox-buffer"): SharedBuffer {
    if (!Number.isSafeInteger(size) || size < 1) {
      throw new CommsError("argument", `SharedBuffer.create: size must be a whole number of bytes >= 1, not ${size}`);
    }
    const fd = bufferCreate(name, size);
    if (fd < 0) throw new CommsError("io", `SharedBuffer.create: memfd_create of ${size} bytes failed: ${describeErrno(-fd)}`);
    return SharedBuffer.map(fd, size, "SharedBuffer.create");
  }

  /**
   * Maps a memfd from elsewhere (a peer's, via recvFd). Takes ownership of
   * `fd`: close() closes it, and so does a refusal. `maxSize` bounds what a
   * peer can make this side map.
   */
  static fromFd(fd: number, options: { maxSize?: number } = {}): SharedBuffer {
    const what = "SharedBuffer.fromFd";
    if (!Number.isInteger(fd) || fd < 0) throw new CommsError("argument", `${what}: bad fd ${fd}`);
    const size = bufferCheck(fd);
    if (size < 0) {
      closeFd(fd);
      const e = -size;
      const why =
        e === EBADFD ? "it is not a regular file"
        : e === EINVAL ? "it does not support seals (not a memfd); create it with memfd_create(MFD_ALLOW_SEALING)"
        : e === EPERM ? "it can shrink and its seals are closed (F_SEAL_SEAL without F_SEAL_SHRINK)"
        : describeErrno(e);
      throw new CommsError(
        "argument",
        `${what}: fd ${fd} cannot be shared safely: ${why} (a mapping whose file shrinks faults with SIGBUS)`,
      );
    }
    if (size === 0) {
      closeFd(fd);
      throw new CommsError("argument", `${what}: fd ${fd} is empty; a buffer has at least 1 byte`);
    }
    if (options.maxSize !== undefined && size > options.maxSize) {
      closeFd(fd);
      throw new CommsError("argument", `${what}: fd ${fd} is ${size} bytes, over maxSize ${options.maxSize}`);
    }
    return SharedBuffer.map(fd, size, what);
  }

  private static map(fd: number, size: number, what: string): SharedBuffer {
    const m = bufferMap(fd, size);
    if (typeof m === "number") {
      closeFd(fd);
      throw new CommsError("io", `${what}: mmap of ${size} bytes failed: ${describeErrno(-m)}`);
    }
    return new SharedBuffer(fd, size, m.bytes, m.address);
  }

  get isClosed(): boolean {
    return this.region === undefined;
  }

  /** Unmaps (detaching `bytes`) and closes the fd. */
  close(): void {
    const region = this.region;
    if (!region) return;
    this.region = undefined;
    unmapOnCollect.unregister(region);
    closeOnCollect.unregister(this);
    // Detach first: from here on no view can reach the pages we unmap.
    (this.bytes.buffer as ArrayBuffer).transfer(0);
    bufferUnmap(region.address, region.size);
    closeFd(this.owned);
    this.owned = -1;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
