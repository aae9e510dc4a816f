#!/usr/bin/env bash
# Builds gitops-health (kstatus + Argo CD's Lua engine, see main.go) from this Go module into
#   ${WA_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wa-operator}/gitops-health/<key>/gitops-health
# and prints the binary's path as the last line on stdout (progress goes to stderr).
#
#   <key> = <go version>-<hash of go.mod, go.sum and *.go>
#
# Idempotent and flock'ed like hack/control-plane/build.sh; writes nothing inside the repo.
#
#   hack/gitops-health/build.sh           build if needed, print the binary's path
#   hack/gitops-health/build.sh --check   print it and exit 0 if already built, else exit 1
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOL=gitops-health
# shellcheck source=../lib/go-cache.sh
. "$here/../lib/go-cache.sh" "$@"
base="$cache_root/gitops-health"
export GOWORK=off
cd "$here"
key="$(go env GOVERSION)-$(cat go.mod go.sum ./*.go | sha256sum | cut -c1-12)"
binary="$base/$key/gitops-health"

# The helper answers --help with a usage text and exit 0 only when it runs at all.
healthy() { [ -x "$1" ] && "$1" -h >/dev/null 2>&1; }

reuse_or_lock healthy "$binary" "$base"
tmp="$(mktemp -d "$base/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
log "building with $(go env GOVERSION) into $base/$key"
start=$SECONDS
# No VCS stamp: a checkout without git (or owned by another user) must build too.
go build -mod=readonly -buildvcs=false -trimpath -ldflags "-s -w" -o "$tmp/gitops-health" . >&2
healthy "$tmp/gitops-health" || { log "the built binary does not run"; exit 1; }
chmod 755 "$tmp"
rm -rf "${base:?}/$key"
mv "$tmp" "$base/$key"
trap - EXIT
log "built in $((SECONDS - start))s"
echo "$binary"
