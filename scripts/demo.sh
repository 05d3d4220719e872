#!/usr/bin/env bash
# The main job on embedded defaults: installs what is needed, then runs `ivr demo` (SQLite and the
# built-in Asterisk simulator; no .env needed). Extra arguments go to `ivr demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/ivr demo "$@"
