#!/usr/bin/env bash
# node-guard.sh DIR CGROUP -- INIT_ARGS...     (run the node)
# node-guard.sh --cleanup CGROUP                (remove the node's cgroups once its processes are gone)
# Runs the local node: node-init.sh as PID 1 of a new mount + PID namespace (unshare). However it ends
# (stop, the runner killed: supervise.sh sends TERM, or the node's init dying) the namespace is killed as a
# whole (unshare --kill-child: SIGKILL to its init makes the kernel kill every process of the PID namespace,
# containers included; the private mounts go with the mount namespace), then the node's cgroups are removed
# from every cgroup hierarchy. DIR itself is removed by the caller (or by supervise.sh).
set -u

remove_cgroups() { # CGROUP: rmdir depth-first in every hierarchy, retrying while the kernel tears down
  local cgroup="$1" mp left=""
  for mp in $(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts); do
    [ -d "$mp/$cgroup" ] || continue
    for _ in $(seq 1 150); do
      find "$mp/$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null
      [ -d "$mp/$cgroup" ] || break
      sleep 0.1
    done
    [ -d "$mp/$cgroup" ] && left="$left $mp/$cgroup"
  done
  [ -z "$left" ] || echo "node-guard: could not remove cgroups:$left" >&2
}

if [ "${1:-}" = "--cleanup" ]; then remove_cgroups "$2"; exit 0; fi

dir="$1"; cgroup="$2"; shift 2; [ "${1:-}" = "--" ] && shift
here="$(cd "$(dirname "$0")" && pwd)"
# Our output goes to a file, not to the runner's pipe: when the runner is killed that pipe breaks, and a
# write to it (bash reporting the killed unshare) would end this guard with SIGPIPE before its cleanup.
exec >>"$dir/log/guard.log" 2>&1
trap '' PIPE

unshare --mount --pid --fork --mount-proc --propagation private --kill-child \
  bash "$here/node-init.sh" "$dir" "$@" &
ns=$!
on_term() { kill -KILL "$ns" 2>/dev/null; }
trap on_term TERM INT HUP

# The namespace's init as the host numbers it: /proc/<init>/root/proc is the node's own procfs.
init=""
for _ in $(seq 1 200); do
  init=$(pgrep -P "$ns" | head -n1)
  [ -n "$init" ] && break
  kill -0 "$ns" 2>/dev/null || break
  sleep 0.05
done
[ -n "$init" ] && echo "$init" >"$dir/init.pid"

rc=0
while kill -0 "$ns" 2>/dev/null; do wait "$ns"; rc=$?; done
# unshare is gone; its init (killed by PDEATHSIG) and the namespace may still be tearing down: the
# cgroups empty out when the kernel has killed the last process.
remove_cgroups "$cgroup"
exit "$rc"
