/**
 * The build case sandboxlib was written for: a multi-file C project built
 * with make and gcc inside a read-only staged root (busybox, and the host's
 * /usr for the toolchain), only the build directory writable, no network;
 * as root and as nobody. With --overlay, everything but the build directory
 * is thrown away after.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bunbox, describeUnless, NEEDS_ROOT, testUnless } from "../helpers.ts";
import { NO_STAGE, STAGE_PATH, scratchDir, stage, stageCopy } from "./stage.ts";

const NO_CC = ["/usr/bin/gcc", "/usr/bin/make"].find((p) => !existsSync(p));
const skip = NO_STAGE ?? (NO_CC ? `${NO_CC} is not installed` : undefined);

function project(): string {
  const dir = scratchDir("proj");
  writeFileSync(join(dir, "util.h"), "int add(int a, int b);\n");
  writeFileSync(join(dir, "util.c"), '#include "util.h"\nint add(int a, int b) { return a + b; }\n');
  writeFileSync(join(dir, "main.c"), '#include <stdio.h>\n#include "util.h"\nint main(void) { printf("%d\\n", add(40, 2)); return 0; }\n');
  writeFileSync(join(dir, "Makefile"), "app: main.o util.o\n\tgcc -o $@ $^\n%.o: %.c util.h\n\tgcc -c -O1 -o $@ $<\n");
  mkdirSync(join(dir, "out"), { mode: 0o777 });
  return dir;
}

const build = (root: string, proj: string, extra: string[], script: string, nobody: boolean) =>
  bunbox(
    ["run", "--root", root, "--ro", "/usr:/usr", "--rw", `${proj}:/build`, "--cwd", "/build", "--net", "none", "--env", STAGE_PATH, ...extra,
      "--", "sh", "-c", script],
    { bare: true, nobody },
  );

describeUnless(skip)(`a C build in a staged root`, () => {
  for (const nobody of [false, true]) {
    testUnless(nobody ? NEEDS_ROOT : undefined)(`make and gcc, the build directory the only writable place${nobody ? " (as nobody)" : ""}`, async () => {
      const proj = project();
      const r = await build(stage(), proj, [], "make -s && ./app && touch /usr/x 2>/dev/null || echo usr-ro; touch /etc/x 2>/dev/null || echo etc-ro; cat /proc/net/dev | wc -l", nobody);
      expect(r.stderr).toBe("");
      // 42, then read-only /usr and /etc; /proc/net/dev: two header lines and lo alone (no network).
      expect(r.stdout).toBe("42\nusr-ro\netc-ro\n3\n");
      expect(existsSync(join(proj, "app"))).toBe(true);
      expect(existsSync(join(proj, "main.o"))).toBe(true);
    });
  }

  test("with --overlay: writes outside the build directory are thrown away", async () => {
    const root = stageCopy(65534);
    const proj = project();
    const r = await build(root, proj, ["--overlay"], "make -s && ./app && echo junk > /srv/junk && ls /srv", false);
    expect(r.stdout).toBe("42\njunk\n");
    expect(existsSync(join(root, "srv", "junk"))).toBe(false);
    expect(existsSync(join(proj, "app"))).toBe(true);
  });
});
