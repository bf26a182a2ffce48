/**
 * Mount propagation: the sandbox's mounts are private (csrc/mounts.c makes
 * every mount of its namespace private first). Without that, its binds of
 * host directories would stay slaves of the host's mounts, and a mount the
 * host makes under a bound directory while the sandbox runs would appear
 * inside it. Root only: the host side mounts.
 */
import { expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUNBOX, NEEDS_ROOT, testUnless } from "../helpers.ts";
import { scratchDir } from "./stage.ts";

testUnless(NEEDS_ROOT)("a mount the host makes under a bound directory during the run does not reach the sandbox", async () => {
  const dir = scratchDir("prop");
  mkdirSync(join(dir, "sub"));
  // The host's side must propagate for the test to mean anything: a shared mount of its own.
  expect(Bun.spawnSync(["mount", "--bind", "--make-shared", dir, dir]).exitCode).toBe(0);
  try {
    const proc = Bun.spawn([BUNBOX, "run", "--ro", `${dir}:/d`, "--", "/bin/sh", "-c", "echo ready; read go; ls /d/sub"], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    // Once the sandbox runs (its shell said so, and waits for a line), the host mounts a tmpfs under the bound directory.
    const reader = proc.stdout.getReader();
    let out = "";
    while (!out.includes("ready\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    expect(out).toBe("ready\n");
    expect(Bun.spawnSync(["mount", "-t", "tmpfs", "none", join(dir, "sub")]).exitCode).toBe(0);
    writeFileSync(join(dir, "sub", "from-host"), "x");
    proc.stdin.write("go\n");
    proc.stdin.end();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toBe("ready\n"); // and nothing of the host's tmpfs
    // The host sees it, as it should.
    expect(Bun.spawnSync(["ls", join(dir, "sub")]).stdout.toString()).toBe("from-host\n");
  } finally {
    Bun.spawnSync(["umount", join(dir, "sub")]);
    Bun.spawnSync(["umount", dir]);
  }
});
