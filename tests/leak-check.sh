#!/usr/bin/env bash
# Before and after the suite: nothing of berth's tests may be left running or lying around.
# Prints exactly what leaked (one line each) and exits 1, or says "nothing left behind".
#
# Checked: berth daemons; `berth shim` processes, alive or zombie; mounts under a test
# directory (overlay rootfs, nsfs sandbox binds, anything under $TMPDIR/berth-test-*) or
# under /run/berth*; overlay mounts whose layers are in a test directory; nsfs mounts of
# berth's; cgroups named berth-test-* (any depth up to 3) or /berth* (top level) in every
# cgroup hierarchy (each v1 controller and the v2 "unified" one); network namespaces named
# berth* (`ip netns`); links named berth*, test bridges (bt + 6 hex digits) and pod veths
# (bv/bp + 12 hex digits); nftables tables named berth*; pod /24 claims of test daemons
# (/tmp/berth-netclaims/*); test directories in $TMPDIR;
# files outside the temporary directories (/var/log/berth/pods/*berth-test*, /run/berth*).
set -uo pipefail
tmp=${TMPDIR:-/tmp}
tmp=${tmp%/}
fail=0
leak() {
  echo "leak: $*"
  fail=1
}

# Processes: daemons and shims (a zombie has no command line, so look at its name too).
# Shims are daemonised: when one ends, its parent is PID 1, which may reap it late. So
# zombies get a bounded grace (LEAK_CHECK_ZOMBIE_WAIT seconds, default 10) before they count.
self=$$
procs() {
  local d pid stat rest state comm ppid args
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [ "$pid" = "$self" ] && continue
    read -r stat < "$d/stat" 2>/dev/null || continue
    # The name may hold spaces and parentheses: the state follows the last ')'.
    rest=${stat##*) }
    state=${rest%% *}
    read -r comm < "$d/comm" 2>/dev/null || continue
    # The kernel's name of the process: its binary's name (berth, or a copy: berth-no-pie).
    case "$comm" in berth*) ;; *) continue ;; esac
    if [ "$state" = Z ]; then
      # shellcheck disable=SC2086
      set -- $rest
      ppid=$2
      echo "zombie berth process $pid (parent $ppid): a shim or daemon nobody reaped"
      continue
    fi
    args=()
    mapfile -d '' -t args < "$d/cmdline" 2>/dev/null || continue
    case "${args[1]:-}" in
      daemon) echo "berth daemon still running: pid $pid: ${args[*]}" ;;
      shim) echo "berth shim still running: pid $pid: ${args[*]}" ;;
    esac
  done
}
found=$(procs)
waited=0
while [[ "$found" == *zombie* ]] && [ "$waited" -lt "$((${LEAK_CHECK_ZOMBIE_WAIT:-10} * 5))" ]; do
  sleep 0.2
  waited=$((waited + 1))
  found=$(procs)
done
while IFS= read -r line; do
  [ -n "$line" ] && leak "$line"
done <<< "$found"

# Mounts. mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL…] - FSTYPE SOURCE SUPER
cgroup_mounts=()
while IFS= read -r line; do
  set -f
  # shellcheck disable=SC2086
  set -- $line
  set +f
  mp=$5
  after=${line#* - }
  # shellcheck disable=SC2086
  set -- $after
  fstype=$1
  super=${3:-}
  mp_dec=$(printf '%b' "${mp//\\/\\0}")
  case "$fstype" in
    cgroup | cgroup2) cgroup_mounts+=("$mp_dec") ;;
  esac
  case "$mp_dec" in
    "$tmp"/berth-test-* | /run/berth | /run/berth/* | /run/berth-*)
      leak "mount left: $mp_dec ($fstype)"
      continue
      ;;
  esac
  if [ "$fstype" = overlay ] && [[ "$super" == *berth-test-* ]]; then
    leak "overlay mount with layers in a test directory: $mp_dec ($super)"
  elif [ "$fstype" = nsfs ] && [[ "$mp_dec" == *berth* ]]; then
    leak "namespace bind mount left: $mp_dec"
  fi
done < /proc/self/mountinfo

# cgroups, in every hierarchy (v1 controllers, the v2 "unified" one, or a pure v2 root).
# One line per leaked cgroup, naming the hierarchies it is in.
declare -A cg_where=()
cg_order=()
seen_roots=" "
for root in "${cgroup_mounts[@]}"; do
  # Co-mounted controllers (cpu,cpuacct) may appear under several names; skip repeats.
  case "$seen_roots" in *" $root "*) continue ;; esac
  seen_roots="$seen_roots$root "
  while IFS= read -r dir; do
    [ -n "$dir" ] || continue
    rel=${dir#"$root"}
    if [ -z "${cg_where[$rel]:-}" ]; then
      cg_order+=("$rel")
      cg_where[$rel]=${root##*/}
    else
      cg_where[$rel]="${cg_where[$rel]},${root##*/}"
    fi
  done < <(find "$root" -maxdepth 3 -mindepth 1 -type d \( -name 'berth-test-*' -o -path "$root/berth*" \) -prune -print 2>/dev/null)
done
for rel in "${cg_order[@]}"; do
  leak "cgroup left: $rel (in ${cg_where[$rel]})"
done

# Network namespaces, links and nftables tables of berth's.
if command -v ip >/dev/null 2>&1; then
  while IFS= read -r ns; do
    [ -n "$ns" ] && leak "network namespace left: ip netns $ns"
  done < <(ip netns list 2>/dev/null | awk '$1 ~ /^berth/ {print $1}')
  while IFS= read -r link; do
    [ -n "$link" ] && leak "network link left: $link"
  done < <(ip -o link show 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2)} $2 ~ /^(berth|bt[0-9a-f]{6}$|b[vp][0-9a-f]{12}$)/ {print $2}')
fi
if command -v nft >/dev/null 2>&1; then
  while IFS= read -r t; do
    [ -n "$t" ] && leak "nftables table left: $t"
  done < <(nft list tables 2>/dev/null | awk '$3 ~ /^berth/ {print $2, $3}')
fi

# Files: test directories, and what tests must never write outside them.
shopt -s nullglob
for p in "$tmp"/berth-test-* /tmp/berth-netclaims/* /var/log/berth/pods/*berth-test* /run/berth /run/berth-* /run/berth.*; do
  [ -e "$p" ] && leak "left behind: $p"
done

if [ $fail -ne 0 ]; then exit 1; fi
echo "leak check: nothing left behind"
