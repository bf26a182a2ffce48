/**
 * An unknown option that is another sandbox tool's spelling (bwrap, docker,
 * firejail, nsjail) gets the bunbox one, with the values given where they
 * carry over (`--ro-bind /a /b` → `--ro /a:/b`); a near miss of a bunbox
 * option gets "did you mean". Loaded only when an option is unknown.
 * A hint names an option only if the table (src/cli/options.ts) has it.
 */
import type { Options } from "./args.ts";
import { nearest } from "../near.ts";

interface Spelling {
  tool: string;
  /** Its spellings: "--ro-bind", "-e"; a value may follow with "=". */
  names: string[];
  /** Values it takes after it (bwrap's --ro-bind SRC DST: 2); ignored when one came with "=". */
  takes: number;
  /** The bunbox option the advice needs (none: advice only). */
  needs?: string;
  /** The advice, from the values given (placeholders where missing). */
  advice(v: string[]): string;
}

const v0 = (v: string[], ph: string) => v[0] ?? ph;
const pair = (v: string[]) => `${v0(v, "SRC")}:${v[1] ?? "DST"}`;
/** docker's SRC:DST[:ro|rw|z…], firejail's and nsjail's SRC[:DST]. */
function volume(v: string[]): string {
  const spec = v0(v, "SRC:DST");
  const parts = spec.split(":");
  const ro = parts.length > 2 && parts.slice(2).join(",").split(",").includes("ro");
  return `${ro ? "--ro" : "--rw"} ${parts.slice(0, 2).join(":")}`;
}
const ALWAYS = "always so in bunbox: drop it";

