#!/usr/bin/env bun
/**
 * Regenerates the learned profiles (src/policy/learned/NAME.json): for each,
 * `bunbox learn --merge` over a representative set of runs, through the
 * library. A profile keeps the syscall rules (by name: any arch) and the
 * notes of the runs (counts, where each call was first made); not the
 * filesystem, since a profile runs programs of the user's in the default
 * view. Run it after changing the workloads below or on a new distribution,
 * and commit what changed:
 *
 *   bun scripts/learn-profiles.ts [NAME...]
 *
 * Needs python3, node, bun, sh/bash with coreutils, gcc, g++, make and ar on
 * this machine, as root (the learning runs need no network).
 */
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Learner } from "../src/learn/learner.ts";
import { profilePolicy } from "../src/policy/precompiled.ts";
import { DEFAULT_PATH, Executor } from "../src/sandbox/executor.ts";
import { jsonText } from "../src/sandbox/visible.ts";

const root = resolve(import.meta.dir, "..");

const PYTHON = `
import asyncio, collections, datetime, decimal, fractions, glob, gzip, hashlib, io, itertools, json, locale, logging
import math, os, pathlib, random, re, select, shutil, signal, socket, sqlite3, struct, subprocess, sys, tempfile
import threading, time, traceback, unicodedata, urllib.parse, uuid, zlib, zipfile, concurrent.futures, multiprocessing
signal.signal(signal.SIGUSR1, lambda *a: None); os.kill(os.getpid(), signal.SIGUSR1)
d = tempfile.mkdtemp()
p = pathlib.Path(d, "a.json"); p.write_text(json.dumps({"x": [1, 2, 3]})); json.loads(p.read_text())
shutil.copy(p, pathlib.Path(d, "b.json")); os.rename(pathlib.Path(d, "b.json"), pathlib.Path(d, "c.json"))
with gzip.open(pathlib.Path(d, "z.gz"), "wt") as f: f.write("zz")
with zipfile.ZipFile(pathlib.Path(d, "z.zip"), "w") as z: z.writestr("a", "b")
sorted(os.listdir(d)); glob.glob(d + "/*"); os.stat(d); os.access(d, os.W_OK); shutil.rmtree(d)
db = sqlite3.connect(":memory:"); db.execute("create table t(x)"); db.execute("insert into t values (1)"); db.commit()
hashlib.sha256(b"x").hexdigest(); zlib.compress(b"x" * 1000); random.random(); uuid.uuid4(); re.findall(r"\\w+", "a b")
t = [threading.Thread(target=lambda: sum(range(10000))) for _ in range(4)]; [x.start() for x in t]; [x.join() for x in t]
with concurrent.futures.ThreadPoolExecutor(4) as ex: list(ex.map(abs, range(100)))
a, b = socket.socketpair(); a.sendall(b"x"); b.recv(1); a.close(); b.close()
r, w = os.pipe(); os.write(w, b"x"); select.select([r], [], [], 0); os.read(r, 1)
subprocess.run(["true"]); subprocess.run(["sh", "-c", "echo hi"], capture_output=True)
with multiprocessing.Pool(2) as pool: pool.map(abs, range(10))
async def main(): await asyncio.sleep(0.01)
asyncio.run(main())
time.sleep(0.01); datetime.datetime.now().isoformat(); locale.getpreferredencoding(); sys.stdout.flush()
print("ok")
`;

const NODE = `
const fs = require("fs"), os = require("os"), path = require("path"), cp = require("child_process"), crypto = require("crypto");
const zlib = require("zlib"), { Worker } = require("worker_threads"), net = require("net");
const d = fs.mkdtempSync(path.join(os.tmpdir(), "n-"));
fs.writeFileSync(path.join(d, "a.json"), JSON.stringify({ x: [1, 2] })); JSON.parse(fs.readFileSync(path.join(d, "a.json"), "utf8"));
fs.readdirSync(d); fs.statSync(d); fs.renameSync(path.join(d, "a.json"), path.join(d, "b.json")); fs.rmSync(d, { recursive: true });
crypto.createHash("sha256").update("x").digest("hex"); crypto.randomBytes(16); zlib.gzipSync("x".repeat(1000));
cp.execSync("true"); cp.spawnSync("sh", ["-c", "echo hi"]);
os.cpus(); os.hostname(); os.networkInterfaces(); process.hrtime.bigint(); new Date().toISOString();
const w = new Worker("require('worker_threads').parentPort.postMessage(1)", { eval: true });
w.on("message", async () => {
  await new Promise((r) => setTimeout(r, 10));
  await fs.promises.readFile("/etc/hostname");
  const s = net.createServer(); s.on("error", () => {}); s.listen(0, "127.0.0.1", () => s.close());
  console.log("ok");
});
`;

