#!/bin/sh
# `bun run test:vm --stress SPEC` runs this instead of the smoke suite, as
# root and as the user (init.sh): the Bun runtime's own stability on this
# CPU, apart from bunbox's cases. SPEC (bbvm.stress= on the kernel command
# line) is a comma-separated list of
#   pure:N:SECONDS  N processes each running pure JavaScript for SECONDS (no bun:ffi)
#   fork:N          one process running the fork-server case N times
# each with the JIT as shipped, or with JavaScriptCore's DFG tier off
# (pure-nodfg:N:SECONDS, fork-nodfg:N). library.ts prints a line per round;
# a process that dies (Bun's crash, a hang) is a failed case here, with
# Bun's panic line. README.md ("Kernels and CPUs it is tested on") says what
# this showed.
#
#   stress.sh LABEL
L=$1
D=/opt/bunbox
W=$(mktemp -d)
spec=$(sed -n 's/.*bbvm\.stress=\([^ ]*\).*/\1/p' /proc/cmdline)

# library.js with ENV..., killed after TIMEOUT s; NAME for the line if it dies.
lib() { # NAME TIMEOUT ENV...
  name=$1 limit=$2
  shift 2
  env "$@" BUN_BE_BUN=1 BUNBOX_SHIM=$D/libbunbox.so timeout -s KILL "$limit" $D/bunbox $D/library.js "$L" stress </dev/null 2>"$W/err"
  rc=$?
  [ $rc = 0 ] && return
  why=$(grep -m1 -o 'panic.*' "$W/err")
  [ $rc = 137 ] && why="killed after $limit s (a hang)"
  echo "BBVM not ok $L $name: Bun ended with status $rc: ${why:-$(head -c 300 "$W/err" | tr '\n' '|')}"
  grep -m1 'bun.report' "$W/err" | sed "s|^ *|BBVM info $L $name: |"
}

for item in $(echo "$spec" | tr ',' ' '); do
  kind=${item%%:*} rest=${item#*:}
  n=${rest%%:*} secs=${rest#*:}
  jit=
  case $kind in *-nodfg) jit=BUN_JSC_useDFGJIT=0 ;; esac
  case $kind in
  pure | pure-nodfg) for i in $(seq "$n"); do lib "$kind $i of $n" $((secs + 120)) $jit BBVM_PURE_JS="$secs"; done ;;
  fork | fork-nodfg) lib "$kind loop of $n" $((n * 20 + 120)) $jit BBVM_FORK_LOOP="$n" ;;
  *) echo "BBVM not ok $L stress: $item: not pure[-nodfg]:N:SECONDS or fork[-nodfg]:N" ;;
  esac
done