const SPELLINGS: Spelling[] = [
  // bubblewrap
  { tool: "bwrap", names: ["--ro-bind"], takes: 2, needs: "ro", advice: (v) => `--ro ${pair(v)}` },
  { tool: "bwrap", names: ["--ro-bind-try"], takes: 2, needs: "ro-try", advice: (v) => `--ro-try ${pair(v)}` },
  { tool: "bwrap", names: ["--bind", "--dev-bind"], takes: 2, needs: "rw", advice: (v) => `--rw ${pair(v)}` },
  { tool: "bwrap", names: ["--dev-bind-try"], takes: 2, needs: "rw-try", advice: (v) => `--rw-try ${pair(v)}` },
  { tool: "bwrap", names: ["--setenv"], takes: 2, needs: "env", advice: (v) => `--env ${v0(v, "NAME")}=${v[1] ?? "VALUE"}` },
  { tool: "bwrap", names: ["--clearenv"], takes: 0, advice: () => "the environment starts empty but for PATH, HOME and (with a terminal) TERM; --unsetenv NAME removes one" },
  { tool: "bwrap", names: ["--cap-add", "--cap-drop"], takes: 1, advice: () => "every capability is dropped in bunbox, and none can be added" },
  { tool: "bwrap", names: ["--seccomp", "--add-seccomp-fd"], takes: 1, needs: "policy", advice: () => "--policy FILE (JSON or .ts; `bunbox policy explain FILE` shows its filter)" },
  { tool: "bwrap", names: ["--as-pid-1"], takes: 0, advice: () => "the sandboxee is pid 2 under bunbox's init, which forwards signals to it" },
  { tool: "bwrap", names: ["--userns", "--userns2", "--pidns"], takes: 1, advice: () => "bunbox always makes new namespaces" },
  { tool: "bwrap", names: ["--info-fd", "--json-status-fd"], takes: 1, needs: "result-file", advice: () => "--json (the Result on stderr) or --result-file FILE" },
  { tool: "bwrap", names: ["--share-ipc", "--share-uts", "--share-pid", "--share-cgroup"], takes: 0, needs: "share-net", advice: () => "--share-net is the one namespace bunbox shares" },
  // docker
  { tool: "docker", names: ["--volume"], takes: 1, needs: "rw", advice: volume },
  { tool: "docker", names: ["--mount"], takes: 1, needs: "rw", advice: (v) => {
    const kv = Object.fromEntries((v[0] ?? "").split(",").map((p) => [p.split("=")[0], p.split("=").slice(1).join("=") || "true"]));
    const src = kv.source ?? kv.src ?? "SRC";
    const dst = kv.target ?? kv.destination ?? kv.dst ?? "DST";
    return kv.type === "tmpfs" ? `--tmpfs ${dst}` : `${kv.readonly === "true" || kv.ro === "true" ? "--ro" : "--rw"} ${src}:${dst}`;
  } },
  { tool: "docker", names: ["-e"], takes: 1, needs: "env", advice: (v) => `--env ${v0(v, "NAME=VALUE")}` },
  { tool: "docker", names: ["-w", "--workdir"], takes: 1, needs: "cwd", advice: (v) => `--cwd ${v0(v, "DIR")}` },
  { tool: "docker", names: ["--network"], takes: 1, needs: "net", advice: (v) => (v[0] === "host" ? "--net host" : "--net none (a network of its own with lo; nothing outside)") },
  { tool: "docker", names: ["-u", "--user"], takes: 1, needs: "uid", advice: (v) => {
    const [u, g] = v0(v, "UID:GID").split(":");
    return `--uid ${u}${g ? ` --gid ${g}` : ""}`;
  } },
  { tool: "docker", names: ["--rm"], takes: 0, advice: () => "every run is fresh and leaves nothing behind: drop it" },
  { tool: "docker", names: ["-i", "-t", "-it", "-ti", "--interactive"], takes: 0, needs: "tty", advice: () => "the command gets a terminal of its own when stdin, stdout or stderr is one; --tty forces one" },
  { tool: "docker", names: ["-m", "--memory"], takes: 1, needs: "memory-limit", advice: (v) => `--memory-limit ${v0(v, "SIZE")}` },
  { tool: "docker", names: ["--pids-limit"], takes: 1, needs: "max-procs", advice: (v) => `--max-procs ${v0(v, "N")}` },
  { tool: "docker", names: ["--privileged"], takes: 0, advice: () => "there is no privileged mode" },
  { tool: "docker", names: ["--entrypoint"], takes: 1, advice: () => "the command after -- is what runs" },
  { tool: "docker", names: ["--security-opt"], takes: 1, needs: "policy", advice: () => "--policy FILE for the syscall policy" },
  { tool: "docker", names: ["--stop-timeout"], takes: 1, needs: "time-limit", advice: (v) => `--time-limit ${v0(v, "SECONDS")}` },
  // firejail
  { tool: "firejail", names: ["--whitelist", "--read-only"], takes: 1, needs: "ro", advice: (v) => (v[0]?.startsWith("/") ? `--ro ${v[0]}` : "the sandbox's root is read-only always; --ro/--rw/--tmpfs add what else it sees") },
  { tool: "firejail", names: ["--read-write"], takes: 1, needs: "rw", advice: (v) => `--rw ${v0(v, "PATH")}` },
  { tool: "firejail", names: ["--blacklist"], takes: 1, advice: () => "nothing of the host is visible unless bound: leave it out" },
  { tool: "firejail", names: ["--private"], takes: 0, advice: () => "nothing of your home is visible by default; --rw DIR binds one" },
  { tool: "firejail", names: ["--rmenv"], takes: 1, needs: "unsetenv", advice: (v) => `--unsetenv ${v0(v, "NAME")}` },
  { tool: "firejail", names: ["--timeout"], takes: 1, needs: "time-limit", advice: () => "--time-limit SECONDS" },
  { tool: "firejail", names: ["--rlimit-as"], takes: 1, needs: "memory-limit", advice: (v) => `--memory-limit ${v0(v, "SIZE")}` },
  { tool: "firejail", names: ["--rlimit-nproc"], takes: 1, needs: "max-procs", advice: (v) => `--max-procs ${v0(v, "N")}` },
  { tool: "firejail", names: ["--rlimit-nofile"], takes: 1, needs: "max-files", advice: (v) => `--max-files ${v0(v, "N")}` },
  { tool: "firejail", names: ["--rlimit-fsize"], takes: 1, needs: "max-file-size", advice: (v) => `--max-file-size ${v0(v, "SIZE")}` },
  { tool: "firejail", names: ["--rlimit-cpu"], takes: 1, needs: "cpu-limit", advice: (v) => `--cpu-limit ${v0(v, "SECONDS")}` },
  { tool: "firejail", names: ["--caps.drop", "--nonewprivs", "--noroot", "--nogroups", "--private-tmp", "--private-dev", "--seccomp"], takes: 0, advice: () => ALWAYS },
  // nsjail
  { tool: "nsjail", names: ["-R", "--bindmount_ro"], takes: 1, needs: "ro", advice: (v) => `--ro ${v0(v, "SRC:DST")}` },
  { tool: "nsjail", names: ["-B", "--bindmount"], takes: 1, needs: "rw", advice: (v) => `--rw ${v0(v, "SRC:DST")}` },
  { tool: "nsjail", names: ["-T", "--tmpfsmount"], takes: 1, needs: "tmpfs", advice: (v) => `--tmpfs ${v0(v, "DST")}` },
  { tool: "nsjail", names: ["-E"], takes: 1, needs: "env", advice: (v) => `--env ${v0(v, "NAME=VALUE")}` },
  { tool: "nsjail", names: ["-D"], takes: 1, needs: "cwd", advice: (v) => `--cwd ${v0(v, "DIR")}` },
  { tool: "nsjail", names: ["--time_limit"], takes: 1, needs: "time-limit", advice: (v) => `--time-limit ${v0(v, "SECONDS")}` },
  { tool: "nsjail", names: ["-N", "--disable_clone_newnet"], takes: 0, needs: "share-net", advice: () => "--share-net (or --net host)" },
  { tool: "nsjail", names: ["-C", "--config", "-P", "--seccomp_policy"], takes: 1, needs: "policy", advice: () => "--policy FILE" },
  { tool: "nsjail", names: ["--keep_env"], takes: 0, needs: "keep-env", advice: () => "--keep-env NAME for each variable to pass" },
];

/** The advice for `arg` (with `rest` after it), or undefined. */
export function hintFor(arg: string, rest: readonly string[], table: Options): string | undefined {
  const eq = arg.indexOf("=");
  const name = eq > 0 ? arg.slice(0, eq) : arg;
  const s = SPELLINGS.find((x) => x.names.includes(name) && (x.needs === undefined || Object.hasOwn(table, x.needs)));
  if (s) {
    const values = eq > 0 ? [arg.slice(eq + 1)] : rest.slice(0, s.takes).filter((x) => !x.startsWith("-"));
    return `${s.tool}'s spelling; in bunbox: ${s.advice(values)}`;
  }
  if (!name.startsWith("--")) return undefined;
  const known = Object.entries(table).flatMap(([k, d]) => (d.type === "positional" ? [] : [k, ...(d.aliases ?? [])]));
  const near = nearest(name.slice(2), known, 2);
  return near.length ? `did you mean ${near.map((n) => `--${n}`).join(" or ")}?` : undefined;
}
