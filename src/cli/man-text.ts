/**
 * The man page's prose (src/cli/complete.ts renders it, with the options
 * from the table). Kept short: README.md has the whole story.
 * Paragraphs are separated by a blank line.
 */

export interface ManSection {
  title: string;
  text: string;
}

export function manSections(): ManSection[] {
  return [
    {
      title: "description",
      text: `bunbox runs a Linux program in a sandbox: the program sees only the files, syscalls, network and resources a policy grants, and bunbox says exactly how it ended: its exit code, the signal, the limit it hit, or the forbidden syscall it tried.

Every namespace is unshared (user, pid, mount, network, uts, ipc, cgroup); the root is a read-only tmpfs holding only what the policy maps; no capabilities, no_new_privs, rlimits, and a seccomp-BPF filter compiled from the policy. The sandboxee is pid 2 under bunbox's init, in a session of its own; the sandbox dies with bunbox (--die-with-parent is always on). Its network namespace is its own, with lo up and nothing else (--net none; --share-net or --net host gives the host's). Its environment holds PATH, HOME (the working directory when one is given, else /tmp) and, when it has a terminal, TERM.`,
    },
    {
      title: "terminals",
      text: `When stdin, stdout or stderr is a terminal, the sandboxee gets a pseudo-terminal of its own from a devpts private to the sandbox, as its controlling terminal, on those fds: job control, /dev/tty, stty and full-screen programs work, and the caller's terminal never enters the sandbox. bunbox relays between the two, forwards window-size changes, and keeps the caller's terminal in raw mode while relaying its input, restoring its modes when the run ends, however it ends. --tty forces a terminal; --no-tty passes bunbox's own fds instead (a relaxation). With a terminal on stdin there is no wall-time limit unless --time-limit gives one; otherwise it is 120 seconds.`,
    },
    {
      title: "signals",
      text: `SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGCONT sent to bunbox are forwarded to the sandboxee's process group; window-size changes reach it as SIGWINCH through its terminal. A command killed by SIGPIPE (its reader went away: yes | head) ends without a message unless -v.`,
    },
    {
      title: "exit status",
      text: `The command's own exit code when it exited; 128+N when it was killed by signal N; 124 at the wall-time limit; 125 when the sandbox could not be set up or bunbox failed (the message names the stage and path); 126 when the command is not executable; 127 when it was not found in the sandbox; 159 on a policy violation (128+SIGSYS); 2 for bad usage or an invalid policy (the message names the option or field).`,
    },
    {
      title: "environment",
      text: `NO_COLOR (set and not empty) or TERM=dumb: no colours in --help. BUNBOX_DEBUG=1: an internal error shows where it happened. BUNBOX_NOTIFY=off: violations kill the process (SIGSYS) instead of going through seccomp user notification (a test and debug knob). BUNBOX_SHIM: the native shim to load instead of the embedded one (for packagers).`,
    },
    {
      title: "see also",
      text: `bwrap(1), nsjail(1), firejail(1); README.md in bunbox's sources, with a table for those coming from bwrap and docker.`,
    },
  ];
}
