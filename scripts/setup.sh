#!/usr/bin/env bash
# Install what finpatrol needs on a fresh Debian machine: Chromium and a CJK font
# (rendering and screenshots), then a virtualenv in .venv with the pinned packages.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fc-list 2>/dev/null | grep -qi "wenquanyi micro hei" || missing+=(fonts-wqy-microhei)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" fontconfig >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=.venv/.finpatrol-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  echo "setup: installing Python packages into .venv"
  # pipefail keeps pip's exit status; the filter only drops this machine's find-links noise.
  .venv/bin/python -m pip install -q -c constraints.txt -e '.[test]' 2>&1 \
    | { grep -v "^WARNING: Location" || true; }
  .venv/bin/finpatrol --help >/dev/null
  touch "$stamp"
fi
