#!/bin/sh
# The smoke suite, run inside the test VM by init.sh (busybox sh), once per
# stage and user:  smoke.sh LABEL   (LABEL: rootfs/root, tmpfs/user, ...)
#
# Each case prints one line on the console, which scripts/vm/qemu.ts counts:
#   BBVM ok LABEL NAME
#   BBVM not ok LABEL NAME: what differed; bunbox's stderr
#   BBVM skip LABEL NAME: why it cannot run on this kernel or CPU
#   BBVM crash LABEL NAME: the Bun runtime under bunbox crashed (see t below)
# and, for the console log only, BBVM info|time|detail lines.
# The fixtures (test/fixtures/*.c and scripts/vm/fixtures/*, static) are in
# /opt/bunbox/fx and mounted read-only at /fx in every sandbox. BBVM_DIR
# overrides /opt/bunbox (to try the suite on a host).
export PATH=/usr/bin:/usr/sbin
L=$1
D=${BBVM_DIR:-/opt/bunbox}
B=$D/bunbox
FXH=$D/fx
ARCH=$(uname -m)
W=$(mktemp -d /tmp/smoke.XXXXXX) || { echo "BBVM not ok $L mktemp: no work directory"; exit 1; }
chmod 755 "$W"
trap 'rm -rf "$W"' EXIT
[ "$(id -u)" = 0 ] && ROOT=1 || ROOT=

uptime() { cut -d ' ' -f 1 /proc/uptime; }
started=$(uptime)

# bb [RUN OPTIONS] -- COMMAND...: bunbox run with the Result as JSON (the
# last line of $W/err); the exit code in $code. Never more than 2 minutes.
# $WRAP, when set, is a command bunbox runs under (the user's cgroup scope: cb, containment.sh).
bb() {
  timeout -s KILL 120 $WRAP "$B" run --json --ro "$FXH:/fx" "$@" <"$W/stdin" >"$W/out" 2>"$W/err"
  code=$?
}
: >"$W/stdin"

why=""
fails() { why=$1; return 1; }
code_is() { [ "$code" = "$1" ] || fails "exit code $code, expected $1"; }
result_has() { tail -n 1 "$W/err" | grep -qF -- "$1" || fails "the Result lacks $1"; }
out_is() { [ "$(cat "$W/out")" = "$1" ] || fails "stdout '$(head -c 300 "$W/out" | tr '\n' '|')', expected '$1'"; }
out_has() { grep -qF -- "$1" "$W/out" || fails "stdout lacks '$1': '$(head -c 300 "$W/out" | tr '\n' '|')'"; }
out_lacks() { ! grep -qF -- "$1" "$W/out" || fails "stdout has '$1': '$(head -c 300 "$W/out" | tr '\n' '|')'"; }

# t NAME FUNCTION: one case. Where bunbox itself (the Bun runtime) crashed,
# the crash is reported on its own line (BBVM crash) and the case runs once
# more: a crash of the runtime is counted and shown, not taken for the
# case's verdict on bunbox.
attempt() {
  why=""
  code=""
  : >"$W/out"
  : >"$W/err"
  "$1"
}
t() {
  t0=$(uptime)
  attempt "$2"
  ok=$?
  if [ $ok != 0 ] && grep -q "Bun has crashed" "$W/err"; then
    echo "BBVM crash $L $1: $(grep -m 1 '^panic' "$W/err") ($(grep -m 1 'bun.report' "$W/err" | tr -d ' '))"
    attempt "$2"
    ok=$?
  fi
  if [ $ok = 0 ]; then
    echo "BBVM ok $L $1"
  else
    echo "BBVM not ok $L $1: ${why:-failed}; stderr: $(head -c 400 "$W/err" | tr '\n' '|')"
    # The whole of it in the console log (bunbox's own crash report, say).
    head -n 80 "$W/err" | sed "s|^|BBVM detail $L: |"
  fi
  took=$(awk -v a="$t0" -v b="$(uptime)" 'BEGIN { printf "%.1f", b - a }')
  echo "$took $1" >>"$W/times"
  echo "BBVM time $L $took s: $1"
}
skip() { echo "BBVM skip $L $1: $2"; }

