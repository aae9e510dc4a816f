# Shared by the hack/*/build.sh scripts that build Go programs into the user's cache
# (${WA_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wa-operator}), so each one reads the
# same arguments, finds Go the same way and serialises builds the same way.
#
#   TOOL=name; . hack/lib/go-cache.sh "$@"
#
# reads the script's argument (sets mode=build, or mode=check for --check; --help prints the
# script's header comment), puts Go on PATH (or /usr/local/go/bin) or exits 1 saying so, sets
# cache_root, and defines:
#   log MESSAGE...              progress on stderr, prefixed with TOOL
#   publish_build TMP DEST      renames a finished build into place (hack/lib/cache-build.sh)
#   lock_go_cache DIR           takes DIR/.build.lock (flock on fd 9), waiting for another build
#   reuse_or_lock CHECK PATH DIR  prints PATH and exits 0 if `CHECK PATH` passes; else exits 1
#                               in --check mode, or takes DIR's lock and checks again (someone
#                               else may have finished the build meanwhile) before returning

log() { echo "$TOOL: $*" >&2; }

# require_go, build_lock and publish_build, which hack/go-tools/build.sh shares.
# shellcheck source=cache-build.sh
. "$(dirname "${BASH_SOURCE[0]}")/cache-build.sh"

go_cache_mode() {
  mode="build"
  case "${2:-}" in
    "") ;;
    --check) mode="check" ;;
    # The header comment: every line from the second up to `set -euo pipefail`.
    -h|--help) sed -n '2,/^set -euo pipefail/p' "$1" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "$(basename "$1"): unknown argument: $2" >&2; exit 2 ;;
  esac
}

lock_go_cache() {
  mkdir -p "$1"
  build_lock "$1/.build.lock"
}

reuse_or_lock() {
  if "$1" "$2"; then
    echo "$2"
    exit 0
  fi
  [ "$mode" = build ] || exit 1
  lock_go_cache "$3"
  if "$1" "$2"; then
    echo "$2"
    exit 0
  fi
}

go_cache_mode "${BASH_SOURCE[1]}" "${1:-}"
require_go
cache_root="${WA_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wa-operator}"
