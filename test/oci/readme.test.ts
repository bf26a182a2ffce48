/**
 * README.md's OCI field table is OCI_FIELDS (src/oci/spec.ts), row for row:
 * the list a user reads is the list bunbox enforces.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { OCI_FIELDS } from "../../src/oci/spec.ts";

test("every field, supported or not, as README.md lists it", () => {
  const readme = readFileSync(join(import.meta.dir, "..", "..", "README.md"), "utf8");
  const rows = readme.split("\n").filter((l) => /^\| `[a-zA-Z.[\]]+` \| (yes|no) \|/.test(l));
  const expected = Object.entries(OCI_FIELDS).map(([f, [ok, what]]) => `| \`${f}\` | ${ok ? "yes" : "no"} | ${what} |`);
  expect(rows).toEqual(expected);
});