# A violation: exit 159 and the Result naming the syscall, its arch and kind.
violation() { # violation SYSCALL KIND ARCH
  code_is 159 && result_has '"status":"VIOLATION"' && result_has "\"syscall\":\"$1\"" &&
    result_has "\"kind\":\"$2\"" && result_has "\"arch\":\"$3\""
}

# ---- how a run ends: exit code and Result ----
c_ok() { bb -- /fx/probe ok; code_is 0 && out_is "ok: 0" && result_has '"status":"OK"'; }
c_exit() { bb -- /fx/probe exit 7; code_is 7 && result_has '"status":"OK"' && result_has '"exitCode":7'; }
c_signal() { bb -- /fx/probe signal 11; code_is 139 && result_has '"status":"SIGNALED"' && result_has '"signalName":"SIGSEGV"'; }
c_timeout() { bb --time-limit 1 -- /fx/probe sleep 60; code_is 124 && result_has '"status":"TIMEOUT"'; }
c_not_found() { bb -- /fx/no-such-program; code_is 127 && result_has '"status":"SETUP_ERROR"' && result_has '"stage":"lookup"'; }
c_setup_error() { bb --cwd /no/such/dir -- /fx/probe ok; code_is 125 && result_has '"status":"SETUP_ERROR"' && result_has '"stage":"cwd"'; }
c_usage() {
  timeout -s KILL 60 "$B" run --no-such-option -- /fx/probe ok >"$W/out" 2>"$W/err"
  code=$?
  code_is 2 && { grep -qF -- "--no-such-option" "$W/err" || fails "no error naming the option"; }
}
c_dynamic() { bb -- /fx/probe-dynamic ok; code_is 0 && out_is "ok: 0"; }
c_minimal() { bb --profile minimal -- /fx/minimal; code_is 0 && out_is "minimal: hello"; }
c_shell() { bb -- /bin/sh -c 'echo "$((6 * 7))"'; code_is 0 && out_is 42; }

t "OK: exit 0 and Result OK" c_ok
t "exit code passed through (7)" c_exit
t "SIGNALED: SIGSEGV, exit 139" c_signal
t "TIMEOUT: wall-time limit, exit 124" c_timeout
t "command not found: SETUP_ERROR at lookup, exit 127" c_not_found
t "setup error: SETUP_ERROR at cwd, exit 125" c_setup_error
t "bad usage: exit 2 naming the option" c_usage
t "a dynamically linked program (the guest's glibc, read-only /usr)" c_dynamic
t "minimal profile: a program with no libc" c_minimal
t "busybox sh inside" c_shell