const BUN = `
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
const d = mkdtempSync("/tmp/b-");
await Bun.write(d + "/a.json", JSON.stringify({ x: 1 })); JSON.parse(await Bun.file(d + "/a.json").text());
readdirSync(d); rmSync(d, { recursive: true });
Bun.spawnSync(["true"]); Bun.spawnSync(["sh", "-c", "echo hi"]);
new Bun.CryptoHasher("sha256").update("x").digest("hex"); Bun.gzipSync(new TextEncoder().encode("x".repeat(1000)));
await Bun.sleep(10); const w = new Worker("data:text/javascript,postMessage(1)"); await new Promise((r) => (w.onmessage = r)); w.terminate();
console.log("ok");
`;

const SHELL = [
  "ls -la / | sort | uniq -c | wc -l; cat /etc/os-release | grep -i name | cut -d= -f2 | tr a-z A-Z | head -n 2",
  "d=$(mktemp -d); cd $d && echo a > a && cp a b && mv b c && mkdir -p x/y && ln -s a l && chmod 600 a && touch -d @0 a; find . -type f | xargs wc -c; du -s .; stat a >/dev/null; readlink l; rm -rf $d",
  "date +%s >/dev/null; sleep 0.01; echo $((1 + 2)); printf '%s\\n' b a | sort -r | tee /dev/null | sed s/a/x/ | awk '{print $1}'; seq 3 | paste -sd+ | bc 2>/dev/null; expr 1 + 1; basename /a/b; dirname /a/b; env | grep -c PATH; id -u; uname -a; test -d /tmp && true; yes | head -n 1; kill -0 $$; trap 'echo t' USR1; kill -USR1 $$; wait",
];
const BASH = ['a=(1 2 3); echo ${a[@]}; cat <(echo sub); read x <<< "in"; echo $x; for i in {1..3}; do echo $i; done | wc -l; set -o pipefail; f() { local y=1; echo $y; }; f; (sleep 0.01 &); wait; ulimit -n; echo $RANDOM >/dev/null'];

/** The learning runs' project directory (writable, their cwd where they have one). */
const FILES: Record<string, string> = {
  "data.json": '{"a": [1, 2, {"b": null}]}\n',
  "main.c": '#include <stdio.h>\n#include <pthread.h>\n#include "lib.h"\nstatic void *f(void *a) { return a; }\nint main(void) { pthread_t t; pthread_create(&t, 0, f, 0); pthread_join(t, 0); printf("%d\\n", add(1, 2)); return 0; }\n',
  "lib.c": '#include "lib.h"\nint add(int a, int b) { return a + b; }\n',
  "lib.h": "int add(int a, int b);\n",
  "cxx.cc": '#include <iostream>\n#include <vector>\nint main() { std::vector<int> v{1, 2}; std::cout << v.size() << std::endl; }\n',
  Makefile: "all: main cxx\nmain: main.o liblib.a\n\tcc -O2 -o main main.o liblib.a -lpthread\nmain.o: main.c lib.h\n\tcc -O2 -Wall -c main.c\nliblib.a: lib.o\n\tar rcs liblib.a lib.o\nlib.o: lib.c lib.h\n\tcc -O2 -fPIC -c lib.c\ncxx: cxx.cc\n\tc++ -O1 -o cxx cxx.cc\nclean:\n\trm -f *.o *.a main cxx\n",
};

type Workload = { argv: string[]; cwd?: string };
interface ProfileSpec {
  what: string;
  runs: (work: string) => Workload[];
}

