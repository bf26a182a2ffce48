# The smoke suite's containment cases (README, "Containment"), sourced by
# smoke.sh (its helpers: t, bb, fails, code_is, result_has, out_is, $W, $B,
# $FXH, $ROOT) on this boot's cgroups: v2 alone (every controller) or v1
# hierarchies.
CGV=1
[ -f /sys/fs/cgroup/cgroup.controllers ] && CGV=2
# Whether the memory controller is there: since 6.11/6.12 its v1 interface
# is a kernel option of its own (CONFIG_MEMCG_V1), off in Debian's 6.12.
MEMCG=1
[ "$CGV" = 1 ] && ! awk '$3 == "cgroup" && ("," $4 ",") ~ /,memory,/ { f = 1 } END { exit !f }' /proc/mounts && MEMCG=""
# The cgroup's peak memory: memory.peak from Linux 5.19 (v1:
# max_usage_in_bytes, always there); without it maxRssKb is null.
kv=$(uname -r | awk -F '[.-]' '{ print $1 * 1000 + $2 }')
PEAK=$MEMCG
[ "$CGV" = 2 ] && [ "$kv" -lt 5019 ] && PEAK=""
# peak_within MiB: the Result's memoryPeakBytes is at most that, where the cgroup has a peak.
peak_within() {
  if [ -z "$PEAK" ]; then result_has '"maxRssKb":null'; return; fi
  [ "$(rnum memoryPeakBytes)" -le $(($1 << 20)) ] 2>/dev/null || fails "memoryPeakBytes '$(rnum memoryPeakBytes)' over $1 MiB"
}
# The user's delegated subtree (init.sh). systemd gives a user one, and a
# user runs bunbox alone in a cgroup of it with `systemd-run --user --scope
# -p Delegate=yes`; cb does the same by hand: bunbox exec'd alone in a new
# leaf, $UCG/run-PID-N (v2 lets no cgroup that holds processes hand
# controllers to children, so bunbox must be alone in its own).
UCG=/sys/fs/cgroup/bbuser
SCOPED=""
[ -z "$ROOT" ] && [ "$CGV" = 2 ] && [ -w "$UCG/cgroup.procs" ] && SCOPED=1
printf '#!/bin/sh\nmkdir "$1" && echo $$ >"$1/cgroup.procs" && shift && exec "$@"\n' >"$W/scope"
chmod 755 "$W/scope"
scopes=0
cb() {
  if [ "$SCOPED" ]; then
    scopes=$((scopes + 1))
    WRAP="$W/scope $UCG/run-$$-$scopes"
  fi
  bb "$@"
  WRAP=""
}
# The leaves cb made, once the cases have looked at them (deepest first).
scopes_clean() {
  [ "$SCOPED" ] || return 0
  for s in "$UCG"/run-$$-*; do [ -d "$s" ] && find "$s" -depth -type d -exec rmdir {} \; 2>/dev/null; done
  return 0
}

