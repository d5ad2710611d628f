#!/usr/bin/env bash
# loadtests/purge-bench.sh — the deleter beside load, behind loadtests/BENCHMARKS.md ("Deferred
# deletes"); not part of the tests.
#
# Owns: one release `weft serve` on a fresh MariaDB database (deleter on, its default pacing,
# a pass every second), ROWS rows of three users whose collections are pending deletion, and
# two runs of `weft-loadtest --scenario sync`: one before the deletions are recorded (nothing to
# purge) and one while the deleter removes them. Prints each run's p99 (slowest kind) and
# requests/s, and the deleter's rate during the second run (rows removed / run time).
#
# Usage: loadtests/purge-bench.sh [SECONDS] [ROWS] [CONCURRENCY]   (default 20 s, 300000 rows, 32)
# Needs: cargo build --release --features mysql --bin weft --bin weft-loadtest -p weft -p weft-loadtests
#        and MariaDB on 127.0.0.1:3306 that root can use without a password.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source loadtests/lib.sh
SECONDS_PER_RUN="${1:-20}"
ROWS="${2:-300000}"
CONCURRENCY="${3:-32}"
WEFT=target/release/weft
LT=target/release/weft-loadtest
OUT=target/bench/purge
DB="weft_purgebench_$(date +%s)"
rm -rf "$OUT" && mkdir -p "$OUT"
DATA="$(mktemp -d "${TMPDIR:-/tmp}/weft-purgebench.XXXXXX")"
sql() { mariadb -h127.0.0.1 -uroot -N -B "$DB" -e "$1"; }
mariadb -h127.0.0.1 -uroot -e "CREATE DATABASE \`$DB\`"

PORT="$(free_port)"
URL="http://127.0.0.1:$PORT"
SECRET="bench-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PID=""
cleanup() {
    stop_pid "$PID"
    rm -rf "$DATA"
    mariadb -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS \`$DB\`" || true
}
trap cleanup EXIT

env -u WEFT_TEST_MYSQL_URL -u WEFT_TEST_POSTGRES_URL -u WEFT_TEST_MEMCACHED \
    WEFT_LISTEN="127.0.0.1:$PORT" WEFT_PUBLIC_URL="$URL" WEFT_DATA_DIR="$DATA" \
    WEFT_DATABASE_URL="mysql://root@127.0.0.1:3306/$DB" WEFT_MASTER_SECRET="$SECRET" \
    WEFT_PURGE_INTERVAL_SECONDS=1 \
    "$WEFT" serve >"$OUT/server.log" 2>&1 </dev/null &
PID=$!
wait_listening "$PID" "$OUT/server.log"

# Three users' history (collection 4), written long ago; uids far from the generator's.
PER_USER=$((ROWS / 3))
for uid in 900000001 900000002 900000003; do
    sql "INSERT INTO bso (userid, collection, id, sortindex, payload, modified, ttl, payload_size)
         SELECT $uid, 4, CONCAT('r', seq), NULL, REPEAT('x', 500), 1000, 4000000000000, 500 FROM seq_1_to_$PER_USER"
done
echo "stored $(sql 'SELECT COUNT(*) FROM bso') rows"

run() {
    "$LT" --scenario sync --target "$URL" --master-secret "$SECRET" --duration "$SECONDS_PER_RUN" \
        --seed "$2" --no-progress --users 1000 --concurrency "$CONCURRENCY" --json "$OUT/$1.json" >"$OUT/$1.log" 2>&1
    python3 - "$OUT/$1.json" "$1" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
p99 = max((k["p99_ms"] for k in r["latency"].values()), default=0)
print(f"{sys.argv[2]}: {r['requests_per_second']:.0f} req/s, p99 {p99:.1f} ms (slowest kind), 5xx {r['server_errors_5xx']}, errors {r['error_count']}")
EOF
}

run without-purge 1
# The three users' collections are deleted at time 2000: every stored row of theirs is due.
sql "INSERT INTO weft_deleted_collections (userid, collection, deleted_at) VALUES
     (900000001, 4, 2000), (900000002, 4, 2000), (900000003, 4, 2000)"
before="$(sql 'SELECT COUNT(*) FROM bso WHERE userid > 900000000')"
started="$(date +%s.%N)"
run with-purge 2
ended="$(date +%s.%N)"
after="$(sql 'SELECT COUNT(*) FROM bso WHERE userid > 900000000')"
python3 -c "print(f'deleter during the run: {$before - $after} rows in {$ended - $started:.1f} s = {($before - $after) / ($ended - $started):.0f} rows/s ({$after} left)')"
grep "purge pass" "$OUT/server.log" | tail -2 || true
