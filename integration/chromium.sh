#!/usr/bin/env bash
# Installs Debian's chromium package (idempotent) for the status page's
# browser test (service/browser_test.go), and prints where it is.
#   integration/chromium.sh install   # installs when missing (as root), prints the path
#   integration/chromium.sh path      # prints the path, or exits 1
# Only the path goes to stdout.
set -euo pipefail
find_() {
  for c in chromium chromium-browser; do
    if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
  done
  return 1
}
case "${1:-install}" in
  path) find_ ;;
  install)
    if find_; then exit 0; fi
    [ "$(id -u)" = 0 ] || { echo "chromium: not installed; run as root or: apt-get install chromium" >&2; exit 1; }
    echo "chromium: installing Debian's chromium package (once)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium </dev/null >&2
    find_
    ;;
  *) echo "usage: $0 install|path" >&2; exit 2 ;;
esac
