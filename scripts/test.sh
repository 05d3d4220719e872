#!/usr/bin/env bash
# The test command: installs what the tests need (Debian: espeak-ng, PostgreSQL, Chromium; PyPI:
# the package with its test extras), starts PostgreSQL, then runs lint, types and the whole suite
# on SQLite and PostgreSQL, with the browser tests in Debian's Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# a plain assignment, so that a failed PostgreSQL start stops the run here (set -e)
if [[ -z "${IVR_TEST_PG_URL:-}" ]]; then
    IVR_TEST_PG_URL=$(scripts/start_postgres.sh)
fi
export IVR_TEST_PG_URL
export IVR_CHROMIUM=${IVR_CHROMIUM:-/usr/bin/chromium}
.venv/bin/ruff check ivr tests scripts
.venv/bin/mypy ivr
.venv/bin/python -m pytest -p no:cacheprovider "$@"
