/**
 * A JSON policy's mistakes, said as a person would say them (src/policy/
 * file-issues.ts, json-position.ts): the key or value misspelt with the
 * nearest right one, a syntax error with its line and column, an unknown
 * syscall with the nearest names, and a builder's objection under the
 * file's own key (block.getpid), not the method that raised it.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { bunbox, DIR, HOST_ARCH } from "../helpers.ts";

async function check(name: string, text: string): Promise<string> {
  const file = `${DIR}/work/${name}`;
  writeFileSync(file, text);
  const r = await bunbox(["policy", "check", file], { bare: true });
  expect(r.code).toBe(2);
  expect(r.stdout).toBe("");
  return r.stderr.replaceAll(`${DIR}/work/`, "");
}

describe("policy file errors", () => {
  test("an unknown key, with the nearest known one", async () => {
    expect(await check("a.json", '{"alow": ["getpid"]}')).toContain("a.json: alow: unknown key (did you mean allow?)");
  });

  test("a syntax error, with its line and column", async () => {
    expect(await check("b.json", '{\n  "allow": ["getpid",]\n}\n')).toContain("b.json:2:22: not valid JSON: a comma before ] (JSON allows no trailing comma)");
    expect(await check("c.json", '{\n  "allow": ["getpid"]\n  "network": "none"\n}')).toContain('c.json:3:3: not valid JSON: expected "," or "}"');
    expect(await check("d.json", "// a comment\n{}")).toContain("d.json:1:1: not valid JSON");
  });

  test("a key given twice, which JSON.parse would take keeping the last, is refused at the second", async () => {
    // The first "block" would vanish unseen: getpid would go back to what the profile gives it.
    expect(await check("dup.json", '{\n  "block": {"getpid": "EPERM"},\n  "block": {}\n}')).toContain('dup.json:3:3: a policy file: "block" given twice in one object');
    expect(await check("dup2.json", '{"filesystem": {"mounts": [{"tmpfs": "/a", "tmpfs": "/b"}]}}')).toContain('dup2.json:1:44: a policy file: "tmpfs" given twice');
    // Keys of different objects are not one object's.
    const other = `${DIR}/work/dup3.json`;
    writeFileSync(other, '{"profile": "shell", "filesystem": {"mounts": [{"tmpfs": "/a"}, {"tmpfs": "/b"}]}}');
    expect((await bunbox(["policy", "check", other], { bare: true })).code).toBe(0);
  });

  test("an array is not a policy (valibot would take [] as {})", async () => {
    expect(await check("array.json", "[]")).toContain("array.json: (top level): a policy is a JSON object");
    expect(await check("array2.json", '[{"profile": "shell"}]')).toContain("array2.json: (top level): a policy is a JSON object");
    // Nor is a filesystem section: [] was the default filesystem, unsaid.
    expect(await check("array3.json", '{"filesystem": []}')).toContain("array3.json: filesystem: a JSON object, not an array");
  });

  test("an unknown syscall, with the nearest names", async () => {
    const e = await check("e.json", '{"allow": ["getpidd", "opne"], "block": {"unlinkk": "EPERM"}}');
    const arch = HOST_ARCH.name;
    expect(e).toContain(`allow.0: unknown syscall "getpidd" on ${arch} (did you mean getpid`);
    expect(e).toContain(`allow.1: unknown syscall "opne" on ${arch} (did you mean open`);
    expect(e).toContain(`block.unlinkk: unknown syscall "unlinkk" on ${arch} (did you mean unlink`);
  });

  test("a value not among the choices, with the nearest", async () => {
    const e = await check("f.json", '{"network": "hots", "filesystem": {"base": "emtpy"}}');
    expect(e).toContain('network: "hots" is not one of none, loopback, host, proxy, proxy-transparent (did you mean host?)');
    expect(e).toContain('filesystem.base: "emtpy" is not one of default, empty (did you mean empty?)');
  });

  test("an object of none of the forms: the forms, and the nearest key", async () => {
    const e = await check("g.json", '{"filesystem": {"mounts": [{"bnd": "/x"}, {"tmpfs": "/t", "sise": "1M"}]}, "rules": [{"syscalls": ["write"], "program": [{"ar": 0}]}]}');
    expect(e).toContain("filesystem.mounts.0: expected an object with one of the keys bind, tmpfs, symlink, proc, dev, devpts, dir, file, overlay, mask, readonly (this one has bnd; did you mean bind?)");
    expect(e).toContain("filesystem.mounts.1.sise: unknown key (did you mean size?)");
    expect(e).toContain("rules.0.program.0: expected");
    expect(e).toContain("(this one has ar; did you mean arg?)");
  });

  test("the builder's objections name the file's key, not the builder method", async () => {
    const e = await check("h.json", '{"allow": ["getpid"], "block": {"getpid": "EPERM"}, "hostname": "-x", "filesystem": {"mounts": [{"bind": "/no/such/path"}]}}');
    expect(e).toContain("h.json: block.getpid: getpid is already ALLOW");
    expect(e).toContain('h.json: hostname: "-x" is not a hostname');
    expect(e).toContain("h.json: filesystem.mounts.0: /no/such/path does not exist on the host");
    expect(e).not.toMatch(/blockSyscallWithErrno|setHostname|bind\(/);
  });
});
