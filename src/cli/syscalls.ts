/** `bunbox syscalls [--arch A] [--json]`: the syscall table bunbox knows. */
import { ARCHES, type ArchName, hostArch } from "../policy/arch.ts";
import { SYSCALL_ARGS } from "../policy/syscalls/args.ts";
import { jsonText } from "../sandbox/visible.ts";
import { defineCommand } from "./args.ts";
import { writeAll } from "./log.ts";

/** --arch of `syscalls` and `policy explain`: checked by the parser against this list. */
export const ARCH_ARG = {
  type: "enum",
  options: Object.keys(ARCHES),
  description: "Target architecture (default: this machine's)",
  valueHint: "ARCH",
} as const;

export const syscallsCommand = defineCommand({
  meta: { name: "syscalls", description: "List the syscall table (number, name, arguments)" },
  args: {
    arch: ARCH_ARG,
    json: { type: "boolean", description: "Machine-readable output" },
  },
  run({ strings, flags }) {
    const arch = strings.arch ? ARCHES[strings.arch as ArchName] : hostArch();
    const rows = Object.entries(arch.syscalls).sort((a, b) => a[1] - b[1]);
    if (flags.json) {
      writeAll(1, `${jsonText(rows.map(([name, nr]) => ({ nr, name, args: SYSCALL_ARGS[name] ?? null })))}\n`);
      return;
    }
    const lines = rows.map(([name, nr]) => `${String(nr).padStart(4)}  ${name}(${(SYSCALL_ARGS[name] ?? ["…"]).join(", ")})`);
    writeAll(1, `# ${arch.name}: ${rows.length} syscalls\n${lines.join("\n")}\n`);
  },
});
