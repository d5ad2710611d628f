#!/usr/bin/env bash
# loadtests/bench.sh — the benchmark behind loadtests/BENCHMARKS.md (not part of the tests).
#
# Owns: starting one release `weft serve` per backend on a free loopback port, running every
# scenario three times against it plus three raw-mode runs on a database of their own, sampling
# the server's VmRSS/VmHWM during each run, and printing the medians as a Markdown table.
#
# Usage: loadtests/bench.sh sqlite|mariadb|postgres [SECONDS]   (default 20 s per run)
#        BENCH_SCENARIOS="write launch" loadtests/bench.sh …   runs only those scenarios
# Needs: cargo build --release --features mysql --bin weft -p weft -p weft-loadtests
#        (for mariadb a server on 127.0.0.1:3306 that root can use without a password, for
#        postgres one at $WEFT_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432).
# Results (JSON per run, server log, table) go to target/bench/<backend>/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BACKEND="${1:?usage: bench.sh sqlite|mariadb|postgres [SECONDS]}"
SECONDS_PER_RUN="${2:-20}"
RUNS=3
WEFT=target/release/weft
LT=target/release/weft-loadtest
OUT="target/bench/$BACKEND"
TAG="$(date +%s)"
rm -rf "$OUT" && mkdir -p "$OUT"
DATA="$(mktemp -d "${TMPDIR:-/tmp}/weft-bench.XXXXXX")"

# scenario | options (besides target, secret, duration, seed, json)
SCENARIOS=(
    "write|--users 1000 --concurrency 16"
    "read|--users 100 --records-per-user 500 --concurrency 32"
    "sync|--users 1000 --concurrency 32"
    "launch|--users 100 --records-per-user 2000 --concurrency 16"
    "token|--users 1000 --concurrency 16"
)

case "$BACKEND" in
    sqlite)
        DB_URL="sqlite:$DATA/weft.db"
        RAW_URL="sqlite:$DATA/raw.db"
        ;;
    mariadb)
        for db in "weft_bench_$TAG" "weft_bench_raw_$TAG"; do
            mariadb -h127.0.0.1 -uroot -e "CREATE DATABASE \`$db\`"
        done
        DB_URL="mysql://root@127.0.0.1:3306/weft_bench_$TAG"
        RAW_URL="mysql://root@127.0.0.1:3306/weft_bench_raw_$TAG"
        ;;
    postgres)
        PG_SERVER="${WEFT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
        for db in "weft_bench_$TAG" "weft_bench_raw_$TAG"; do
            psql -X -q -d "$PG_SERVER/postgres" -c "CREATE DATABASE $db TEMPLATE template0 ENCODING 'UTF8'"
        done
        DB_URL="$PG_SERVER/weft_bench_$TAG"
        RAW_URL="$PG_SERVER/weft_bench_raw_$TAG"
        ;;
    *) echo "backend must be sqlite, mariadb or postgres" >&2; exit 2 ;;
