#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine: Debian packages (the voice
# engine; with --test also PostgreSQL and Chromium), then a virtual environment in .venv with the
# package and its dependencies from PyPI. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

WANT_TEST=0
[[ "${1:-}" == "--test" ]] && WANT_TEST=1

APT_PKGS=(espeak-ng)
if [[ $WANT_TEST == 1 ]]; then
    APT_PKGS+=(postgresql chromium sox)
fi

missing=()
for pkg in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
    SUDO=""
    [[ $(id -u) != 0 ]] && SUDO="sudo"
    echo "setup: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [[ $WANT_TEST == 1 ]]; then
    .venv/bin/python -m pip install -q -e '.[test]'
else
    .venv/bin/python -m pip install -q -e .
fi
echo "setup: done (.venv ready)"
