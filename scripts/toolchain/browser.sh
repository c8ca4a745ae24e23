#!/usr/bin/env bash
# Installs Debian's Chromium, and a Hangul font so the page shows Korean, for the admin
# dashboard's browser test when /usr/bin/chromium is missing. Playwright drives this browser:
# `playwright install` downloads a browser build of its own, which machines that reach only the
# package registries cannot fetch. Needs root, or sudo without a password.
set -euo pipefail
[[ -x /usr/bin/chromium ]] && exit 0
as_root=()
if [[ "$(id -u)" != 0 ]]; then
  if ! command -v sudo >/dev/null; then
    echo "browser: /usr/bin/chromium is missing; as root: apt-get install chromium fonts-nanum" >&2
    exit 1
  fi
  as_root=(sudo -n)
fi
echo "setup: chromium (apt-get install chromium fonts-nanum)" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-nanum >/dev/null
/usr/bin/chromium --version >&2