# ---- isolation ----
c_only_mapped() {
  bb -- /fx/probe ls /
  code_is 0 || return 1
  for e in $(cat "$W/out"); do
    case "$e" in bin | dev | etc | fx | lib | lib64 | proc | sbin | tmp | usr) ;; *) fails "/ holds $e" || return 1 ;; esac
  done
  out_has fx && out_has usr
}
c_parent_is_root() { bb -- /fx/probe ls /..; code_is 0 && out_has fx && out_lacks opt && out_lacks init; }
c_ro_root() { bb -- /fx/probe write /new-file x; code_is 0 && out_is "write: -1 EROFS"; }
c_ro_bind() { bb -- /fx/probe write /fx/new-file x; code_is 0 && out_is "write: -1 EROFS"; }
c_rw_bind() {
  mkdir "$W/rw" && chmod 777 "$W/rw"
  bb --rw "$W/rw:/rw" -- /fx/probe write /rw/file hello
  code_is 0 && out_is "write: 5" && { [ "$(cat "$W/rw/file")" = hello ] || fails "the file is not on the host"; }
}
c_tmp() { bb -- /fx/probe write /tmp/f hello; code_is 0 && out_is "write: 5"; }
c_pid() { bb -- /fx/probe pid; code_is 0 && out_is "pid=2 ppid=1"; }
c_lo_only() {
  bb -- /fx/probe read /proc/net/dev
  code_is 0 || return 1
  ifaces=$(awk 'NR > 2 { sub(":.*", "", $1); print $1 }' "$W/out" | tr '\n' ' ')
  [ "$ifaces" = "lo " ] || fails "interfaces: $ifaces"
}
c_no_route() { bb -- /fx/probe net; code_is 0 && out_is "connect: -1 ENETUNREACH"; }
c_status() {
  bb -- /fx/probe read /proc/self/status
  code_is 0 || return 1
  caps=$(grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' "$W/out" | grep -vc '0000000000000000$')
  [ "$caps" = 0 ] || fails "capabilities left: $(grep '^Cap' "$W/out" | tr '\n\t' '| ')" || return 1
  grep -q '^NoNewPrivs:[[:space:]]*1$' "$W/out" || fails "NoNewPrivs is not 1" || return 1
  grep -q '^Seccomp:[[:space:]]*2$' "$W/out" || fails "Seccomp is not 2"
}
c_fds() { bb -- /fx/probe fds; code_is 0 && { [ "$(sort "$W/out" | tr '\n' ' ')" = "0 1 2 " ] || fails "fds: $(tr '\n' ' ' <"$W/out")"; }; }
c_env() { bb -- /fx/probe env; code_is 0 && { [ "$(grep -Ecv '^(PATH|HOME)=' "$W/out")" = 0 ] && grep -qx 'HOME=/tmp' "$W/out" || fails "environment: $(tr '\n' ' ' <"$W/out")"; }; }
c_hostname() { bb -- /fx/probe read /proc/sys/kernel/hostname; code_is 0 && out_is bunbox; }
c_cgroupns() {
  bb -- /fx/probe read /proc/self/cgroup
  code_is 0 && { [ -s "$W/out" ] && [ "$(grep -cv ':/$' "$W/out")" = 0 ] || fails "cgroups: $(tr '\n' ' ' <"$W/out")"; }
}
c_ids() {
  bb -- /fx/probe ids
  if [ "$ROOT" ]; then want=65534; else want=$(id -u); fi
  code_is 0 && out_has "uid=$want euid=$want"
}

t "only mapped paths under /" c_only_mapped
t "/.. is / (the host's root unreachable)" c_parent_is_root
t "read-only root" c_ro_root
t "read-only bind" c_ro_bind
t "writable bind reaches the host" c_rw_bind
t "writable /tmp" c_tmp
t "pid 2 under bunbox's init (pid 1)" c_pid
t "network: lo only" c_lo_only
t "network: no route out" c_no_route
t "no capabilities, NoNewPrivs 1, Seccomp 2" c_status
t "only fds 0 1 2" c_fds
t "environment: PATH and HOME=/tmp only" c_env
t "hostname bunbox" c_hostname
t "cgroup namespace: its own cgroup is /" c_cgroupns
t "ids inside" c_ids

# ---- the root cannot be undone: a filter that allows everything leaves only
# the kernel in the way (no capabilities; mounts locked in new namespaces) ----
echo '{"dangerDefaultAllowAll":true,"dangerAllowUnsafe":["unshare-namespaces","clone-namespaces","mount","umount2","pivot_root","move_mount","open_tree"]}' >"$W/open.json"
chmod 644 "$W/open.json"
c_chroot() {
  bb --policy "$W/open.json" -- /fx/escape chroot
  code_is 0 && out_has "chroot: -1 EPERM" && out_has "root: " && out_lacks " opt" && out_lacks " init"
}
c_userns_chroot() {
  bb --policy "$W/open.json" -- /fx/escape userns
  code_is 0 || return 1
  if grep -q "^unshare: 0" "$W/out"; then
    out_has "umount /: -1" && out_has "root: " && out_has " fx" && out_lacks " opt" && out_lacks " init"
  else
    out_has "root: " && out_lacks " opt"
  fi
}
t "chroot escape: EPERM (no CAP_SYS_CHROOT)" c_chroot
t "from a new user namespace: / stays the sandbox's (umount refused, chroot .. ends at the top)" c_userns_chroot

# ---- violations, named with the syscall and the arch, on this arch's BPF ----
c_ptrace() { bb -- /fx/probe ptrace; violation ptrace SYSCALL "$ARCH" && result_has '"ipMapping":"probe+'; }
c_unshare() { bb -- /fx/probe unshare-user; violation unshare SYSCALL "$ARCH"; }
c_clone_ns() { bb -- /fx/probe clone-newns; violation clone SYSCALL "$ARCH"; }
c_mount() { bb -- /fx/probe mount; violation mount SYSCALL "$ARCH"; }
c_tiocsti() { bb -- /fx/probe tiocsti-high; violation ioctl SYSCALL "$ARCH" && result_has '"0x100005412"'; }
c_io_uring() { bb -- /fx/probe io_uring; violation io_uring_setup SYSCALL "$ARCH"; }
c_thread() { bb -- /fx/probe thread-ptrace; violation ptrace SYSCALL "$ARCH"; }
c_harmless() {
  bb -- /fx/probe unshare-files; code_is 0 && out_is "unshare: 0" || return 1
  bb -- /fx/probe clone3; code_is 0 && out_is "clone3: -1 ENOSYS" || return 1
  bb -- /fx/probe seccomp-plain; code_is 0 && out_is "seccomp: 0"
}
t "ptrace: VIOLATION [$ARCH] at probe+0x..." c_ptrace
t "unshare(CLONE_NEWUSER): VIOLATION" c_unshare
t "clone(CLONE_NEWNS): VIOLATION" c_clone_ns
t "mount: VIOLATION" c_mount
t "ioctl TIOCSTI with high bits set: VIOLATION (64-bit argument compare)" c_tiocsti
t "io_uring_setup: VIOLATION" c_io_uring
t "ptrace from a second thread: VIOLATION" c_thread
t "harmless uses allowed (unshare(0), clone3 ENOSYS, a plain filter)" c_harmless

# Foreign architectures: each runs outside first; where the kernel and CPU
# run it at all, inside it must be an ARCH violation before dispatch.
case "$ARCH" in
x86_64)
  c_x32() { bb -- /fx/probe x32; violation "getpid (x32)" ARCH x86_64 && result_has '"rule":"x32 ABI"'; }
  t "x32 syscall number: ARCH violation" c_x32
  if "$FXH/probe" i386 >/dev/null 2>&1; then
    c_i386() { bb -- /fx/probe i386; violation getpid ARCH i386; }
    t "i386 int 0x80: ARCH violation named getpid [i386]" c_i386
  else
    skip "i386 int 0x80: ARCH violation" "this kernel faults int 0x80 (no IA32 emulation)"
  fi
  ;;
