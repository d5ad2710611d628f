#!/usr/bin/env bash
# loadtests/drain-move-bench.sh — issue 23 under load, behind loadtests/BENCHMARKS.md ("Draining
# a node by moving its users"); not part of the tests.
#
# Owns: a fleet of two release `weft serve` webheads with one configuration: the tokenserver
# and node 1 (http://127.0.0.1:P1) on a fresh MariaDB database, node 2 (http://127.0.0.1:P2)
# on a fresh PostgreSQL database; webhead 1 listens on P1, webhead 2 on P2, each serving both
# nodes as every webhead of a fleet does (the request's Host picks the node). Then:
#   1. USERS users sign in through the tokenserver (`weft-loadtest --tokenserver`: an OAuth JWT
#      of the test key, `GET /1.0/sync/1.5`, the node its api_endpoint names) and upload
#      history (scenario launch): all land on node 1;
#   2. "before": `--scenario sync --tokenserver --verify` over those users, and beside it the
#      bystanders — 40 users with tokens minted for node 1 who are not in the tokenserver, so
#      never moved: the requests of users not being moved;
#   3. "during": the same two loads, and 3 s in `weft node drain P1 --move --to P2`, which moves
#      every tokenserver user of node 1 to node 2 while they sync (the moved users follow a 401
#      to a new token and count 503 + Retry-After apart);
#   4. the databases afterwards: every user's tokenserver row names node 2, its data there.
# Prints each load's summary (p99, 401s, 503s, users served by two nodes at once, lost writes),
# the drain's summary (users/s, writes held per user: median, p99, longest), every 5xx other
# than a 503 in the webheads' logs, and the load average.
#
# Usage: loadtests/drain-move-bench.sh [USERS] [SECONDS]   (default 200 users, 40 s per load)
# Needs: cargo build --release --features mysql --bin weft --bin weft-loadtest -p weft -p weft-loadtests
#        (or WEFT_BIN / LT_BIN), MariaDB on 127.0.0.1:3306 for root without a password, and
#        PostgreSQL at $WEFT_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432).
# Results (JSON per load, webhead logs, drain output) go to target/bench/drain-move/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source loadtests/lib.sh
USERS="${1:-200}"
SECONDS_PER_LOAD="${2:-40}"
PG_SERVER="${WEFT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
DB_1="weft_drainbench_$(date +%s)_1"
DB_2="${DB_1%_1}_2"
WEFT="${WEFT_BIN:-target/release/weft}"
LT="${LT_BIN:-target/release/weft-loadtest}"
OUT=target/bench/drain-move
DATA="$(mktemp -d "${TMPDIR:-/tmp}/weft-drainbench.XXXXXX")"
rm -rf "$OUT" && mkdir -p "$OUT"
mariadb -h127.0.0.1 -uroot -e "CREATE DATABASE \`$DB_1\`"
psql -X -q -d "$PG_SERVER/postgres" -c "CREATE DATABASE $DB_2 TEMPLATE template0 ENCODING 'UTF8'"
sql_1() { mariadb -h127.0.0.1 -uroot -N -B "$DB_1" -e "$1"; }
sql_2() { psql -X -q -t -A -d "$PG_SERVER/$DB_2" -c "$1"; }

P1="$(free_port)"
P2="$(free_port)"
NODE_1="http://127.0.0.1:$P1"
NODE_2="http://127.0.0.1:$P2"
SECRET="bench-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cat >"$DATA/weft.toml" <<EOF
public_url = "$NODE_1"
database_url = "mysql://root@127.0.0.1:3306/$DB_1"
master_secrets = ["$SECRET"]
log_format = "json"

[tokenserver]
# The load generator's test key (loadtests/src/oauth.rs), and no real FxA.
fxa_oauth_primary_jwk = '$("$LT" --print-test-jwk)'
fxa_oauth_server_url = "http://127.0.0.1:9"

