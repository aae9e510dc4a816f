#!/usr/bin/env bash
# Builds (or fetches) one thing the tests need from the Go module pinned in
# hack/go-tools/<name>/go.mod, into
#   ${WA_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wa-operator}/go-tools/<name>-<key>/
# and prints that directory as the last line on stdout (progress goes to stderr).
#
#   <key> = <go version>-<hash of the go.mod, go.sum and *.go in hack/go-tools/<name>>
#
#   helm                      <dir>/helm: helm.sh/helm/v4/cmd/helm, its version stamped in
#   actionlint                <dir>/actionlint: the GitHub Actions workflow linter
#                             (github.com/rhysd/actionlint/cmd/actionlint), its version stamped in
#   promrules                 <dir>/promrules: Prometheus's rule and PromQL parsers (main.go)
#   prometheus-operator-crds  <dir>/*.yaml: the ServiceMonitor, PodMonitor and PrometheusRule
#                             CRDs from the prometheus-operator module (checked by go.sum)
#
# Like hack/control-plane/build.sh: idempotent, concurrent runs serialised with flock,
# built in a temp dir that is renamed into place, nothing written inside the repo.
#
#   hack/go-tools/build.sh NAME           build if needed, print the directory
#   hack/go-tools/build.sh NAME --check   print the directory if built (exit 0), else exit 1
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "go-tools: $*" >&2; }
usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

name="${1:-}"
case "$name" in
  ""|-h|--help) usage ;;
esac
[ -f "$here/$name/go.mod" ] || { log "unknown: $name (no $here/$name/go.mod)"; exit 2; }
mode="build"
case "${2:-}" in
  "") ;;
  --check) mode="check" ;;
  *) usage ;;
esac

# shellcheck source=../lib/cache-build.sh
. "$here/../lib/cache-build.sh"
require_go || exit 1

# Nothing outside the module decides what is built: no go.work, no edits to go.mod/go.sum,
# no VCS stamp (the binaries are keyed by their inputs, not by the checkout).
export GOWORK=off GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly -buildvcs=false"
cd "$here/$name"
go_version="$(go env GOVERSION)"
hash="$(cat go.mod go.sum $(ls *.go 2>/dev/null) | sha256sum | cut -c1-12)"
base="${WA_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wa-operator}/go-tools"
dest="$base/$name-$go_version-$hash"

# build-info is written last, so its presence means the directory is complete.
healthy() { [ -f "$1/build-info" ]; }

if healthy "$dest"; then echo "$dest"; exit 0; fi
[ "$mode" = check ] && exit 1

mkdir -p "$base"
build_lock "$base/.build-$name.lock"
if healthy "$dest"; then echo "$dest"; exit 0; fi

tmp="$(mktemp -d "$base/.build-$name.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# A module's version, from its require line in go.mod (no network needed to read it).
mod_version() { awk -v m="$1" '($1 == m && $2 ~ /^v/) { print $2; exit } ($1 == "require" && $2 == m) { print $3; exit }' go.mod; }

log "building $name with $go_version into $dest"
start=$SECONDS
case "$name" in
  helm)
    version="$(mod_version helm.sh/helm/v4)"
    go build -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" -o "$tmp/" tool >&2
    "$tmp/helm" version --short >&2
    ;;
  actionlint)
    version="$(mod_version github.com/rhysd/actionlint)"
    go build -trimpath -ldflags "-s -w -X github.com/rhysd/actionlint.version=$version" -o "$tmp/" tool >&2
    "$tmp/actionlint" -version >&2
    ;;
  promrules)
    go build -trimpath -ldflags "-s -w" -o "$tmp/" . >&2
    ;;
  prometheus-operator-crds)
    module=github.com/prometheus-operator/prometheus-operator
    dir="$(go mod download -json "$module" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    for kind in servicemonitors podmonitors prometheusrules; do
      cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$tmp/"
    done
    chmod 644 "$tmp"/*.yaml
    ;;
  *)
    log "build.sh does not know how to build $name"
    exit 2
    ;;
esac
cat >"$tmp/build-info" <<INFO
name=$name
go=$go_version
hash=$hash
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
INFO
publish_build "$tmp" "$dest"
log "built $name in $((SECONDS - start))s"
echo "$dest"
