/**
 * The JavaScript side of the reactor thread (csrc/monitor.c): fds to watch,
 * each with a handler that runs on the JavaScript thread when the fd is ready.
 *
 * Watches are one-shot: after a handler runs, the fd is quiet until
 * `rearm()`. The reactor thread reports through a threadsafe JSCallback,
 * which does not keep the event loop alive; a ref'd timer does, while any
 * watch is open, so a process waiting for a sandbox does not exit under it.
 */
import { JSCallback } from "bun:ffi";
import { BunboxError } from "../errors.ts";
import { describeErrno } from "./errno.ts";
import { shim } from "./library.ts";
import { type Notification, notifPop } from "./sys.ts";

export const EPOLLIN = 0x001;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;

export interface Watch {
  /** 0, or -errno if the fd could not be watched again. */
  rearm(): number;
  close(): void;
}

const handlers = new Map<number, (events: number) => void>();
/** Tokens run 1..TOKEN_LIMIT-1 (small integers for the u32 callback), then wrap. */
const TOKEN_LIMIT = 0x80000000;
let nextToken = 1;
let callback: JSCallback | undefined;
let keepAlive: ReturnType<typeof setInterval> | undefined;

function start(): void {
  if (callback) return;
  callback = new JSCallback(
    (token: number, events: number) => {
      const h = handlers.get(token);
      if (h) h(events);
    },
    { args: ["u32", "u32"], returns: "void", threadsafe: true },
  );
  const r = shim().bb_reactor_start(callback);
  if (r < 0) {
    callback.close();
    callback = undefined;
    throw new BunboxError("monitor", `cannot start the reactor thread: ${describeErrno(-r)}`);
  }
}

function updateKeepAlive(): void {
  if (handlers.size > 0 && !keepAlive) keepAlive = setInterval(() => {}, 1 << 30);
  else if (handlers.size === 0 && keepAlive) {
    clearInterval(keepAlive);
    keepAlive = undefined;
  }
}

/**
 * The next token no open watch holds. A watch may stay open while 2^31 others
 * come and go (a long run's pidfd): after the wrap, its token must not be
 * handed out again, or the newcomer's handler would replace its own.
 */
function freeToken(): number {
  for (;;) {
    const token = nextToken;
    nextToken = nextToken + 1 >= TOKEN_LIMIT ? 1 : nextToken + 1;
    if (!handlers.has(token)) return token;
  }
}

/** Test hook: where the token counter stands, to reach the wrap without 2^31 watches. */
export function _setNextToken(token: number): void {
  nextToken = token;
}

/** Watches `fd` for `events` (EPOLLIN; HUP and ERR always come). */
export function watch(fd: number, events: number, handler: (events: number) => void): Watch {
  start();
  const token = freeToken();
  handlers.set(token, handler);
  const r = shim().bb_reactor_watch(fd, token, events, 0);
  if (r < 0) {
    handlers.delete(token);
    throw new BunboxError("monitor", `cannot watch fd ${fd}: ${describeErrno(-r)}`);
  }
  updateKeepAlive();
  let open = true;
  return {
    rearm() {
      return open ? shim().bb_reactor_watch(fd, token, events, 1) : 0;
    },
    close() {
      if (!open) return;
      open = false;
      shim().bb_reactor_watch(fd, token, 0, 2);
      handlers.delete(token);
      updateKeepAlive();
    },
  };
}

/** A seccomp listener's watch: the reactor thread receives its notifications; take them in order. */
export interface ListenerWatch {
  /** The next notification received, if any (the handler runs after each arrives). */
  take(): Notification | undefined;
  close(): void;
}

/**
 * Watches seccomp listener `fd`: the reactor thread takes each notification
 * as soon as it is there (csrc/monitor.c says why) and re-arms the watch
 * itself; `handler` runs after, on the JavaScript thread, and takes what
 * arrived. HUP comes as for any watch.
 */
export function watchListener(fd: number, handler: (events: number) => void): ListenerWatch {
  start();
  const token = freeToken();
  handlers.set(token, handler);
  const r = shim().bb_reactor_watch(fd, token, EPOLLIN, 3);
  if (r < 0) {
    handlers.delete(token);
    throw new BunboxError("monitor", `cannot watch the seccomp listener ${fd}: ${describeErrno(-r)}`);
  }
  updateKeepAlive();
  let open = true;
  return {
    take: () => (open ? notifPop(token) : undefined),
    close() {
      if (!open) return;
      open = false;
      shim().bb_reactor_watch(fd, token, 0, 2);
      handlers.delete(token);
      updateKeepAlive();
    },
  };
}

/** Number of open watches (tests check nothing leaks). */
export function openWatches(): number {
  return handlers.size;
}
