#!/usr/bin/env bash
# Makes sure the tools the browser test (test/integration/qr-web.test.ts) needs are
# installed: Debian's `chromium` (a real headless browser) and `zbar-tools` (zbarimg,
# which decodes the QR code from a screenshot). Installs them with apt-get when missing
# (CI runs as root on a fresh Debian machine); does nothing when both are present.
#
#   hack/browser.sh           install if needed; prints the chromium path
#   hack/browser.sh --check   exit 0 when both are installed, 1 otherwise; never installs
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v zbarimg >/dev/null 2>&1 || missing+=(zbar-tools)

if [ "${1:-}" = "--check" ]; then
  [ ${#missing[@]} -eq 0 ]
  exit
fi

if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "browser.sh: please install ${missing[*]} (Debian/Ubuntu package names); apt-get is not available here" >&2
    exit 1
  fi
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
      echo "browser.sh: installing ${missing[*]} needs root: sudo apt-get install ${missing[*]}" >&2
      exit 1
    fi
  fi
  echo "browser.sh: apt-get install ${missing[*]}" >&2
  log="$(mktemp)"
  # Waits for another apt/dpkg run instead of failing on its lock; the log is shown only on failure.
  if ! { "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq &&
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "browser.sh: apt-get install ${missing[*]} failed" >&2
    exit 1
  fi
  rm -f "$log"
fi
command -v chromium
