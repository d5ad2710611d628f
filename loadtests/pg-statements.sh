#!/usr/bin/env bash
# loadtests/pg-statements.sh — what PostgreSQL does per request of one load scenario, statement
# by statement (not part of the tests; loadtests/BENCHMARKS.md quotes it).
#
# Owns: one empty database on the loopback PostgreSQL with `log_min_duration_statement = 0` set
# on that database alone (no restart, no server-wide setting: pg_stat_statements would need
# `shared_preload_libraries`, and the server is shared), a release `weft serve` on it, one
# `weft-loadtest` run, and a table from the server's log lines of that database: for each
# statement (its first words) how often it ran and was parsed per request, and its parse, bind
# and execute milliseconds per request as PostgreSQL timed them (wall time: on a busy machine it
# includes waiting for a CPU, and COMMIT's includes the WAL flush). Logging every statement costs time itself,
# so the times are for comparing statements and builds, not throughput (bench.sh measures that).
#
# Usage: loadtests/pg-statements.sh [SECONDS] [loadtest options…]
#        (default: 8 s of `--scenario write --users 64 --concurrency 8`)
# Needs: the release build (WEFT_BIN / LT_BIN for another one, as bench.sh), PostgreSQL at
#        $WEFT_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432) whose log is
#        $PG_LOG (default /var/log/postgresql/postgresql-15-main.log, readable by this user).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source loadtests/lib.sh
SECONDS_PER_RUN="${1:-8}"
shift || true
OPTIONS=("$@")
[ "${#OPTIONS[@]}" -gt 0 ] || OPTIONS=(--scenario write --users 64 --concurrency 8)
WEFT="${WEFT_BIN:-target/release/weft}"
LT="${LT_BIN:-target/release/weft-loadtest}"
PG_SERVER="${WEFT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
PG_LOG="${PG_LOG:-/var/log/postgresql/postgresql-15-main.log}"
DB="weft_stmts_$(date +%s)_$$"
DATA="$(mktemp -d "${TMPDIR:-/tmp}/weft-stmts.XXXXXX")"
PID=""
cleanup() {
    stop_pid "$PID"
    psql -X -q -d "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
    rm -rf "$DATA"
}
trap cleanup EXIT

psql -X -q -d "$PG_SERVER/postgres" -c "CREATE DATABASE $DB TEMPLATE template0 ENCODING 'UTF8'" \
    -c "ALTER DATABASE $DB SET log_min_duration_statement = 0"
PORT="$(free_port)"
SECRET="stmts-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
env -u WEFT_TEST_MYSQL_URL -u WEFT_TEST_POSTGRES_URL -u WEFT_TEST_MEMCACHED \
    WEFT_LISTEN="127.0.0.1:$PORT" WEFT_PUBLIC_URL="http://127.0.0.1:$PORT" WEFT_DATA_DIR="$DATA/data" \
    WEFT_DATABASE_URL="$PG_SERVER/$DB" WEFT_MASTER_SECRET="$SECRET" \
    WEFT_TOKENSERVER_FXA_OAUTH_PRIMARY_JWK="$("$LT" --print-test-jwk)" \
    WEFT_TOKENSERVER_FXA_OAUTH_SERVER_URL="http://127.0.0.1:9" \
    "$WEFT" serve >"$DATA/server.log" 2>&1 </dev/null &
PID=$!
wait_listening "$PID" "$DATA/server.log"
# The log from here on: the migrations and start-up are not the scenario's.
offset="$(stat -c %s "$PG_LOG")"
"$LT" --target "http://127.0.0.1:$PORT" --master-secret "$SECRET" --duration "$SECONDS_PER_RUN" \
    --seed 1 --no-progress "${OPTIONS[@]}" --json "$DATA/run.json" >"$DATA/run.log"
grep -m1 '^  requests' "$DATA/run.log" || true

tail -c +"$((offset + 1))" "$PG_LOG" >"$DATA/postgres.log"
python3 - "$DB" "$DATA/run.json" "$DATA/postgres.log" <<'EOF'
import collections, json, re, sys
db, run = sys.argv[1], json.load(open(sys.argv[2]))
requests = run["requests"] + run.get("setup", {}).get("requests", 0)
line = re.compile(r"@" + re.escape(db) + r" LOG:  duration: ([0-9.]+) ms  (parse|bind|execute|statement)[^:]*: (.*)")
count, parses = collections.Counter(), collections.Counter()
ms = collections.defaultdict(collections.Counter)
with open(sys.argv[3], errors="replace") as log:
    for text in log:
        m = line.search(text)
        if not m:
            continue
        duration, phase, sql = float(m.group(1)), m.group(2), m.group(3)
        key = " ".join(sql.split()[:7])[:70]
        phase = "execute" if phase == "statement" else phase
        ms[key][phase] += duration
        if phase == "execute":
            count[key] += 1
        elif phase == "parse":
            parses[key] += 1
per = lambda v: f"{v / requests:.3f}"
print(f"{requests} requests (setup included); per request:")
print("| statement (first words) | runs | parses | parse ms | bind ms | execute ms |")
print("|---|---|---|---|---|---|")
total = collections.Counter()
for key in sorted(ms, key=lambda k: -sum(ms[k].values())):
    total.update(ms[key])
    t = ms[key]
    print(f"| `{key}` | {count[key] / requests:.2f} | {parses[key] / requests:.2f} | {per(t['parse'])} | {per(t['bind'])} | {per(t['execute'])} |")
print(f"| **all** | {sum(count.values()) / requests:.2f} | {sum(parses.values()) / requests:.2f} | {per(total['parse'])} | {per(total['bind'])} | {per(total['execute'])} |")
EOF