[[nodes]]
url = "$NODE_2"
database_url = "$PG_SERVER/$DB_2"
EOF
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    rm -rf "$DATA"
    mariadb -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS \`$DB_1\`" || true
    psql -X -q -d "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $DB_2 WITH (FORCE)" || true
}
trap cleanup EXIT

weft() {
    env -u WEFT_TEST_MYSQL_URL -u WEFT_TEST_POSTGRES_URL -u WEFT_TEST_MEMCACHED \
        WEFT_DATA_DIR="$DATA/data" "$WEFT" --config "$DATA/weft.toml" "$@"
}
for n in 1 2; do
    port="P$n"
    WEFT_LISTEN="127.0.0.1:${!port}" weft serve >"$OUT/webhead-$n.log" 2>&1 </dev/null &
    PIDS+=($!)
    wait_listening "${PIDS[-1]}" "$OUT/webhead-$n.log" 300
    # The first webhead migrates the shared databases; the second starts on them.
done
# Node 2 registered staged: every new user is assigned node 1.
weft node provision "$NODE_2" 10000 --backoff --no-server-check >"$OUT/provision.log" 2>&1

load() { # name, seed, then options
    local name="$1" seed="$2"
    shift 2
    "$LT" --target "$NODE_1" --seed "$seed" --no-progress --json "$OUT/$name.json" "$@" >"$OUT/$name.log" 2>&1
}
moved_load() { load "$1" "$2" --scenario sync --tokenserver --users "$USERS" --concurrency 8 \
    --duration "$SECONDS_PER_LOAD" --verify; }
bystanders() { load "$1" "$2" --scenario sync --master-secret "$SECRET" --users 40 --first-uid 500000000 \
    --concurrency 4 --duration "$SECONDS_PER_LOAD" --verify; }
summary() {
    python3 - "$OUT/$1.json" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r["latency"]
every = sorted((k["p99_ms"], name) for name, k in lat.items())
worst = every[-1] if every else (0, "-")
info = lat.get("GET info/collections (conditional)", {}).get("p99_ms", float("nan"))
line = (f"{sys.argv[2]}: {r['requests']} requests, {r['requests_per_second']:.0f}/s; p99 info/collections "
        f"(conditional) {info:.1f} ms, slowest kind p99 {worst[0]:.1f} ms ({worst[1]}); statuses "
        f"{r['status_counts']}; errors {r['error_count']}")
v = r.get("verify")
if v:
    line += f"; verify: {v['checked']} acknowledged records, {v['lost']} lost"
t = r.get("tokenserver")
if t:
    line += (f"; 401 {t['unauthorized_401']}, 503+Retry-After {t['held_503_retry_after']} to {t['users_held']} users "
             f"({t['users_held_and_seen_on_a_new_node']} seen on node 2 later), users on two nodes in turn "
             f"{t['users_on_two_nodes']}, at once {t['users_served_by_two_nodes_at_once']}")
print(line + f"; {'PASS' if r['passed'] else 'FAIL'}")
PY
}

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
# 1. The users sign in and upload their history (about 100 records each).
load seed 1 --scenario launch --tokenserver --users "$USERS" --records-per-user 100 --concurrency 8 \
    --requests $((USERS * 5)) || true
summary seed
echo "users in the tokenserver on node 1: $(sql_1 "SELECT COUNT(*) FROM users u JOIN nodes n ON n.id = u.nodeid WHERE n.node = '$NODE_1' AND u.replaced_at IS NULL")," \
    "records on node 1: $(sql_1 'SELECT COUNT(*) FROM bso')"

# 2. Before the drain.
moved_load before-moved 2 &
m=$!
bystanders before-bystanders 3 &
b=$!
wait "$m" || true
wait "$b" || true
summary before-moved
summary before-bystanders

# 3. During the drain.
moved_load during-moved 4 &
m=$!
bystanders during-bystanders 5 &
b=$!
sleep 3
echo "load average before the drain: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "\$ weft node drain $NODE_1 --move --to $NODE_2 --no-progress"
weft node drain "$NODE_1" --move --to "$NODE_2" --no-progress 2>&1 | tee "$OUT/drain.log"
echo "load average after the drain: $(cut -d' ' -f1-3 /proc/loadavg)"
wait "$m" || true
wait "$b" || true
summary during-moved
summary during-bystanders

# 4. Where the users are now.
echo "tokenserver users per node: $(sql_1 "SELECT CONCAT(n.node, ' ', COUNT(*)) FROM users u JOIN nodes n ON n.id = u.nodeid WHERE u.replaced_at IS NULL GROUP BY n.node" | tr '\n' ';')"
echo "node 1: $(sql_1 'SELECT COUNT(*) FROM weft_user_moves WHERE state = 2') users marked moved (401 until their tokens expire);" \
    "node 2: $(sql_2 'SELECT COUNT(DISTINCT userid) FROM bso') users' records, $(sql_2 'SELECT COUNT(*) FROM bso') records"
echo "5xx other than 503 in the webheads' logs: $(cat "$OUT"/webhead-*.log | grep -c '"status":5[0-9][0-9]' | tr -d ' ') lines with a 5xx," \
    "$(cat "$OUT"/webhead-*.log | grep '"status":5[0-9][0-9]' | grep -vc '"status":503' | tr -d ' ') of them not 503"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
