#!/usr/bin/env bash
# loadtests/profile.sh — the profile behind "Where the time goes" in BENCHMARKS.md (not a test).
#
# Owns: one profiled run of a scenario against a fresh release `weft serve` on MariaDB: the CPU
# split between processes (top), the server's context switches and CPU time (perf stat, 3 s)
# with the storage requests it answered meanwhile (per request; and the share that reached the
# database, `weft_storage_requests_total`), and its hottest objects and symbols (perf record,
# 4 s). Extra server settings come from the environment (e.g. WEFT_CACHE_MEMORY_BYTES=0). Needs `perf` (Debian: linux-perf),
# the release binaries (see BENCHMARKS.md) and MariaDB on 127.0.0.1:3306 (root, no password).
#
# Usage: loadtests/profile.sh SCENARIO "LOADTEST OPTIONS"
#   e.g. loadtests/profile.sh sync "--users 1000 --concurrency 32"
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source loadtests/lib.sh
SCENARIO="${1:?usage: profile.sh SCENARIO \"OPTIONS\"}"
OPTIONS="${2:-}"
PORT="$(free_port)"
METRICS_PORT="$(free_port)"
DB="weft_profile"
DATA="$(mktemp -d "${TMPDIR:-/tmp}/weft-profile.XXXXXX")"
SECRET="profile-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
OUT="target/profile"
mkdir -p "$OUT"

mariadb -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
WEFT_LISTEN="127.0.0.1:$PORT" WEFT_PUBLIC_URL="http://127.0.0.1:$PORT" WEFT_DATA_DIR="$DATA" \
    WEFT_DATABASE_URL="mysql://root@127.0.0.1:3306/$DB" WEFT_MASTER_SECRET=$SECRET WEFT_LOG=warn \
    WEFT_METRICS_ENABLED=true WEFT_METRICS_LISTEN="127.0.0.1:$METRICS_PORT" \
    target/release/weft serve > "$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$DATA"' EXIT
wait_listening "$SERVER" "$OUT/server.log" 50

# shellcheck disable=SC2086 # OPTIONS is a list of words on purpose
target/release/weft-loadtest --scenario "$SCENARIO" --target "http://127.0.0.1:$PORT" \
    --master-secret "$SECRET" $OPTIONS --duration 14 > "$OUT/$SCENARIO-loadtest.log" 2>&1 &
LOADTEST=$!
sleep 4
echo "CPU (%) by process:"
top -b -n1 -d2 | awk '$12 ~ /weft|mariadbd/ {print "  " $9 "% " $12}'
# "<storage requests that reached the database> <answered by the cache alone>"
storage_requests() {
    curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" | awk '/^weft_storage_requests_total\{/ {
        if ($1 ~ /answered_by="database"/) db += $2; else cache += $2 } END {print db + 0, cache + 0}'
}
echo "server, 3 s:"
read -r db0 cache0 <<<"$(storage_requests)"
perf stat -e context-switches,task-clock -p "$SERVER" -- sleep 3 2>"$OUT/$SCENARIO.stat" >/dev/null
read -r db1 cache1 <<<"$(storage_requests)"
awk '/context|task-clock/ {print "  " $1, $2}' "$OUT/$SCENARIO.stat"
switches="$(awk '/context-switches/ {gsub(",", "", $1); print $1}' "$OUT/$SCENARIO.stat")"
python3 -c 'import sys; db, cache, cs = (float(x) for x in sys.argv[1:]); n = db + cache
print(f"  {n:.0f} storage requests: {cs / n:.1f} context switches per request, {100 * db / n:.0f} % reached the database" if n else "  no storage requests")' \
    "$((db1 - db0))" "$((cache1 - cache0))" "$switches"
perf record -F 499 -g -p "$SERVER" -o "$OUT/$SCENARIO.perf" -- sleep 4 > /dev/null 2>&1
wait "$LOADTEST" || true
grep -E "requests " "$OUT/$SCENARIO-loadtest.log"
perf report -i "$OUT/$SCENARIO.perf" --no-children --sort dso --stdio 2>/dev/null | grep -E "^ +[0-9]" | head -5
perf report -i "$OUT/$SCENARIO.perf" --no-children --sort sym --stdio 2>/dev/null | grep -E "^ +[0-9]" | cut -c1-100 | head -12
mariadb -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS $DB"
