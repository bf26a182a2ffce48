/** `bunbox syscalls [--arch A] [--json]`: the syscall table bunbox knows. */
import { defineCommand } from "citty";
import { UsageError } from "../errors.ts";
import { ARCHES, type ArchName, hostArch } from "../policy/arch.ts";
import { SYSCALL_ARGS } from "../policy/syscalls/args.ts";
import { writeAll } from "./log.ts";

export const syscallsCommand = defineCommand({
  meta: { name: "syscalls", description: "List the syscall table (number, name, arguments)" },
  args: {
    arch: { type: "string", description: "x86_64 or aarch64 (default: this machine's)", valueHint: "ARCH" },
    json: { type: "boolean", description: "Machine-readable output" },
  },
  run({ args }) {
    if (args.arch !== undefined && !(args.arch in ARCHES)) throw new UsageError("--arch", `"${args.arch}" is not x86_64 or aarch64`);
    const arch = args.arch ? ARCHES[args.arch as ArchName] : hostArch();
    const rows = Object.entries(arch.syscalls).sort((a, b) => a[1] - b[1]);
    if (args.json) {
      writeAll(1, `${JSON.stringify(rows.map(([name, nr]) => ({ nr, name, args: SYSCALL_ARGS[name] ?? null })))}\n`);
      return;
    }
    const lines = rows.map(([name, nr]) => `${String(nr).padStart(4)}  ${name}(${(SYSCALL_ARGS[name] ?? ["…"]).join(", ")})`);
    writeAll(1, `# ${arch.name}: ${rows.length} syscalls\n${lines.join("\n")}\n`);
  },
});