esac

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"
SECRET="bench-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PID=""
cleanup() {
    [ -z "$PID" ] || { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; }
    rm -rf "$DATA"
    if [ "$BACKEND" = mariadb ]; then
        for db in "weft_bench_$TAG" "weft_bench_raw_$TAG"; do
            mariadb -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS \`$db\`" || true
        done
    fi
    if [ "$BACKEND" = postgres ]; then
        for db in "weft_bench_$TAG" "weft_bench_raw_$TAG"; do
            psql -X -q -d "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
        done
    fi
}
trap cleanup EXIT

env -u WEFT_TEST_MYSQL_URL -u WEFT_TEST_POSTGRES_URL -u WEFT_TEST_MEMCACHED \
    WEFT_LISTEN="127.0.0.1:$PORT" WEFT_PUBLIC_URL="$URL" WEFT_DATA_DIR="$DATA" \
    WEFT_DATABASE_URL="$DB_URL" WEFT_MASTER_SECRET="$SECRET" \
    WEFT_TOKENSERVER_FXA_OAUTH_PRIMARY_JWK="$("$LT" --print-test-jwk)" \
    WEFT_TOKENSERVER_FXA_OAUTH_SERVER_URL="http://127.0.0.1:9" \
    "$WEFT" serve >"$OUT/server.log" 2>&1 </dev/null &
PID=$!
for _ in $(seq 150); do
    grep -q "weft: listening on" "$OUT/server.log" 2>/dev/null && break
    kill -0 "$PID" 2>/dev/null || { cat "$OUT/server.log"; exit 1; }
    sleep 0.2
done
echo "weft serve pid $PID on $URL ($BACKEND)"

# Largest VmRSS seen while the run lasts, then VmHWM, in MiB.
sample_rss() {
    local max=0 kb
    while kill -0 "$1" 2>/dev/null && [ -e "$2" ]; do
        kb="$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status" 2>/dev/null || echo 0)"
        [ "${kb:-0}" -gt "$max" ] && max="$kb"
        sleep 0.25
    done
    echo "$((max / 1024)) $(( $(awk '/^VmHWM/ {print $2}' "/proc/$PID/status") / 1024 ))"
}

for entry in "${SCENARIOS[@]}"; do
    scenario="${entry%%|*}"
    case " ${BENCH_SCENARIOS:-$scenario} " in *" $scenario "*) ;; *) continue ;; esac
    read -r -a opts <<<"${entry#*|}"
    for run in $(seq "$RUNS"); do
        json="$OUT/$scenario-http-$run.json"
        touch "$OUT/.running"
        "$LT" --scenario "$scenario" --target "$URL" --master-secret "$SECRET" \
            --duration "$SECONDS_PER_RUN" --seed "$run" --no-progress --verify "${opts[@]}" --json "$json" \
            >"$OUT/$scenario-http-$run.log" 2>&1 &
        lt_pid=$!
        sample_rss "$lt_pid" "$OUT/.running" >"$OUT/$scenario-http-$run.rss" &
        sampler=$!
        wait "$lt_pid" || echo "  $scenario run $run: weft-loadtest exited $? (see $OUT/$scenario-http-$run.log)"
        rm -f "$OUT/.running"
        wait "$sampler" || true
        echo "  $scenario http run $run: $(grep -m1 '^  requests' "$OUT/$scenario-http-$run.log" || echo failed)"
    done
    [ "$scenario" = token ] && continue
    for run in $(seq "$RUNS"); do
        "$LT" --scenario "$scenario" --raw "$RAW_URL" --duration "$SECONDS_PER_RUN" --seed "$run" \
            --no-progress "${opts[@]}" --json "$OUT/$scenario-raw-$run.json" >"$OUT/$scenario-raw-$run.log" 2>&1 \
            || echo "  $scenario raw run $run: exited $?"
        echo "  $scenario raw run $run: $(grep -m1 '^  requests' "$OUT/$scenario-raw-$run.log" || echo failed)"
    done
done

python3 - "$OUT" <<'EOF' | tee "$OUT/table.md"
import json, os, statistics, sys
out = sys.argv[1]
def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
print("| scenario | req/s | records/s | p99 ms (slowest kind) | 5xx | errors | lost | raw req/s | raw records/s | % of raw | RSS max / HWM MiB | generator CPU % |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
selected = os.environ.get("BENCH_SCENARIOS", "write read sync launch token").split()
for scenario in [s for s in ["write", "read", "sync", "launch", "token"] if s in selected]:
    runs = [load(f"{scenario}-http-{i}.json") for i in (1, 2, 3)]
    raws = [load(f"{scenario}-raw-{i}.json") for i in (1, 2, 3)]
    runs = [r for r in runs if r]
    raws = [r for r in raws if r]
    if not runs:
        print(f"| {scenario} | failed | | | | | | | | | | |")
        continue
    rps = med([r["requests_per_second"] for r in runs])
    recs = med([r["records_per_second"] for r in runs])
    p99 = med([max((k["p99_ms"] for k in r["latency"].values()), default=0) for r in runs])
    e5 = sum(r["server_errors_5xx"] for r in runs)
    errs = sum(r["error_count"] for r in runs)
    lost = sum(r.get("verify", {}).get("lost", 0) for r in runs)
    raw_rps = med([r["requests_per_second"] for r in raws]) if raws else None
    raw_recs = med([r["records_per_second"] for r in raws]) if raws else None
    if raw_recs and scenario in ("write", "launch"):
        pct = f"{100 * recs / raw_recs:.0f}% (records)"
    elif raw_rps:
        pct = f"{100 * rps / raw_rps:.0f}% (requests)"
    else:
        pct = "-"
    rss = []
    for i in (1, 2, 3):
        try:
            with open(os.path.join(out, f"{scenario}-http-{i}.rss")) as f:
                rss.append(tuple(int(x) for x in f.read().split()))
        except (OSError, ValueError):
            pass
    rss_s = f"{max(r[0] for r in rss)} / {max(r[1] for r in rss)}" if rss else "-"
    cpu = med([r["cpu"]["percent_of_one_core"] for r in runs])
    fmt = lambda v, d=0: "-" if v is None else f"{v:,.{d}f}"
    print(f"| {scenario} | {fmt(rps)} | {fmt(recs)} | {fmt(p99, 1)} | {e5} | {errs} | {lost} | {fmt(raw_rps)} | {fmt(raw_recs)} | {pct} | {rss_s} | {fmt(cpu)} |")
EOF
