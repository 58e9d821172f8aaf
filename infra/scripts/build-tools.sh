#!/usr/bin/env bash
# Provides the image and chart tooling, built with Go from the module proxy into a cache folder keyed by
# version (like build-control-plane.sh): BuildKit's buildkitd + buildctl (daemonless image builds, see
# infra/image/build-image.ts) and helm. Prints the folder on the last line of stdout.
#
#   TCR_CACHE_DIR   cache root (default: $XDG_CACHE_HOME/tcr-assistant or ~/.cache/tcr-assistant)
#   BUILDKIT_VERSION / HELM_VERSION override the pinned releases.
set -euo pipefail

BUILDKIT_VERSION="${BUILDKIT_VERSION:-v0.34.2}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
BINS=(buildkitd buildctl helm)

log() { echo "[tools-build $(date +%H:%M:%S)] $*" >&2; }
have_all() { local d="$1"; for b in "${BINS[@]}"; do [ -x "$d/$b" ] || return 1; done; }

CACHE_ROOT="${TCR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tcr-assistant}"
OUT="$CACHE_ROOT/tools/buildkit-${BUILDKIT_VERSION}_helm-${HELM_VERSION}"
if have_all "$OUT"; then echo "$OUT"; exit 0; fi

command -v go >/dev/null || { echo "go is required to build buildkit and helm (not found on PATH)" >&2; exit 1; }
mkdir -p "$OUT"
exec 9>"$CACHE_ROOT/tools.lock"
flock 9
if have_all "$OUT"; then echo "$OUT"; exit 0; fi

# buildkit's go.mod has exclude directives, so `go install module@version` refuses it, and a wrapper module
# would ignore them (other dependency versions). Each release is built as its own main module instead: the
# module source from the proxy (go.mod, go.sum, excludes as released), `go build -mod=mod` of its command.
export CGO_ENABLED=0 GOTOOLCHAIN=local
START=$(date +%s)
build() { # <binary> <module> <version> <package dir> [ldflags]
  [ -x "$OUT/$1" ] && return 0
  local src; src=$(cd "$CACHE_ROOT" && go mod download -json "$2@$3" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  [ -d "$src" ] || { echo "could not download $2@$3 through the module proxy" >&2; exit 1; }
  local work="$CACHE_ROOT/work/$(basename "$2")-$3"
  if [ ! -f "$work/go.mod" ]; then
    rm -rf "$work"; mkdir -p "$(dirname "$work")"; cp -r "$src" "$work.tmp"; chmod -R u+w "$work.tmp"; mv "$work.tmp" "$work"
  fi
  log "building $1 from $2@$3 (minutes on 2 cores)"
  local t; t=$(date +%s)
  (cd "$work" && go build -mod=mod -trimpath -ldflags "-s -w ${5:-}" -o "$OUT/$1.tmp" "$4")
  mv "$OUT/$1.tmp" "$OUT/$1"
  log "built $1 in $(( $(date +%s) - t ))s"
}
build buildctl github.com/moby/buildkit "$BUILDKIT_VERSION" ./cmd/buildctl \
  "-X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION"
build buildkitd github.com/moby/buildkit "$BUILDKIT_VERSION" ./cmd/buildkitd \
  "-X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION"
build helm helm.sh/helm/v3 "$HELM_VERSION" ./cmd/helm \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"

log "tools ready in $OUT after $(( $(date +%s) - START ))s ($(du -sh "$OUT" | cut -f1))"
echo "$OUT"