aarch64)
  if [ "$("$FXH/arm32" 2>/dev/null)" = "arm32: hello" ]; then
    c_arm32() { bb -- /fx/arm32; code_is 159 && result_has '"status":"VIOLATION"' && result_has '"kind":"ARCH"' && result_has '"arch":"arm"'; }
    t "compat arm32 svc: ARCH violation [arm]" c_arm32
  else
    skip "compat arm32 svc: ARCH violation" "no 32-bit EL0 here (kernel without CONFIG_COMPAT, or CPU)"
  fi
  ;;
esac

# ---- limits ----
# fork-many ends by killing its own process group: SIGKILL, after it printed the count.
c_procs() {
  bb --max-procs 16 -- /fx/probe fork-many 64
  n=$(sed -n 's/^forked=//p' "$W/out")
  [ -n "$n" ] && [ "$n" -gt 0 ] && [ "$n" -lt 16 ] || fails "forked=$n with --max-procs 16"
}
c_memory() { bb --address-space-limit 64M -- /fx/probe alloc 256; code_is 0 && out_is "malloc: -1 ENOMEM"; }
c_fsize() { bb --max-file-size 1M -- /fx/probe write-big /tmp/big 4; code_is 0 && out_is "write-big: -1 EFBIG"; }
c_files() {
  bb --max-files 16 -- /fx/probe open-many 64
  n=$(sed -n 's/^opened=//p' "$W/out")
  code_is 0 && { [ -n "$n" ] && [ "$n" -lt 16 ] || fails "opened=$n with --max-files 16"; }
}
t "--max-procs holds" c_procs
t "--address-space-limit holds (RLIMIT_AS)" c_memory
t "--max-file-size holds" c_fsize
t "--max-files holds" c_files

