#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-controller-manager, kubectl, etcd)
# from the Go modules pinned in hack/control-plane/go.mod, into
#   ${WA_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wa-operator}/control-plane/<key>/bin
# and prints that bin directory as the last line on stdout (progress goes to stderr).
#
#   <key> = k8s-<kubernetes version>-etcd-<etcd version>-<go version>-<hash of go.mod+go.sum>
#
# Idempotent: nothing is built when the four binaries already exist and run. Concurrent
# invocations are serialised with flock; the build goes to a temp dir that is renamed
# into place, so a half-finished build is never visible. Writes nothing inside the repo.
#
#   hack/control-plane/build.sh           build if needed, print the bin dir
#   hack/control-plane/build.sh --check   print the bin dir and exit 0 if already built,
#                                         exit 1 (printing nothing) if not; never builds
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOL=control-plane
# shellcheck source=../lib/go-cache.sh
. "$here/../lib/go-cache.sh" "$@"
base="$cache_root/control-plane"

# Everything the key depends on is read from the module itself; GOWORK=off keeps a stray
# go.work from changing what gets built.
export GOWORK=off
cd "$here"
go_version="$(go env GOVERSION)"
hash="$(cat go.mod go.sum | sha256sum | cut -c1-12)"
# Versions come from the require lines in go.mod (no network, no module graph needed).
mod_version() { awk -v m="$1" '($1 == m && $2 ~ /^v/) { print $2; exit } ($1 == "require" && $2 == m) { print $3; exit }' go.mod; }
k8s_version="$(mod_version k8s.io/kubernetes)"
etcd_version="$(mod_version go.etcd.io/etcd/server/v3)"
if [ -z "$k8s_version" ] || [ -z "$etcd_version" ]; then
  log "cannot read the k8s.io/kubernetes / go.etcd.io/etcd/server/v3 versions from $here/go.mod"
  exit 1
fi
key="k8s-${k8s_version}-etcd-${etcd_version}-${go_version}-${hash}"
dest="$base/$key"
bin="$dest/bin"

# True when all four binaries exist and answer --version (kubectl: version --client).
healthy() {
  local d="$1"
  [ -x "$d/kube-apiserver" ] && [ -x "$d/kube-controller-manager" ] && [ -x "$d/kubectl" ] && [ -x "$d/etcd" ] || return 1
  "$d/kube-apiserver" --version >/dev/null 2>&1 &&
    "$d/kube-controller-manager" --version >/dev/null 2>&1 &&
    "$d/kubectl" version --client >/dev/null 2>&1 &&
    "$d/etcd" --version >/dev/null 2>&1
}

reuse_or_lock healthy "$bin" "$base"

tmp="$(mktemp -d "$base/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

minor="${k8s_version#v}"; minor="${minor#*.}"; minor="${minor%%.*}"
major="${k8s_version#v}"; major="${major%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
done

log "building kube-apiserver, kube-controller-manager, kubectl $k8s_version and etcd $etcd_version with $go_version"
log "  into $dest (a first build takes a while; later ones reuse the Go build cache)"
start=$SECONDS
mkdir -p "$tmp/bin"
# -mod=readonly: never touch go.mod/go.sum in the repo. `tool` builds every tool directive.
go build -mod=readonly -trimpath -ldflags "$ldflags" -o "$tmp/bin/" tool >&2
# go.etcd.io/etcd/server/v3 is the etcd server's main package; go names it after its last
# path element.
mv "$tmp/bin/server" "$tmp/bin/etcd"
if ! healthy "$tmp/bin"; then
  log "the built binaries do not run"
  exit 1
fi
if ! "$tmp/bin/kube-apiserver" --version | grep -qF "$k8s_version"; then
  log "kube-apiserver --version does not report $k8s_version: $("$tmp/bin/kube-apiserver" --version)"
  exit 1
fi
cat >"$tmp/build-info" <<EOF
kubernetes=$k8s_version
etcd=$etcd_version
go=$go_version
gomod_hash=$hash
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
EOF

publish_build "$tmp" "$dest"
log "built in $((SECONDS - start))s"
echo "$bin"
