/**
 * --help, the shell completions and the man page, all from the one option
 * table (src/cli/options.ts): an option added there shows up in each.
 * Colours in --help only on a terminal, and never with NO_COLOR or
 * TERM=dumb. The completion scripts are checked by the shells themselves.
 */
import { describe, expect, test } from "bun:test";
import { RUN_ARGS } from "../../src/cli/options.ts";
import { BUNBOX, bunbox, DIR } from "../helpers.ts";

/** `bunbox ARGS` on a terminal (script's pty), as a person would see it. */
function onTerminal(args: string, env: Record<string, string>): string {
  const r = Bun.spawnSync(["script", "-qec", `${BUNBOX} ${args}`, "/dev/null"], { env: { PATH: "/usr/bin:/bin", ...env }, stdin: "ignore" });
  return r.stdout.toString();
}

const LONG_NAMES = Object.entries(RUN_ARGS).flatMap(([k, d]) => [k, ...("aliases" in d ? d.aliases : [])]);

describe("--help", () => {
  test("colours on a terminal", () => {
    expect(onTerminal("run --help", { TERM: "xterm" })).toContain("\x1b[");
  });

  test("no colours with NO_COLOR, TERM=dumb, or into a pipe", async () => {
    expect(onTerminal("run --help", { TERM: "xterm", NO_COLOR: "1" })).not.toContain("\x1b[");
    expect(onTerminal("run --help", { TERM: "dumb" })).not.toContain("\x1b[");
    const piped = await bunbox(["run", "--help"], { bare: true, env: { TERM: "xterm" } });
    expect(piped.stdout).not.toContain("\x1b[");
  });

  test("run --help lists every option of the table, under its section", async () => {
    const r = await bunbox(["run", "--help"], { bare: true });
    for (const name of Object.keys(RUN_ARGS)) expect(r.stdout).toContain(`--${name}`);
    for (const section of ["POLICY", "FILESYSTEM", "ENVIRONMENT", "TERMINAL", "LIMITS", "OUTPUT"]) expect(r.stdout).toContain(`\n${section}\n`);
    expect(r.stdout).toContain("--cwd DIR");
    expect(r.stdout).toContain("(also --chdir)");
  });

  test("syscalls --help and help syscalls print help", async () => {
    for (const args of [["syscalls", "--help"], ["help", "syscalls"]]) {
      const r = await bunbox(args, { bare: true });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("USAGE bunbox syscalls [OPTIONS]");
      expect(r.stdout).toContain("--arch ARCH");
    }
  });
});

describe("shell completions", () => {
  const script = async (shell: string) => {
    const r = await bunbox(["completion", shell], { bare: true });
    expect(r.code).toBe(0);
    return r.stdout;
  };

  test("bash: subcommands, every option of run, an enum's values, nested commands", async () => {
    const file = `${DIR}/work/bunbox-completion.bash`;
    await Bun.write(file, await script("bash"));
    const complete = (words: string[]) => {
      const line = `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _bunbox; printf '%s\\n' "\${COMPREPLY[@]}"`;
      return Bun.spawnSync(["bash", "-c", line]).stdout.toString().trim().split("\n");
    };
    expect(complete(["bunbox", ""])).toEqual(expect.arrayContaining(["run", "policy", "syscalls", "completion", "man"]));
    const runOptions = complete(["bunbox", "run", "--"]);
    for (const name of LONG_NAMES) expect(runOptions).toContain(`--${name}`);
    expect(complete(["bunbox", "run", "--net", ""])).toEqual(["none", "loopback", "host", "proxy", "proxy-transparent"]);
    expect(complete(["bunbox", "policy", "explain", "--a"]).sort()).toEqual(["--all", "--arch"]);
    expect(complete(["bunbox", "completion", "--he"])).toEqual(["--help"]);
  });

  test("zsh and fish: the shells accept the scripts; fish completes run's options and values", async () => {
    const zsh = `${DIR}/work/_bunbox`;
    await Bun.write(zsh, await script("zsh"));
    expect(Bun.spawnSync(["zsh", "-n", zsh]).exitCode).toBe(0);
    const fish = `${DIR}/work/bunbox.fish`;
    await Bun.write(fish, await script("fish"));
    expect(Bun.spawnSync(["fish", "-n", fish]).exitCode).toBe(0);
    const ask = (line: string) => Bun.spawnSync(["fish", "-c", `source ${fish}; complete -C '${line}'`]).stdout.toString();
    expect(ask("bunbox run --prof")).toContain("--profile");
    expect(ask("bunbox run --net ")).toContain("loopback");
    expect(ask("bunbox ")).toContain("completion");
  });

  test("an unknown shell is a usage error", async () => {
    const r = await bunbox(["completion", "tcsh"], { bare: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('completion SHELL: "tcsh" is not one of bash, zsh, fish');
  });
});

describe("the man page", () => {
  test("bunbox man is valid roff (groff -ww finds nothing) and has every option and the exit codes", async () => {
    const r = await bunbox(["man"], { bare: true });
    expect(r.code).toBe(0);
    const file = `${DIR}/work/bunbox.1`;
    await Bun.write(file, r.stdout);
    const g = Bun.spawnSync(["groff", "-man", "-Tutf8", "-ww", "-z", file]);
    expect(g.stderr.toString()).toBe("");
    const text = Bun.spawnSync(["groff", "-man", "-Tascii", "-P-cbou", file]).stdout.toString();
    for (const name of Object.keys(RUN_ARGS)) expect(text).toContain(`--${name}`);
    for (const heading of ["SYNOPSIS", "TERMINALS", "SIGNALS", "EXIT STATUS", "ENVIRONMENT"]) expect(text).toContain(heading);
    expect(text).toContain("SIGUSR1");
  });
});
