/**
 * The caller's terminal and the relay to a sandboxee's own pty
 * (csrc/relay.c): thin wrappers, each returning -errno rather than throwing.
 */
import { ptr } from "bun:ffi";
import { shim } from "./library.ts";

/** Whether fd is a terminal. */
export function isTerminal(fd: number): boolean {
  return shim().bb_isatty(fd) === 1;
}

/** rows << 16 | columns of the terminal at fd, or -errno. */
export function terminalSize(fd: number): number {
  return shim().bb_tty_size(fd);
}

/** Gives `master` the size of the terminal at `from` (the sandboxee gets SIGWINCH). */
export function copyTerminalSize(from: number, master: number): number {
  return shim().bb_tty_copy_size(from, master);
}

/** Whether bunbox's process group is the foreground one of the terminal at fd (false: in the background, or not a terminal). */
export function inForeground(fd: number): boolean {
  return shim().bb_tty_foreground(fd) === 1;
}

/** Ends the process with `code` at once, skipping the atexit hooks (Bun's restore of the terminal modes it saw at start among them). */
export function exitNow(code: number): never {
  shim().bb_exit_now(code);
  throw new Error("unreachable: _exit returned");
}

/** The saved modes of a terminal bunbox put in raw mode. */
export interface SavedModes {
  fd: number;
  state: Uint8Array;
}

/** Saves the modes of the terminal at fd and makes it raw; the saved modes, or -errno. */
export function makeRaw(fd: number): SavedModes | number {
  const state = new Uint8Array(shim().bb_tty_state_size());
  const r = shim().bb_tty_raw(fd, ptr(state));
  return r < 0 ? r : { fd, state };
}

/** Puts the saved modes back; 0 or -errno. */
export function restoreModes(saved: SavedModes): number {
  return shim().bb_tty_restore(saved.fd, ptr(saved.state));
}

/** A relay thread's fds: readable once it ended; written to, to stop it. */
export interface RelayFds {
  done: number;
  stop: number;
}

/** The caller's input is not a terminal: its EOF becomes the pty's EOF character. */
export const RELAY_EOF_TO_VEOF = 0x1;

/** Starts relaying between `master` and the caller's `input` (-1: none) and `output`. */
export function startRelay(master: number, input: number, output: number, flags: number): RelayFds | number {
  const fds = new Int32Array(2);
  const r = shim().bb_relay_start(master, input, output, flags, ptr(fds));
  return r < 0 ? r : { done: fds[0]!, stop: fds[1]! };
}
