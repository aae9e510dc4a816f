# Sourced by the builders that fill ~/.cache/wa-operator (hack/control-plane/build.sh,
# hack/go-tools/build.sh); each defines log() first.

# Puts Go on PATH (the official tarball's /usr/local/go/bin when `go` is not already
# there), or says it is missing and returns 1.
require_go() {
  command -v go >/dev/null 2>&1 && return 0
  if [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
    return 0
  fi
  log "Go is required (https://go.dev/dl/); 'go' is not on PATH"
  return 1
}

# Serialises concurrent builds of one thing: holds an flock on LOCKFILE (fd 9) until the
# calling script exits. The caller checks again afterwards: the other build may be done.
build_lock() {
  local lockfile="$1"
  exec 9>"$lockfile"
  if command -v flock >/dev/null 2>&1; then
    if ! flock -n 9; then
      log "another build is running; waiting for its lock ($lockfile)"
      flock 9
    fi
  else
    log "warning: flock not found; not guarding against concurrent builds"
  fi
}

# Publishes a finished build: TMPDIR becomes DEST in one rename, replacing a broken
# leftover (the caller holds the lock, so nobody is using it), and the caller's EXIT
# trap that would remove TMPDIR is dropped.
publish_build() {
  local tmp="$1" dest="$2"
  chmod 755 "$tmp"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  trap - EXIT
}
