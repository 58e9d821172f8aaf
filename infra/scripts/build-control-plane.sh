#!/usr/bin/env bash
# Provides real kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and etcd binaries, built
# with Go from the module proxy, into a cache folder keyed by version. Prints the folder on the last line of stdout.
#
#   KUBEBUILDER_ASSETS  folder that already has the three binaries (envtest convention): used as is.
#   TCR_CACHE_DIR       cache root (default: $XDG_CACHE_HOME/tcr-assistant or ~/.cache/tcr-assistant),
#                       outside the work tree so that fresh clones (CI) on the same machine reuse it.
#   K8S_VERSION / ETCD_VERSION override the pinned releases.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
BINS=("${K8S_BINS[@]}" etcd)

log() { echo "[control-plane-build $(date +%H:%M:%S)] $*" >&2; }

have_all() { local d="$1"; for b in "${BINS[@]}"; do [ -x "$d/$b" ] || return 1; done; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && have_all "$KUBEBUILDER_ASSETS"; then
  log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS (nothing to build)"
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

CACHE_ROOT="${TCR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tcr-assistant}"
OUT="$CACHE_ROOT/control-plane/k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}"
if have_all "$OUT"; then
  echo "$OUT"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build the control plane (not found on PATH)" >&2; exit 1; }
mkdir -p "$OUT" "$CACHE_ROOT/work"
# One builder at a time per cache (parallel test runs, CI right after a session).
exec 9>"$CACHE_ROOT/build.lock"
flock 9
if have_all "$OUT"; then echo "$OUT"; exit 0; fi

export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=mod" GOTOOLCHAIN=local
START=$(date +%s)

# ---- kube-apiserver + kube-controller-manager ------------------------------------------------
missing_k8s=()
for b in "${K8S_BINS[@]}"; do [ -x "$OUT/$b" ] || missing_k8s+=("$b"); done
if [ ${#missing_k8s[@]} -gt 0 ]; then
  KW="$CACHE_ROOT/work/k8s-$K8S_VERSION"
  rm -rf "$KW"; mkdir -p "$KW"
  log "downloading k8s.io/kubernetes@$K8S_VERSION go.mod through the module proxy"
  GOMOD_PATH=$(cd "$KW" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  [ -f "$GOMOD_PATH" ] || { echo "could not locate go.mod of k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }
  STAGING_VERSION="v0.${K8S_VERSION#v1.}"
  # Every `k8s.io/X => ./staging/src/k8s.io/X` of that go.mod becomes `k8s.io/X => k8s.io/X v0.N.M`.
  REPLACES=$(grep -oE 'k8s\.io/[A-Za-z0-9._/-]+ => \./staging/src/k8s\.io/[A-Za-z0-9._/-]+' "$GOMOD_PATH" \
    | awk -v v="$STAGING_VERSION" '{print "\t" $1 " => " $1 " " v}' | sort -u)
  [ -n "$REPLACES" ] || { echo "no staging replace directives found in $GOMOD_PATH" >&2; exit 1; }
  log "generated $(echo "$REPLACES" | wc -l) replace directives (staging modules at $STAGING_VERSION)"
  GOVER=$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$GOMOD_PATH" | head -1)
  cat >"$KW/go.mod" <<GOMOD
module tcr-assistant.local/control-plane-build

go ${GOVER}

require k8s.io/kubernetes $K8S_VERSION

replace (
$REPLACES
)
GOMOD
  cat >"$KW/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
  log "resolving dependencies (go mod tidy)"
  (cd "$KW" && go mod tidy 2>&1 | sed 's/^/  /' >&2)
  for cmd in "${missing_k8s[@]}"; do
    log "building $cmd $K8S_VERSION (takes minutes on 2 cores)"
    t=$(date +%s)
    (cd "$KW" && go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)" -o "$OUT/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
    mv "$OUT/$cmd.tmp" "$OUT/$cmd"
    log "built $cmd in $(( $(date +%s) - t ))s"
  done
fi

# ---- etcd ------------------------------------------------------------------------------------
if [ ! -x "$OUT/etcd" ]; then
  EW="$CACHE_ROOT/work/etcd-$ETCD_VERSION"
  rm -rf "$EW"; mkdir -p "$EW"
  cat >"$EW/go.mod" <<GOMOD
module tcr-assistant.local/etcd-build

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
  cat >"$EW/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  log "resolving etcd $ETCD_VERSION dependencies"
  (cd "$EW" && go mod tidy 2>&1 | sed 's/^/  /' >&2)
  log "building etcd $ETCD_VERSION"
  t=$(date +%s)
  (cd "$EW" && go build -trimpath -ldflags "-s -w" -o "$OUT/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$OUT/etcd.tmp" "$OUT/etcd"
  log "built etcd in $(( $(date +%s) - t ))s"
fi

log "control plane binaries ready in $OUT after $(( $(date +%s) - START ))s ($(du -sh "$OUT" | cut -f1))"
echo "$OUT"
