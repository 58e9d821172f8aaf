#!/usr/bin/env bash
# node-init.sh DIR KUBELET PAUSE_ARCHIVE
# PID 1 of the node's private mount + PID namespace (started by node-guard.sh). Everything the node could
# change on the machine is replaced by a private copy first, visible only inside this namespace:
#   /run, /var/lib (containerd's and the kubelet's state), /var/log (pod logs, /var/log/containers),
#   /etc/hosts (loopback entries only), /etc/resolv.conf (loopback nameserver), and the /proc/sys files the
#   kubelet rewrites at start. Then containerd starts, the pause image is imported, and the kubelet starts.
# The first of containerd and the kubelet to end ends the node.
set -euo pipefail
dir="$1"; kubelet="$2"; pause="$3"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
log() { echo "[node-init $(date +%H:%M:%S.%N | cut -c1-12)] $*" >>"$dir/log/node.log"; }

resolv_target=$(readlink -f /etc/resolv.conf)
mount --make-rprivate /
mount -t tmpfs -o mode=0755,size=256m none /run
mount --bind "$dir/var-lib" /var/lib
mount --bind "$dir/var-log" /var/log
mount --bind "$dir/etc/hosts" /etc/hosts
if [ -e /etc/resolv.conf ] && [ "${resolv_target#/run/}" = "$resolv_target" ]; then
  mount --bind "$dir/etc/resolv.conf" /etc/resolv.conf
else
  # A link into /run (systemd-resolved): its target now lives in our private /run.
  mkdir -p "$(dirname "$resolv_target")"; cp "$dir/etc/resolv.conf" "$resolv_target"
fi
while read -r key; do
  [ -n "$key" ] && mount --bind "$dir/sysctl/$key" "/proc/sys/${key//.//}"
done <"$dir/sysctls"
log "private /run, /var/lib, /var/log, /etc/hosts, /etc/resolv.conf and sysctl copies mounted"

containerd --config "$dir/containerd.toml" >>"$dir/log/containerd.log" 2>&1 &
sock="$dir/containerd.sock"
for _ in $(seq 1 400); do
  [ -S "$sock" ] && ctr -a "$sock" version >/dev/null 2>&1 && break
  sleep 0.05
done
log "containerd up"
ctr -a "$sock" -n k8s.io images import "$pause" >>"$dir/log/node.log" 2>&1
log "pause image imported"
"$kubelet" --config="$dir/kubelet.yaml" --kubeconfig="$dir/kubelet.kubeconfig" \
  --hostname-override=127.0.0.1 --v="${TCR_KUBELET_V:-1}" >>"$dir/log/kubelet.log" 2>&1 &
log "kubelet started"
set +e
wait -n
rc=$?
log "containerd or the kubelet ended (exit $rc): the node ends"
exit "$rc"
