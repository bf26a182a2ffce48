#!/usr/bin/env bun
/**
 * The broker: the privileged half of a split program (README.md). It reads
 * the untrusted INPUT itself, hands the bytes to a sandboxed parser
 * (parser.c) that can open no file and reach no network, takes back the
 * records the parser found, checks every one of them against its own rules,
 * and writes the accepted ones to OUTPUT. The parser never learns a path and
 * could not use one if it did.
 *
 *   bun examples/broker/main.ts INPUT OUTPUT
 *
 * Exit codes: 0 the output was written (some records may have been
 * rejected; they are listed on stdout); 1 the input as a whole was refused
 * (too large, too many records, the parser broke the protocol); the sandbox's
 * own code when the parser did not end cleanly (159 for a policy violation,
 * 124 for a timeout, …); 2 bad usage. Nothing is written unless it is 0.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Comms, Executor, PolicyBuilder, Sandbox, SharedBuffer } from "../../src/index.ts";
import { compileC, runMain } from "../shared/compile.ts";

/** The broker's rules. The parser's own checks count for nothing: it may be compromised. */
const RULES = {
  maxInputBytes: 1 << 20,
  /** Records the parser may send in all (accepted or not): a flood is refused whole. */
  maxRecords: 1000,
  key: /^[a-z][a-z0-9_.-]{0,63}$/,
  keyText: "a lowercase letter, then up to 63 of a-z 0-9 _ . -",
  maxValue: 1024,
  value: /^[\x20-\x7e]*$/,
} as const;

interface RecordMessage {
  line: number;
  key: string;
  value: string;
}
interface DoneMessage {
  done: true;
  lines: number;
  skipped: number;
}

/** Refuses the whole run: the parser did something a correct parser never does. */
class Refused extends Error {}

/** The parser's messages, shape-checked: anything else means it is not the parser we wrote. */
function asMessage(m: unknown): RecordMessage | DoneMessage {
  const o = m as Record<string, unknown>;
  if (o && typeof o === "object" && o.done === true && Number.isSafeInteger(o.lines) && Number.isSafeInteger(o.skipped)) {
    return o as unknown as DoneMessage;
  }
  if (o && typeof o === "object" && Number.isSafeInteger(o.line) && typeof o.key === "string" && typeof o.value === "string") {
    return o as unknown as RecordMessage;
  }
  throw new Refused(`the parser sent a message that is neither a record nor the summary: ${JSON.stringify(m).slice(0, 200)}`);
}

/** Why the broker rejects a record, or undefined if it accepts it. */
function rejection(r: RecordMessage, seen: Map<string, number>): string | undefined {
  if (!RULES.key.test(r.key)) return `key ${JSON.stringify(r.key.slice(0, 80))} is not a valid key (${RULES.keyText})`;
  if (r.value.length > RULES.maxValue) return `value of "${r.key}" is ${r.value.length} characters (at most ${RULES.maxValue})`;
  if (!RULES.value.test(r.value)) return `value of "${r.key}" holds characters other than printable ASCII`;
  const first = seen.get(r.key);
  if (first !== undefined) return `duplicate key "${r.key}" (first at line ${first})`;
  return undefined;
}

/** The parser's policy: comms, memory, exit. No open(), no socket(), nothing mounted but the parser. */
function parserPolicy(parser: string) {
  return new PolicyBuilder()
    .allowStaticStartup() // what a static glibc does before main()
    .allowSystemMalloc()
    .allowRead()
    .allowWrite() // stderr, for its own error messages
    .allowExit()
    .allowComms() // sendmsg/recvmsg with fds, poll, mapping the shared input
    .emptyFilesystem()
    .addFileAt(parser, "/parser")
    .build();
}

async function main(): Promise<number> {
  const [input, output, ...extra] = process.argv.slice(2);
  if (!input || !output || extra.length) {
    process.stderr.write("usage: bun examples/broker/main.ts INPUT OUTPUT\n");
    return 2;
  }
  const data = readFileSync(input);
  if (data.length > RULES.maxInputBytes) {
    process.stdout.write(`refused: ${input} is ${data.length} bytes (at most ${RULES.maxInputBytes})\n`);
    return 1;
  }

  const parser = compileC({ name: "broker-parser", sources: [join(import.meta.dir, "parser.c")], static: true });
  const executor = new Executor("/parser", ["parser"], {
    limits: { wallTimeMs: 5000, cpuSeconds: 5, addressSpace: 256 << 20 },
  });
  // Small messages only: a record is at most a few KiB of JSON.
  const comms = executor.ipc.comms({ maxMessageSize: 64 << 10, timeoutMs: 5000 });
  const sandbox = new Sandbox(executor, parserPolicy(parser));
  sandbox.runAsync();

  let summary: DoneMessage | undefined;
  let refused: string | undefined;
  const accepted: RecordMessage[] = [];
  const rejected: string[] = [];
  const seen = new Map<string, number>();
  try {
    summary = await exchange(comms, data, (r) => {
      const why = rejection(r, seen);
      if (why) {
        rejected.push(`line ${r.line}: ${why}`);
      } else {
        accepted.push(r);
        seen.set(r.key, r.line);
      }
      if (accepted.length + rejected.length > RULES.maxRecords) {
        throw new Refused(`the parser sent more than ${RULES.maxRecords} records`);
      }
    });
  } catch (e) {
    // A Refused is ours; any other error is the channel ending early, which
    // the Result explains (the parser died, was killed, timed out).
    if (e instanceof Refused) refused = e.message;
    sandbox.kill();
  }
  const result = await sandbox.awaitResult();

  process.stdout.write(`parser: ${result.toString()}\n`);
  if (refused) {
    process.stdout.write(`refused: ${refused}; nothing written to ${output}\n`);
    return 1;
  }
  if (!result.ok || !summary) {
    if (result.violation) {
      process.stdout.write(`the parser tried ${result.violation.syscall}(), which its policy forbids, and was killed\n`);
    }
    process.stdout.write(`the parser did not finish cleanly; nothing written to ${output}\n`);
    return result.ok ? 1 : result.code;
  }
  process.stdout.write(`parser read ${summary.lines} lines, skipped ${summary.skipped} malformed\n`);
  process.stdout.write(`broker accepted ${accepted.length} records, rejected ${rejected.length}\n`);
  for (const r of rejected) process.stdout.write(`  rejected ${r}\n`);
  writeFileSync(output, accepted.map((r) => `${r.key}=${r.value}\n`).join(""), { mode: 0o644 });
  process.stdout.write(`wrote ${accepted.length} records to ${output}\n`);
  return 0;
}

/**
 * Sends the input as a shared buffer, then takes records until the summary.
 * The parser maps the buffer read-write and could change it under us, so the
 * broker never reads it again: it trusts only what it checks itself.
 */
async function exchange(comms: Comms, data: Uint8Array, onRecord: (r: RecordMessage) => void): Promise<DoneMessage> {
  const buffer = SharedBuffer.create(Math.max(1, data.length), "broker-input");
  try {
    buffer.bytes.set(data);
    await comms.sendFd(buffer.fd);
    await comms.sendUint64(data.length);
  } finally {
    buffer.close(); // the fd in flight keeps the memfd alive for the parser
  }
  for (;;) {
    const m = asMessage(await comms.recvJson());
    if ("done" in m) {
      await comms.sendBool(true); // all of it taken: the parser may end
      return m;
    }
    onRecord(m);
  }
}

if (import.meta.main) runMain("broker", main);
