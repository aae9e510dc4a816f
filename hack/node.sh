#!/usr/bin/env bash
# Prints the bin directory of a pinned Node LTS, installing it from the npm registry
# (the node-<os>-<arch> package carries the official binary) into the cache on first use.
set -euo pipefail
version="${WA_NODE_VERSION:-24.21.0}"
cache="${WA_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wa-operator}"
os=$(uname -s | tr '[:upper:]' '[:lower:]')
case "$(uname -m)" in x86_64) arch=x64 ;; aarch64|arm64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
dir="$cache/node-v$version"
bin="$dir/node_modules/node-$os-$arch/bin"
if [ ! -x "$bin/node" ]; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund \
    "node-$os-$arch@$version" >&2
fi
"$bin/node" --version >/dev/null
echo "$bin"
