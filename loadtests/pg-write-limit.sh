#!/usr/bin/env bash
# loadtests/pg-write-limit.sh — what bounds PostgreSQL's write rate (loadtests/BENCHMARKS.md).
#
# Owns: one release `weft serve` on a fresh PostgreSQL database, the write scenario for 10 s,
# and while it runs the wait events of that database's active backends (pg_stat_activity, every
# 0.1 s) and the CPU time the server and the PostgreSQL processes used. With `async` the
# database commits without waiting for the WAL flush (synchronous_commit = off): if the rate
# does not move, the flush is not the limit.
#
# Usage: loadtests/pg-write-limit.sh [default|async]
# Needs: cargo build --release --bin weft --bin weft-loadtest -p weft -p weft-loadtests, and
#        PostgreSQL at $WEFT_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source loadtests/lib.sh
MODE="${1:-default}"
PG="${WEFT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
DB="weft_bench_pglimit_$(date +%s)"
DATA="$(mktemp -d "${TMPDIR:-/tmp}/weft-pglimit.XXXXXX")"
PORT="$(free_port)"
SECRET="bench-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
SERVER=""
cleanup() {
    stop_pid "$SERVER"
    psql -X -q -d "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
    rm -rf "$DATA"
}
trap cleanup EXIT

psql -X -q -d "$PG/postgres" -c "CREATE DATABASE $DB TEMPLATE template0 ENCODING 'UTF8'"
[ "$MODE" = async ] && psql -X -q -d "$PG/postgres" -c "ALTER DATABASE $DB SET synchronous_commit = off"

WEFT_LISTEN="127.0.0.1:$PORT" WEFT_PUBLIC_URL="http://127.0.0.1:$PORT" WEFT_DATA_DIR="$DATA" \
    WEFT_DATABASE_URL="$PG/$DB" WEFT_MASTER_SECRET="$SECRET" \
    target/release/weft serve >"$DATA/server.log" 2>&1 </dev/null &
SERVER=$!
wait_listening "$SERVER" "$DATA/server.log"

# Clock ticks (utime + stime) of the processes whose command line matches $1.
ticks() {
    local total=0 pid
    for pid in $(pgrep -f "$1"); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
hz="$(getconf CLK_TCK)"
weft0="$(ticks "^target/release/weft serve")"
pg0="$(ticks '^postgres')"
(
    for _ in $(seq 95); do
        psql -X -Atq -d "$PG/postgres" -c "SELECT coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, '-')
            FROM pg_stat_activity WHERE datname = '$DB' AND state = 'active'"
        sleep 0.1
    done
) >"$DATA/waits" &
sampler=$!
target/release/weft-loadtest --scenario write --users 1000 --concurrency 16 --duration 10 --no-progress \
    --target "http://127.0.0.1:$PORT" --master-secret "$SECRET" >"$DATA/loadtest.log" 2>&1
wait "$sampler" || true
echo "synchronous_commit: $([ "$MODE" = async ] && echo off || echo on)"
grep -m1 '^  requests' "$DATA/loadtest.log"
echo "CPU seconds during the run: weft $(( ($(ticks "^target/release/weft serve") - weft0) / hz )), PostgreSQL $(( ($(ticks '^postgres') - pg0) / hz ))"
echo "wait events of active backends (samples):"
sort "$DATA/waits" | uniq -c | sort -rn | head -8
