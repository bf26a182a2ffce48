/**
 * Cuts the byte stream of a comms socket into frames (wire.ts), for the host
 * (channel.ts, non-blocking) and the sandboxee client (client.ts, blocking):
 * both hand it a Transport whose recv is one recvmsg.
 *
 * Reads are greedy: one recvmsg takes whatever is queued, up to a 64 KiB
 * buffer, so a burst of small frames costs one system call. A frame larger
 * than the buffer is read straight into its own payload array, allocated
 * once, after the header passed the size limit: every byte is copied at most
 * once more, nothing grows quadratically.
 *
 * Which frame owns the fds a recvmsg returns. The kernel attaches SCM_RIGHTS
 * fds to the first skb of the sendmsg that carried them, and a stream
 * recvmsg stops right after it has taken an skb's fds (net/unix/af_unix.c,
 * unix_stream_read_generic), so they belong to the last skb that recvmsg
 * touched. A sender writes a frame's header at the start of the sendmsg
 * that carries its fds; so the fds belong to the last frame whose header
 * begins within the bytes of that recvmsg. A frame that ends before those
 * bytes end is not the owner; a recvmsg whose bytes hold no frame start
 * brought fds in the middle of a frame: a protocol error. (test/comms/
 * comms.test.ts pins the kernel side: FD frames queued between other frames,
 * all read by one greedy reader, each keep their own fds.)
 *
 * Offsets are counted over the whole stream (safe integers: 8 PiB).
 */
import { describeErrno } from "../native/errno.ts";
import { CommsError } from "./error.ts";
import { HEADER_SIZE, MAX_FDS, type RawFrame, TAG, headerError, tagName } from "./wire.ts";

const BUFFER_SIZE = 64 * 1024;
const EAGAIN = 11;

/** One recvmsg at a time, for the reader. */
export interface Transport {
  /** recvmsg into `into` without blocking: bytes (0: EOF) or -errno. */
  recv(into: Uint8Array): number;
  /** The fds the last recv returned (installed O_CLOEXEC). */
  readonly received: number[];
  /** The last recv lost fds (control data truncated, or more than it takes). */
  readonly truncated: boolean;
  closeFd(fd: number): void;
}

interface FdChunk {
  /** Stream offsets of the bytes that came with these fds. */
  start: number;
  end: number;
  fds: number[];
}

interface LargeFrame {
  tag: number;
  /** Stream offset of its header. */
  at: number;
  body: Uint8Array;
  have: number;
}

function protocol(message: string): CommsError {
  return new CommsError("protocol", message);
}

export class FrameReader {
  private readonly buf = new Uint8Array(BUFFER_SIZE);
  private readonly view = new DataView(this.buf.buffer);
  /** Unparsed bytes are buf[start, end). */
  private start = 0;
  private end = 0;
  /** Stream offset of buf[start]. */
  private pos = 0;
  /** Stream offset just past the last byte received. */
  private received = 0;
  private large: LargeFrame | undefined;
  /** fds received and not yet given to a frame, oldest first. */
  private chunks: FdChunk[] = [];

  constructor(
    private readonly io: Transport,
    readonly maxMessageSize: number,
  ) {}

