#!/usr/bin/busybox sh
# pid 1 of the test VM (busybox sh). Mounts the kernel filesystems, sets up
# cgroups as the kernel command line says (bbvm.cgroup=cgroup2: cgroup2 alone
# with every controller enabled; cgroup1: one v1 hierarchy per controller),
# creates an unprivileged user, runs the smoke suite as root and as that user
# (side by side) twice: first straight on the initramfs rootfs (where pivot_root is
# impossible), then after switch_root to a tmpfs (the usual case), and powers
# off. Every result is a "BBVM ..." line on the console; scripts/vm/qemu.ts
# reads them.
export PATH=/usr/bin:/usr/sbin
stage=${1:-rootfs}
user=bbuser
uid=1000

info() { echo "BBVM info $*"; }
# A failure of the rig itself (not of bunbox): reported, then power off.
die() { echo "BBVM not ok $stage/init $*"; echo "BBVM done"; poweroff -f; exit 1; }

if [ "$stage" = rootfs ]; then
  /usr/bin/busybox --install -s /usr/bin
  mount -t proc -o nosuid,nodev,noexec proc /proc || die "mount /proc"
  mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || die "mount /sys"
  mount -t devtmpfs -o nosuid devtmpfs /dev || die "mount /dev"
  mkdir -p /dev/pts /dev/shm
  mount -t devpts devpts /dev/pts
  mount -t tmpfs -o nosuid,nodev tmpfs /dev/shm
  chmod 1777 /tmp
  hostname bbvm
  echo bbvm >/etc/hostname
  ip link set lo up 2>/dev/null
  # Only the emergencies on the console: kernel messages would cut our lines.
  echo 1 >/proc/sys/kernel/printk

  cgroup=$(sed -n 's/.*bbvm\.cgroup=\([a-z0-9]*\).*/\1/p' /proc/cmdline)
  case "$cgroup" in
  cgroup2)
    mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate cgroup2 /sys/fs/cgroup || die "mount cgroup2"
    for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
      echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || die "enable the $c controller"
    done
    # The unprivileged user gets a delegated subtree, as systemd gives
    # user@UID.service: its processes may manage cgroups below it.
    mkdir /sys/fs/cgroup/$user
    for c in $(cat /sys/fs/cgroup/$user/cgroup.controllers); do echo "+$c" >/sys/fs/cgroup/$user/cgroup.subtree_control; done
    chown $uid:$uid /sys/fs/cgroup/$user /sys/fs/cgroup/$user/cgroup.procs \
      /sys/fs/cgroup/$user/cgroup.subtree_control /sys/fs/cgroup/$user/cgroup.threads
    info "cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
    ;;
  cgroup1)
    mount -t tmpfs -o nosuid,nodev,noexec,mode=755 cgroup /sys/fs/cgroup || die "mount the cgroup tmpfs"
    mounted=""
    v2only=""
    # /proc/cgroups: name, hierarchy, count, enabled. Since 6.11/6.12 the v1
    # interface of memory and cpuset is a kernel option of its own
    # (CONFIG_MEMCG_V1, CONFIG_CPUSETS_V1): a controller that will not mount
    # as v1 is left out and named.
    for c in $(awk 'NR > 1 && $4 == 1 { print $1 }' /proc/cgroups); do
      case "$c" in cpuacct | net_prio) continue ;; cpu) opts=cpu,cpuacct ;; net_cls) opts=net_cls,net_prio ;; *) opts=$c ;; esac
      mkdir -p /sys/fs/cgroup/$opts
      if mount -t cgroup -o nosuid,nodev,noexec,$opts cgroup /sys/fs/cgroup/$opts 2>/dev/null; then
        mounted="$mounted $opts"
      else
        rmdir /sys/fs/cgroup/$opts
        v2only="$v2only $opts"
      fi
    done
    [ -n "$mounted" ] || die "no cgroup v1 hierarchy could be mounted"
    info "cgroup v1 hierarchies:$mounted${v2only:+; not available as v1:$v2only}"
    ;;
  *) die "no bbvm.cgroup= on the kernel command line" ;;
  esac

  echo "root:x:0:0:root:/root:/bin/sh" >/etc/passwd
  echo "$user:x:$uid:$uid::/home/$user:/bin/sh" >>/etc/passwd
  echo "nobody:x:65534:65534:nobody:/nonexistent:/bin/false" >>/etc/passwd
  printf 'root:x:0:\n%s:x:%s:\nnogroup:x:65534:\n' $user $uid >/etc/group
  mkdir -p /root /home/$user
  chmod 700 /root
  chown $uid:$uid /home/$user
  info "kernel $(uname -r) $(uname -m), $(nproc) cpus, $(awk '/MemTotal/ { print $2 / 1024 " MiB" }' /proc/meminfo)"
  info "unprivileged user namespaces: $(cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null || echo 'no sysctl (allowed)'), max_user_namespaces $(cat /proc/sys/user/max_user_namespaces)"