# ---- containment: a cgroup per sandbox, on this boot's cgroups ----
. "$D/containment.sh"

# ---- kernel fallbacks (README, "What it needs from the kernel"): which path
# runs is decided by probing the kernel outside, and the case checks what the
# path must achieve; where the call is missing, only the fallback can have. ----
mount_setattr=$("$FXH/probe" syscall 442 -1 0 0 0 0)
case "$mount_setattr" in
*ENOSYS) bind_path="path-based binds and remounts (no mount_setattr: Linux < 5.12)" ;;
*) bind_path="binds attached through fds (mount_setattr)" ;;
esac
c_bind_flags() {
  mkdir -p "$W/d" && chmod 755 "$W/d"
  bb --ro "$W/d:/ro" -- /fx/probe read /proc/self/mountinfo
  code_is 0 || return 1
  ro=$(awk '$5 == "/ro" { print $6 }' "$W/out")
  fx=$(awk '$5 == "/fx" { print $6 }' "$W/out")
  root=$(awk '$5 == "/" { print $6 }' "$W/out" | tail -n 1)
  case ",$ro," in *,ro,*nosuid*nodev* | *,ro,*nodev*nosuid*) ;; *) fails "/ro mounted $ro" || return 1 ;; esac
  case ",$fx," in *,ro,*) ;; *) fails "/fx mounted $fx" || return 1 ;; esac
  case ",$root," in *,ro,*) ;; *) fails "/ mounted $root" ;; esac
}
t "$bind_path: ro, nosuid, nodev as planned" c_bind_flags
close_range=$("$FXH/probe" syscall 436 1000 1001 4)
case "$close_range" in
*EINVAL) fd_path="fds marked close-on-exec one by one (no CLOSE_RANGE_CLOEXEC: Linux < 5.11)" ;;
*) fd_path="close_range(CLOSE_RANGE_CLOEXEC)" ;;
esac
echo "BBVM info $L kernel paths: $bind_path; $fd_path"

# ---- library modes, in Bun inside the guest (the executable runs as bun) ----
BUN_BE_BUN=1 BUNBOX_SHIM=$D/libbunbox.so timeout -s KILL 300 "$B" "$D/library.js" "$L" "$fd_path" </dev/null 2>"$W/lib-err"
rc=$?
if [ $rc != 0 ]; then
  echo "BBVM not ok $L library cases: exit $rc; stderr: $(head -c 600 "$W/lib-err" | tr '\n' '|')"
  # The whole of it in the console log (Bun's crash report and its trace, say).
  head -n 80 "$W/lib-err" | sed "s|^|BBVM detail $L: |"
fi
echo "BBVM info $L: slowest cases: $(sort -rn "$W/times" | head -n 3 | tr '\n' ';')"
echo "BBVM info $L: the suite took $(awk -v a="$started" -v b="$(uptime)" 'BEGIN { printf "%.0f", b - a }') s"
