/**
 * The one error type of comms. `code` says what kind of failure it was, so
 * a caller can tell an orderly close ("eof") or a slow peer ("timeout") from
 * a peer that broke the protocol.
 *
 * "timeout" and "argument" leave the channel usable (but for a send that
 * timed out half-way through a frame); every other code leaves it broken,
 * and later calls throw "broken" with the first error as `cause`.
 */
import { BunboxError } from "../errors.ts";

export type CommsErrorCode =
  /** A malformed frame: unknown tag, size over the limit or wrong for the type, fds that do not match. */
  | "protocol"
  /** A well-formed frame of another type than the one asked for. */
  | "type"
  /** The peer closed the channel (at a frame boundary or in the middle of one). */
  | "eof"
  /** No (complete) message within the time limit. */
  | "timeout"
  /** A system call failed (the message names it and the errno). */
  | "io"
  /** A bad argument to a send: out of range, too large, not serialisable. */
  | "argument"
  /** This side closed the channel. */
  | "closed"
  /** The channel broke earlier; `cause` is the error that broke it. */
  | "broken";

export class CommsError extends BunboxError {
  override readonly name = "CommsError";
  constructor(
    readonly code: CommsErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super("comms", message);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}