fi

info "stage $stage: / is $(awk '$2 == "/" { print $3 }' /proc/mounts | tail -n 1)"
# Untimed runs first, of the suite's own form, as root and as the user: the
# first start of bunbox from a fresh copy of it (after switch_root) costs
# TCG a new translation of Bun's code, and the first sandbox of a stage
# 5-12 s of set-up on 5.10 (seen once past the 10 s set-up limit, as the
# user), which would land in the first case. Logged with their time.
warm=$(awk '{ print $1 }' /proc/uptime)
/opt/bunbox/bunbox run --json --ro /opt/bunbox/fx:/fx -- /fx/probe ok >/dev/null 2>&1
su -s /bin/sh $user -c '/opt/bunbox/bunbox run --json --ro /opt/bunbox/fx:/fx -- /fx/probe ok' >/dev/null 2>&1
info "$stage: warm-up runs took $(awk -v a="$warm" '{ printf "%.1f", $1 - a }' /proc/uptime) s"
if grep -q bbvm.stress= /proc/cmdline; then
  # `bun run test:vm --stress`: the Bun runtime's stability, not the suite (stress.sh).
  sh /opt/bunbox/stress.sh "$stage/root" &
  su -s /bin/sh $user -c "HOME=/home/$user exec sh /opt/bunbox/stress.sh $stage/user" &
  wait
  echo "BBVM done"
  poweroff -f
fi
# As root and as the user at once: one per vCPU (under TCG each bunbox run
# costs about a second of emulated CPU, so this halves the boot's time).
/opt/bunbox/smoke.sh "$stage/root" &
# The user's processes run in a leaf of its delegated subtree, as a login
# session's do under systemd (cgroup2; moved there by root: a move needs
# write access to the common ancestor's cgroup.procs, and a cgroup that hands
# controllers to its children holds no process itself).
sh -c "if [ -d /sys/fs/cgroup/$user ]; then mkdir -p /sys/fs/cgroup/$user/session && echo \$\$ >/sys/fs/cgroup/$user/session/cgroup.procs; fi
  exec su -s /bin/sh $user -c 'HOME=/home/$user exec /opt/bunbox/smoke.sh $stage/user'" &
wait

if [ "$stage" = rootfs ]; then
  # The usual case: a tmpfs root with the rootfs beneath it. switch_root
  # empties the rootfs and needs the new root to be a mount point.
  mkdir /newroot
  mount -t tmpfs -o mode=755 tmpfs /newroot || die "mount the tmpfs root"
  for d in /*; do
    case "$d" in /proc | /sys | /dev | /newroot) mkdir -p /newroot$d ;; *) cp -a "$d" /newroot/ || die "copy $d" ;; esac
  done
  for m in /dev /proc /sys; do mount --move $m /newroot$m || die "move $m"; done
  exec switch_root /newroot /init tmpfs
fi
echo "BBVM done"
poweroff -f
