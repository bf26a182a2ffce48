/**
 * The examples (examples/*), run the way their READMEs say: `bun main.ts …`
 * in a child process, checking what they print and how they exit, the
 * violation demonstrations included. Each main.ts builds its C program
 * itself (cached per user under $TMPDIR), so the first test of each pays
 * for gcc. As root, each example also runs once as user nobody, from the
 * world-readable copy test/setup.ts makes (the checkout may sit under a 0700
 * home), which needs unprivileged user namespaces.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describeUnless, DIR, NEEDS_ROOT, type SkipReason, TREE } from "./helpers.ts";

const root = resolve(import.meta.dir, "..");
const EXAMPLES = join(root, "examples");
const NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
/** The first run of an example compiles its C program; later ones hit the cache. */
const SLOW = 20_000;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function example(args: string[], opts: { stdin?: string; nobody?: boolean } = {}): Promise<Run> {
  const cmd = [...(opts.nobody ? NOBODY : []), process.execPath, ...args];
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
  if (process.env.CC) env.CC = process.env.CC;
  if (!opts.nobody && process.env.HOME) env.HOME = process.env.HOME;
  await using proc = Bun.spawn(cmd, {
    cwd: opts.nobody ? "/" : root,
    env,
    stdin: opts.stdin === undefined ? "ignore" : new Blob([opts.stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

/** A scratch directory that nobody can write to as well (for the broker's output). */
function scratch(): string {
  const dir = mkdtempSync(join(DIR, "work", "examples-"));
  chmodSync(dir, 0o777);
  return dir;
}

/** Why the examples cannot run as user nobody here, if they cannot. */
function nobodyCannotRun(): SkipReason {
  if (NEEDS_ROOT) return NEEDS_ROOT;
  const paths = [process.execPath, join(TREE, "examples", "broker", "main.ts"), join(TREE, "src", "index.ts")];
  const unreadable = paths.filter((p) => Bun.spawnSync([...NOBODY, "test", "-r", p]).exitCode !== 0);
  return unreadable.length ? `user nobody cannot read ${unreadable.join(", ")}` : undefined;
}

const BROKER = join(EXAMPLES, "broker", "main.ts");
const ME_HERE = join(EXAMPLES, "sandbox-me-here", "main.ts");
const FORK_SERVER = join(EXAMPLES, "fork-server", "main.ts");

const REDACTED = [
  "From the support log, ticket 4711:",
  "  user: my password is *******, please reset it",
  "  agent: done; the new one for the **** account is *********",
  "  agent: (hunter22 and acmeCorp are not whole words and stay)",
  "",
].join("\n");

describe("broker", () => {
  test("the parser's records are checked by the broker, which alone writes the output", async () => {
    const out = join(scratch(), "app.out");
    const r = await example([BROKER, join(EXAMPLES, "broker", "samples", "app.conf"), out]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("parser: OK: exit code 0\n");
    expect(r.stdout).toContain("parser read 15 lines, skipped 1 malformed\n");
    expect(r.stdout).toContain("broker accepted 5 records, rejected 4\n");
    expect(r.stdout).toContain(`rejected line 11: key "../../etc/cron.d/evil" is not a valid key`);
    expect(r.stdout).toContain(`rejected line 12: value of "motd" holds characters other than printable ASCII`);
    expect(r.stdout).toContain(`rejected line 14: duplicate key "log.level" (first at line 4)`);
    expect(readFileSync(out, "utf8")).toBe(
      "server.name=shop-frontend\nserver.port=8080\nlog.level=info\ncache.ttl_seconds=300\nfeature.checkout=enabled\n",
    );
  }, SLOW);

  test("an input that makes the parser open a file ends in a VIOLATION, and nothing is written", async () => {
    const out = join(scratch(), "include.out");
    const r = await example([BROKER, join(EXAMPLES, "broker", "samples", "include.conf"), out]);
    expect(r.code).toBe(159);
    expect(r.stdout).toMatch(/^parser: VIOLATION: openat\(/);
    expect(r.stdout).toContain("the parser tried openat(), which its policy forbids, and was killed\n");
    expect(r.stdout).toContain("nothing written");
    expect(existsSync(out)).toBe(false);
  }, SLOW);

  test("more records than the broker's limit: the parser is killed and the input refused whole", async () => {
    const dir = scratch();
    const input = join(dir, "flood.conf");
    writeFileSync(input, Array.from({ length: 1500 }, (_, i) => `key${i} = value${i}\n`).join(""));
    const r = await example([BROKER, input, join(dir, "flood.out")]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("parser: EXTERNAL_KILL");
    expect(r.stdout).toContain("refused: the parser sent more than 1000 records");
    expect(existsSync(join(dir, "flood.out"))).toBe(false);
  }, SLOW);

  test("usage", async () => {
    const r = await example([BROKER]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("usage: bun examples/broker/main.ts INPUT OUTPUT");
  });
});

describe("sandbox-me-here", () => {
  test("the config is read before the call, the input filtered after it", async () => {
    const r = await example([ME_HERE]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(REDACTED);
    expect(r.stderr).toBe("redact: OK: exit code 0\n");
  }, SLOW);

  test("stdin to stdout", async () => {
    const r = await example([ME_HERE, "-"], { stdin: "ACME says: Hunter2\nno newline at the end: swordfish" });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("**** says: *******\nno newline at the end: *********");
  }, SLOW);

  test("opening the same config after the call is a VIOLATION", async () => {
    const r = await example([ME_HERE, "--reopen"]);
    expect(r.code).toBe(159);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^redact: VIOLATION: openat\(/);
    expect(r.stderr).toContain("redact tried openat() after bunbox_sandbox_me_here(); the policy forbids it\n");
  }, SLOW);
});

describe("fork-server", () => {
  test("every query answered right by its own fresh child, all in flight at once", async () => {
    const r = await example([FORK_SERVER]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^fork server ready in \d+ ms \(its table took \d+ ms to build, once\)\n/);
    expect(r.stdout).toContain("  primes up to 1000000: 78498 (child pid ");
    expect(r.stdout).toContain("  error: n must be below 16777216 (child pid ");
    expect(r.stdout).not.toContain("WRONG");
    expect(r.stdout.match(/OK: exit code 0\)/g)?.length).toBe(14);
    expect(r.stdout).toEndWith("all 14 answers right, each from a fresh child\n");
  }, SLOW);
});

describeUnless(nobodyCannotRun())("as user nobody", () => {
  /** The example's path in the copy nobody can read. */
  const copy = (path: string) => join(TREE, path.slice(root.length));

  test("broker", async () => {
    const dir = scratch();
    const r = await example([copy(BROKER), copy(join(EXAMPLES, "broker", "samples", "app.conf")), join(dir, "out")], { nobody: true });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("broker accepted 5 records, rejected 4\n");
    const v = await example([copy(BROKER), copy(join(EXAMPLES, "broker", "samples", "include.conf")), join(dir, "x")], { nobody: true });
    expect(v.code).toBe(159);
    expect(v.stdout).toMatch(/^parser: VIOLATION: openat\(/);
  }, SLOW);

  test("sandbox-me-here", async () => {
    const r = await example([copy(ME_HERE)], { nobody: true });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(REDACTED);
    const v = await example([copy(ME_HERE), "--reopen"], { nobody: true });
    expect(v.code).toBe(159);
    expect(v.stderr).toMatch(/^redact: VIOLATION: openat\(/);
  }, SLOW);

  test("fork-server", async () => {
    const r = await example([copy(FORK_SERVER), "4"], { nobody: true });
    expect(r.code).toBe(0);
    expect(r.stdout).toEndWith("all 4 answers right, each from a fresh child\n");
  }, SLOW);
});
