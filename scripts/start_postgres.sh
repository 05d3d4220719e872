#!/usr/bin/env bash
# A throw-away PostgreSQL (Debian's packages) for one test run, private to its caller.
#
#   scripts/start_postgres.sh DIR         initdb in DIR (new or empty), start the server, create
#                                         the ivr_test database, print its URL for IVR_TEST_PG_URL
#   scripts/start_postgres.sh --stop DIR  stop the server started in DIR and delete DIR
#
# The server listens on a unix socket inside DIR and on no TCP port, so two checkouts (or two runs
# of one checkout) never meet on a port or a data folder. Nothing else is touched: --stop stops
# only the server whose pid file is in DIR. When we are root, the server runs as the 'postgres'
# user (PostgreSQL refuses root); DIR is then handed to that user, so it must sit where 'postgres'
# can reach it (scripts/test.sh uses a fresh folder under /tmp, mode 0700).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin:/usr/bin:/bin"  # runuser lives in sbin; a minimal CI PATH may lack it

die() { echo "start_postgres: $*" >&2; exit 1; }

STOP=0
if [[ "${1:-}" == "--stop" ]]; then
    STOP=1
    shift
fi
[[ $# == 1 && -n "$1" ]] || die "usage: start_postgres.sh [--stop] DIR"
DATA=$1
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x "$BIN/initdb" ]] || die "PostgreSQL binaries not found (apt-get install postgresql)"
RUN_AS=()
if [[ $(id -u) == 0 ]]; then
    RUN_AS=(runuser -u postgres --)
fi

if [[ $STOP == 1 ]]; then
    [[ -d "$DATA" ]] || exit 0
    if [[ -f "$DATA/postmaster.pid" ]]; then
        "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    fi
    # a server that did not stop (or was still starting when pg_ctl looked): its pid file says
    # which process it is, and only that one is killed
    if [[ -f "$DATA/postmaster.pid" ]]; then
        pid=$(head -1 "$DATA/postmaster.pid" 2>/dev/null || true)
        if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
            kill -QUIT "$pid" 2>/dev/null || true  # immediate shutdown
            for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
    fi
    rm -rf "$DATA"
    exit 0
fi

mkdir -p "$DATA"
chmod 0700 "$DATA"
[[ -z "$(ls -A "$DATA")" ]] || die "$DATA is not empty; give a new folder"
[[ $(id -u) == 0 ]] && chown postgres:postgres "$DATA"
"${RUN_AS[@]}" "$BIN/initdb" -D "$DATA" -U ivr --auth=trust -E UTF8 >"$DATA.initdb.log" 2>&1 \
    || { cat "$DATA.initdb.log" >&2; rm -f "$DATA.initdb.log"; die "initdb failed in $DATA"; }
rm -f "$DATA.initdb.log"
# the socket's file name carries the port (.s.PGSQL.5432); with listen_addresses='' no TCP port
# is opened, so this number collides with nothing
"${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c port=5432 -c unix_socket_directories=$DATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { tail -20 "$DATA/server.log" >&2 || true; die "the server in $DATA did not start"; }
"$BIN/psql" -h "$DATA" -p 5432 -U ivr -d postgres -qc "CREATE DATABASE ivr_test" >/dev/null
echo "postgresql+psycopg://ivr@/ivr_test?host=$DATA&port=5432"
