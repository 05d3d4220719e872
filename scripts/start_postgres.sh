#!/usr/bin/env bash
# Starts a throw-away PostgreSQL (Debian's packages) on 127.0.0.1:${PGPORT:-55432} in var/pg and
# prints the URL for IVR_TEST_PG_URL. Runs the server as the 'postgres' user when we are root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"  # runuser lives there; a minimal CI PATH may lack it
PORT=${PGPORT:-55432}
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x "$BIN/initdb" ]] || { echo "start_postgres: PostgreSQL binaries not found (apt-get install postgresql)" >&2; exit 1; }
DATA=${PGDATA_DIR:-/tmp/ivr-pg-$PORT}
RUN_AS=()
if [[ $(id -u) == 0 ]]; then
    RUN_AS=(runuser -u postgres --)
fi
if ! "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    rm -rf "$DATA"
    mkdir -p "$DATA"
    [[ $(id -u) == 0 ]] && chown postgres:postgres "$DATA"
    "${RUN_AS[@]}" "$BIN/initdb" -D "$DATA" -U ivr --auth=trust -E UTF8 >/dev/null
    "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$DATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null
fi
for _ in $(seq 1 50); do
    if "$BIN/pg_isready" -h 127.0.0.1 -p "$PORT" >/dev/null 2>&1; then break; fi
    sleep 0.2
done
"$BIN/psql" -h 127.0.0.1 -p "$PORT" -U ivr -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='ivr_test'" | grep -q 1 \
    || "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U ivr -d postgres -qc "CREATE DATABASE ivr_test" >/dev/null
echo "postgresql+psycopg://ivr@127.0.0.1:$PORT/ivr_test"