# A number or string from the Result (the last line of $W/err).
rnum() { tail -n 1 "$W/err" | sed -n "s/.*\"$1\":\([0-9][0-9]*\).*/\1/p"; }
rstr() { tail -n 1 "$W/err" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
# The host directories of the Result's cgroupPath ("/a/b" on v2;
# "memory:/a/b, pids:/a/b" on v1, each under its hierarchy's mount).
cg_dirs() {
  if [ "$CGV" = 2 ]; then echo "/sys/fs/cgroup$1"; return; fi
  echo "$1" | tr ',' '\n' | while IFS=: read -r c rel; do
    c=$(echo "$c" | tr -d ' ')
    m=$(awk -v c="$c" '$3 == "cgroup" && ("," $4 ",") ~ ("," c ",") { print $2; exit }' /proc/mounts)
    echo "$m$rel"
  done
}
# The Result names a cgroup of this boot's version, and it is gone.
cg_gone() {
  want=v$CGV
  [ "$(rstr cgroup)" = "$want" ] || fails "containment.cgroup is '$(rstr cgroup)', expected $want" || return 1
  path=$(rstr cgroupPath)
  [ -n "$path" ] || fails "no containment.cgroupPath" || return 1
  for d in $(cg_dirs "$path"); do
    [ ! -e "$d" ] || fails "the sandbox's cgroup $d is left after the run" || return 1
  done
}

c_cg_own() {
  cb -- /bin/cat /proc/self/cgroup
  code_is 0 || return 1
  [ -s "$W/out" ] && [ "$(grep -cv ':/$' "$W/out")" = 0 ] || fails "inside: $(tr '\n' ' ' <"$W/out")" || return 1
  cg_gone
}
# Held sandbox: the host's view of where its init (pid 1 inside) and the
# sandboxee are, and what bunbox wrote there (--cpus 0.5: cpu.max).
c_cg_host_view() {
  if [ "$SCOPED" ]; then
    scopes=$((scopes + 1))
    $W/scope "$UCG/run-$$-$scopes" "$B" run --cpus 0.5 --ro "$FXH:/fx" -- /fx/probe sleep 60 >"$W/out" 2>"$W/err" &
  else
    "$B" run --cpus 0.5 --ro "$FXH:/fx" -- /fx/probe sleep 60 >"$W/out" 2>"$W/err" &
  fi
  pid=$!
  init="" kid="" n=0
  while [ -z "$kid" ] && [ $n -lt 600 ]; do
    for i in $(cat /proc/$pid/task/*/children 2>/dev/null); do
      init=$i
      kid=$(cat /proc/$i/task/*/children 2>/dev/null | tr -s ' ' '\n' | grep -m 1 .)
    done
    [ -n "$kid" ] || sleep 0.1
    n=$((n + 1))
  done
  ci=$(sed -n 's/^0:://p' /proc/$init/cgroup 2>/dev/null)
  ck=$(sed -n 's/^0:://p' /proc/$kid/cgroup 2>/dev/null)
  own=$(sed -n 's/^0:://p' /proc/$pid/cgroup 2>/dev/null)
  max=$(cat "/sys/fs/cgroup$ci/cpu.max" 2>/dev/null)
  kill -TERM $pid
  wait $pid
  [ -n "$kid" ] || fails "no sandboxee under bunbox (pid $pid) after 60 s" || return 1
  case "$ci" in */bunbox/*) ;; *) fails "init (host pid $init) is in $ci, not a cgroup under bunbox's" || return 1 ;; esac
  [ "$ck" = "$ci" ] || fails "the sandboxee is in $ck, its init in $ci" || return 1
  [ "$own" != "$ci" ] || fails "bunbox itself is in the sandbox's cgroup $ci" || return 1
  [ "$max" = "50000 100000" ] || fails "cpu.max of $ci is '$max', expected '50000 100000' for --cpus 0.5" || return 1
  [ ! -e "/sys/fs/cgroup$ci" ] || fails "$ci is left after the run"
}
# With memory.oom.group (v2) the OOM kill takes the whole sandbox, the hog
# too, before it can say how far it got: then the Result alone tells.
c_cg_mem_procs() {
  cb --memory-limit 200M -- /fx/hog alloc-procs 4 150
  held=$(sed -n 's/.*held=\([0-9]*\).*/\1/p' "$W/out")
  [ "${held:-0}" -lt 4 ] || fails "held=$held of 4 x 150 MB under 200M" || return 1
  [ -n "$held" ] || [ "$code" = 137 ] || fails "no held= line, and the run ended with $code, not SIGKILL" || return 1
  [ "$(rnum oomKills)" -gt 0 ] 2>/dev/null || fails "oomKills is '$(rnum oomKills)'" || return 1
  peak_within 200 || return 1
  grep -Eq "memory limit of 200 MiB (killed [0-9]* process|reached)" "$W/err" || fails "bunbox's line does not say what the limit did" || return 1
  cg_gone
}
c_cg_memfd() {
  cb --memory-limit 64M -- /fx/hog memfd 1024
  wrote=$(sed -n 's/^memfd: \([0-9]*\) MiB.*/\1/p' "$W/out")
  [ "${wrote:-0}" -lt 64 ] || fails "the memfd took $wrote MiB under 64M: $(cat "$W/out")" || return 1
  [ -n "$wrote" ] || result_has '"reason":"SIGKILL: memory limit of 64 MiB reached"' || return 1
  peak_within 64
}
c_cg_oom() {
  cb --memory-limit 256M -- /fx/hog alloc 512
  code_is 137 && result_has '"status":"SIGNALED"' && result_has '"reason":"SIGKILL: memory limit of 256 MiB reached"' || return 1
  grep -qF "bunbox: SIGNALED: SIGKILL: memory limit of 256 MiB reached" "$W/err" || fails "bunbox's line lacks the reason"
}
c_cg_pids() {
  cb --max-procs 8 -- /fx/probe fork-many 50
  n=$(sed -n 's/^forked=//p' "$W/out")
  [ -n "$n" ] && [ "$n" -lt 8 ] || fails "forked=$n with --max-procs 8" || return 1
  [ "$(rnum forksRefused)" -gt 0 ] 2>/dev/null || fails "forksRefused is '$(rnum forksRefused)'" || return 1
  grep -q "the process limit of 8 refused [0-9]* fork" "$W/err" || fails "bunbox's line does not say what the limit refused" || return 1
  cg_gone
}
c_cg_peak() {
  cb -- /bin/true
  code_is 0 || return 1
  kb=$(rnum maxRssKb)
  if [ -z "$PEAK" ]; then
    result_has '"maxRssKb":null'
    return
  fi
  [ -n "$kb" ] && [ "$kb" -gt 0 ] && [ "$kb" -lt 4096 ] || fails "maxRssKb of /bin/true is '$kb'" || return 1
  [ "$(rnum memoryPeakBytes)" = $((kb * 1024)) ] || fails "memoryPeakBytes $(rnum memoryPeakBytes) is not maxRssKb $kb x 1024"
}
# The host directory of process PID's cgroup (v1: its pids hierarchy's).
cg_dir_of() {
  if [ "$CGV" = 2 ]; then
    c=$(sed -n 's/^0:://p' "/proc/$1/cgroup" 2>/dev/null)
  else
    c=$(awk -F: '$2 == "pids" { print $3 }' "/proc/$1/cgroup" 2>/dev/null)
    [ -n "$c" ] && c="pids:$c"
  fi
  [ -n "$c" ] && cg_dirs "$c"
}
# A bunbox killed by SIGKILL leaves its sandbox's cgroup; the next bunbox
# (same place: root's bunbox cgroup) empties and removes it.
c_cg_sweep() {
  "$B" run --ro "$FXH:/fx" -- /fx/probe sleep 60 >/dev/null 2>&1 &
  pid=$!
  dir="" n=0
  while [ -z "$dir" ] && [ $n -lt 600 ]; do
    for i in $(cat /proc/$pid/task/*/children 2>/dev/null); do
      d=$(cg_dir_of "$i")
      case "$d" in */bunbox/*) dir=$d ;; esac
    done
    [ -n "$dir" ] || sleep 0.1
    n=$((n + 1))
  done
  kill -KILL $pid
  wait $pid 2>/dev/null
  [ -n "$dir" ] && [ -d "$dir" ] || fails "no cgroup of the sandbox under bunbox's found (last: '$d')" || return 1
  bb -- /bin/true
  code_is 0 || return 1
  [ ! -e "$dir" ] || fails "the leftover $dir of a SIGKILLed bunbox is still there after the next run: $(tr '\n' ' ' <"$dir/cgroup.procs" 2>/dev/null)"
}
c_cg_nomem() {
  cb --memory-limit 64M -- /bin/true
  code_is 2 || return 1
  grep -qF -- "--memory-limit:" "$W/err" && grep -qF -- "--allow-weaker-limits" "$W/err" || fails "the error does not name --memory-limit and --allow-weaker-limits"
}
# Without a cgroup bunbox may write (here: nobody, in the root cgroup;
# on v1 the user has no delegation at all), a limit that needs one is a
# usage error unless weaker limits are accepted.
c_cg_weaker() {
  if [ "$ROOT" ]; then as="su -s /bin/sh nobody -c"; else as="sh -c"; fi
  $as "$B run --memory-limit 64M -- /bin/true" >"$W/out" 2>"$W/err" </dev/null
  code=$?
  code_is 2 || return 1
  grep -qF -- "--memory-limit: a memory limit for the whole sandbox (64M) cannot be enforced:" "$W/err" || fails "the error does not name --memory-limit and why" || return 1
  grep -qF -- "--allow-weaker-limits" "$W/err" || fails "the error does not name --allow-weaker-limits" || return 1
  $as "$B run --allow-weaker-limits --memory-limit 64M --json --ro $FXH:/fx -- /fx/hog alloc 128" >"$W/out" 2>"$W/err" </dev/null
  code=$?
  code_is 0 && out_is "alloc: -1 ENOMEM" && result_has '"by":"RLIMIT_AS per process (weaker limits accepted)"'
}

if [ "$ROOT" ] || [ "$SCOPED" ]; then
  t "cgroup v$CGV: the sandbox in its own cgroup, / inside, removed after" c_cg_own
  if [ "$CGV" = 2 ]; then
    t "cgroup v2: init and sandboxee in the sandbox's cgroup from the start (CLONE_INTO_CGROUP), --cpus 0.5 writes cpu.max" c_cg_host_view
  fi
  if [ "$MEMCG" ]; then
    t "cgroup v$CGV: 4 processes of 150 MB do not pass --memory-limit 200M together" c_cg_mem_procs
    t "cgroup v$CGV: a memfd holds less than --memory-limit 64M" c_cg_memfd
    t "cgroup v$CGV: the OOM kill is the Result's reason (memory limit of 256 MiB reached)" c_cg_oom
  else
    t "cgroup v$CGV without a memory controller: --memory-limit is exit 2 naming why" c_cg_nomem
  fi
  t "cgroup v$CGV: --max-procs 8 refuses forks, the Result counts them" c_cg_pids
  t "cgroup v$CGV: maxRssKb of /bin/true from the cgroup, under 4 MiB (null without memory.peak or a memory controller)" c_cg_peak
  scopes_clean
fi
if [ "$ROOT" ]; then
  t "cgroup v$CGV: the leftover of a SIGKILLed bunbox is swept by the next" c_cg_sweep
fi
if [ "$ROOT" ] || [ -z "$SCOPED" ]; then
  t "no writable cgroup ($([ "$ROOT" ] && echo nobody || echo "the user, v$CGV")): --memory-limit is exit 2 unless --allow-weaker-limits" c_cg_weaker
fi