  /**
   * The next complete frame, or null when the socket has nothing more for
   * now (wait for readability and call again). Throws CommsError: "protocol"
   * for a malformed stream, "eof" when the peer closed at a frame boundary,
   * "io" when recvmsg failed. After a throw the reader is done: discard() it.
   */
  next(): RawFrame | null {
    for (;;) {
      const large = this.large;
      if (large) {
        if (large.have === large.body.length) {
          this.large = undefined;
          this.pos = large.at + HEADER_SIZE + large.body.length;
          return this.finish(large.tag, large.at, large.body);
        }
        const n = this.read(large.body.subarray(large.have));
        if (n === 0) return null;
        large.have += n;
        continue;
      }
      const avail = this.end - this.start;
      let need = HEADER_SIZE;
      if (avail >= HEADER_SIZE) {
        const tag = this.view.getUint32(this.start, true);
        const length = this.view.getUint32(this.start + 4, true);
        const err = headerError(tag, length, this.maxMessageSize);
        if (err) throw protocol(err);
        need = HEADER_SIZE + length;
        if (avail >= need) {
          const body = this.buf.slice(this.start + HEADER_SIZE, this.start + need);
          const at = this.pos;
          this.start += need;
          this.pos += need;
          if (this.start === this.end) this.start = this.end = 0;
          return this.finish(tag, at, body);
        }
        if (need > this.buf.length) {
          const body = new Uint8Array(length);
          body.set(this.buf.subarray(this.start + HEADER_SIZE, this.end));
          this.large = { tag, at: this.pos, body, have: avail - HEADER_SIZE };
          this.start = this.end = 0;
          continue;
        }
      }
      if (this.start + need > this.buf.length) {
        this.buf.copyWithin(0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      }
      const n = this.read(this.buf.subarray(this.end));
      if (n === 0) return null;
      this.end += n;
    }
  }

  /** Bytes of an unfinished frame, for timeout messages ("" when none). */
  progress(): string {
    if (this.large) {
      return `${this.large.have} of ${this.large.body.length} payload bytes of a ${tagName(this.large.tag)} frame arrived`;
    }
    const avail = this.end - this.start;
    if (avail === 0) return "";
    if (avail < HEADER_SIZE) return `${avail} of ${HEADER_SIZE} header bytes arrived`;
    const length = this.view.getUint32(this.start + 4, true);
    return `${avail - HEADER_SIZE} of ${length} payload bytes of a ${tagName(this.view.getUint32(this.start, true))} frame arrived`;
  }

  /** Closes fds not yet given to a frame and drops buffered bytes. */
  discard(): void {
    for (const c of this.chunks) for (const fd of c.fds) this.io.closeFd(fd);
    this.chunks = [];
    this.large = undefined;
    this.start = this.end = 0;
  }

  /** One recvmsg: bytes read, 0 when none are there now. Throws on EOF and errors. */
  private read(into: Uint8Array): number {
    const n = this.io.recv(into);
    if (n === -EAGAIN) return 0;
    if (n < 0) throw new CommsError("io", `recvmsg on the comms socket failed: ${describeErrno(-n)}`);
    const fds = this.io.received;
    if (fds.length > 0) this.chunks.push({ start: this.received, end: this.received + n, fds });
    if (this.io.truncated) {
      throw protocol(`the peer sent more fds in one message than the ${MAX_FDS} an FD frame may carry`);
    }
    if (n === 0) throw this.eof();
    this.received += n;
    return n;
  }

  private eof(): CommsError {
    const progress = this.progress();
    if (progress === "") return new CommsError("eof", "the peer closed the channel");
    return protocol(`the peer closed the channel in the middle of a frame (${progress})`);
  }

  /** The frame [at, at + 8 + body) is complete: give it its fds and check them. */
  private finish(tag: number, at: number, body: Uint8Array): RawFrame {
    const fds = this.claim(at, at + HEADER_SIZE + body.length);
    const drop = (message: string) => {
      for (const fd of fds) this.io.closeFd(fd);
      return protocol(message);
    };
    if (tag === TAG.FD) {
      const count = new DataView(body.buffer, body.byteOffset, 4).getUint32(0, true);
      if (count < 1 || count > MAX_FDS) throw drop(`FD frame announces ${count} fds (an FD frame carries 1 to ${MAX_FDS})`);
      if (fds.length !== count) throw drop(`FD frame announces ${count} fd(s) but ${fds.length} arrived with it`);
    } else if (fds.length > 0) {
      throw drop(`${fds.length} fd(s) arrived with a ${tagName(tag)} frame (only FD frames carry fds)`);
    }
    return { tag, body, fds };
  }

  /** The fds owned by the frame [at, end) (see the top of this file). */
  private claim(at: number, end: number): number[] {
    const c = this.chunks[0];
    if (!c || c.start >= end) return [];
    if (c.start > at) {
      // The recvmsg began inside this frame: some frame must begin in it too.
      if (c.end <= end) throw protocol(`${c.fds.length} fd(s) arrived in the middle of a frame`);
      return [];
    }
    if (c.end <= at) throw protocol(`${c.fds.length} fd(s) arrived in the middle of a frame`);
    // A later frame that also begins in these bytes owns the fds.
    if (end < c.end) return [];
    this.chunks.shift();
    return c.fds;
  }
}
