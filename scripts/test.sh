#!/usr/bin/env bash
# The test command: installs what the tests need (Debian: espeak-ng, PostgreSQL, Chromium; PyPI:
# the package with its test extras), starts a private PostgreSQL, then runs lint, types and the
# whole suite on SQLite and PostgreSQL, with the browser tests in Debian's Chromium. Arguments go
# to pytest (scripts/test.sh tests/db -q).
#
# The PostgreSQL is this run's own: a fresh data folder under /tmp named after this checkout
# (/tmp/ivr-pg-<hash of the checkout path>.XXXXXX), listening only on a unix socket inside it. It
# is stopped and its folder deleted when the run ends, also on failure and Ctrl-C. With
# IVR_TEST_PG_URL set, no server is started and that one is used.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin:/usr/bin:/bin"
scripts/setup.sh --test

PG_DIR=""
stop_postgres() {
    if [[ -n "$PG_DIR" ]]; then
        scripts/start_postgres.sh --stop "$PG_DIR" || echo "test.sh: could not stop PostgreSQL in $PG_DIR" >&2
        PG_DIR=""
    fi
}
trap stop_postgres EXIT
# a signal ends the run through `exit`, so the EXIT trap above stops the server
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [[ -z "${IVR_TEST_PG_URL:-}" ]]; then
    checkout_hash=$(printf '%s' "$PWD" | sha256sum | cut -c1-12)
    PG_DIR=$(mktemp -d "/tmp/ivr-pg-$checkout_hash.XXXXXX")
    # a plain assignment, so that a failed PostgreSQL start stops the run here (set -e)
    IVR_TEST_PG_URL=$(scripts/start_postgres.sh "$PG_DIR")
fi
export IVR_TEST_PG_URL
export IVR_CHROMIUM=${IVR_CHROMIUM:-/usr/bin/chromium}
.venv/bin/ruff check ivr tests scripts
.venv/bin/mypy ivr
# not exec: the EXIT trap must still run after pytest
.venv/bin/python -m pytest -p no:cacheprovider "$@"
