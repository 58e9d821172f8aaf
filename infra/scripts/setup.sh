#!/usr/bin/env bash
# Idempotent machine setup for development, tests and CI: Debian packages, npm dependencies and the
# control-plane binaries. Safe to run on every `npm test` / `npm start`: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { echo "[setup] $*" >&2; }

# Debian packages: redis-server (queue), openssl (local PKI), util-linux (flock), and for the registry
# pull test docker-registry + skopeo.
DEBS=(redis-server openssl util-linux docker-registry skopeo containerd runc containernetworking-plugins iproute2)
missing=()
for p in "${DEBS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  # policy-rc.d keeps the packages' own services (a system redis on 6379, a registry on 5000) from
  # starting: our tooling starts its own instances on free loopback ports.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null; $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm dependencies, from the lock file, when missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

# kube-apiserver, kube-controller-manager and etcd, built once per machine (minutes), then cached.
bash infra/scripts/build-control-plane.sh >/dev/null
# buildkitd + buildctl (the image build) and helm (the chart's tests), built once per machine, then cached.
bash infra/scripts/build-tools.sh >/dev/null
log "ready"