const PROFILES: Record<string, ProfileSpec> = {
  python3: {
    what: "python3 scripts (the standard library: files, threads, subprocess, multiprocessing, sockets, sqlite, asyncio)",
    runs: (work) => [{ argv: ["python3", "-c", "print(1)"] }, { argv: ["python3", "-c", PYTHON] }, { argv: ["python3", "-m", "json.tool", `${work}/data.json`] }],
  },
  node: {
    what: "node scripts (fs, child_process, worker_threads, crypto, zlib, timers)",
    runs: () => [{ argv: ["node", "-e", "console.log(1)"] }, { argv: ["node", "-e", NODE] }],
  },
  bun: {
    what: "bun scripts (Bun.file, Bun.spawn, workers, node:fs, crypto, timers)",
    runs: () => [{ argv: ["bun", "-e", "console.log(1)"] }, { argv: ["bun", "-e", BUN] }],
  },
  sh: {
    what: "sh and bash scripts with coreutils, grep, sed, awk, find, xargs",
    runs: () => [...SHELL.map((c) => ({ argv: ["sh", "-c", c] })), ...[...SHELL, ...BASH].map((c) => ({ argv: ["bash", "-c", c] }))],
  },
  cc: {
    what: "C and C++ builds: cc, c++, ld, as, ar, make",
    runs: (work) => [{ argv: ["make", "-C", work, "clean", "all"], cwd: work }, { argv: ["sh", "-c", "./main && ./cxx"], cwd: work }, { argv: ["cc", "-O0", "-g", "-o", "t", "lib.c", "main.c", "-lpthread"], cwd: work }],
  },
};

async function learnProfile(name: string, spec: ProfileSpec): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), `bunbox-learn-${name}-`));
  chmodSync(work, 0o777);
  try {
    for (const [f, text] of Object.entries(FILES)) writeFileSync(join(work, f), text, { mode: 0o666 });
    const base = profilePolicy("default", work);
    const plan = base.mountPlan();
    plan.add({ kind: "bind", src: work, dst: work, rw: true });
    const learner = new Learner({ policy: base.derive({ mounts: plan }), filesystem: false });
    // Each run as `bunbox run` starts it (PATH alone: no HOME, so libc asks the passwd database);
    // the first also with the variables a login has, and with its stdout and stderr a socket
    // (what a parent's spawn() often gives: node asks getsockopt then) and a file.
    const login = { PATH: DEFAULT_PATH, HOME: "/tmp", LANG: "C.UTF-8", TERM: "xterm" };
    const runs = spec.runs(work);
    const variants: { w: Workload; env: Record<string, string>; stdio?: "socket" | "file" }[] = [
      ...runs.map((w) => ({ w, env: { PATH: DEFAULT_PATH } })),
      { w: runs[0]!, env: login },
      { w: runs[0]!, env: login, stdio: "socket" },
      { w: runs[0]!, env: login, stdio: "file" },
    ];
    for (const { w, env, stdio } of variants) {
      const executor = new Executor(w.argv[0]!, w.argv, { env, cwd: w.cwd ?? "/tmp", limits: { wallTimeMs: 120_000 } });
      const ours: number[] = [];
      if (stdio === "socket") ours.push(executor.ipc.receiveFd(1), executor.ipc.receiveFd(2));
      if (stdio === "file") {
        const f = openSync(join(work, "out.log"), "w");
        ours.push(f);
        executor.ipc.mapFd(f, 1).mapFd(f, 2);
      }
      const { result } = await learner.run(executor);
      ours.forEach((fd) => closeSync(fd));
      if (!result.ok) throw new Error(`${name}: ${w.argv.join(" ").slice(0, 80)}: ${result.toString()}`);
    }
    const file = learner.policyFile();
    // A profile runs the user's programs in the default view: its filesystem and the runs' paths are not part of it.
    const { paths: _paths, ...notes } = file.notes;
    const out = { ...file, description: `Learned profile "${name}": ${spec.what}. Regenerate: bun scripts/learn-profiles.ts ${name}`, notes };
    mkdirSync(join(root, "src/policy/learned"), { recursive: true });
    writeFileSync(join(root, "src/policy/learned", `${name}.json`), `${jsonText(out, 2)}\n`);
    const allow = (file.allow as string[]).length + Object.keys((file.allowIf as object | undefined) ?? {}).length;
    console.log(`${name}: ${allow} syscalls from ${notes.runs.length} runs`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const names = process.argv.slice(2);
  for (const n of names) if (!(n in PROFILES)) throw new Error(`unknown profile ${n} (one of ${Object.keys(PROFILES).join(", ")})`);
  for (const [name, spec] of Object.entries(PROFILES)) if (names.length === 0 || names.includes(name)) await learnProfile(name, spec);
}

export { PROFILES };
