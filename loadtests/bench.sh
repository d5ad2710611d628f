#!/usr/bin/env bash
# loadtests/bench.sh — the benchmark behind loadtests/BENCHMARKS.md (not part of the tests).
#
# Owns: for every scenario, empty databases and a fresh release `weft serve` on a free loopback
# port; three runs of the scenario against it plus three raw-mode runs on a database of their
# own, sampling
# the server's VmRSS/VmHWM during each run, its context switches (all threads, from /proc) and
# the share of storage requests that reached the database (`weft_storage_requests_total` on
# the server's metrics listener) over each run, and printing the medians as a Markdown table.
# read runs at concurrency 8 and 32; write and sync sweep concurrency 8, 32 and 64. Each run
# also records the CPU time the database spent on the scenario's database (MariaDB: the threads
# serving its connections, from PROCESSLIST.TID; PostgreSQL: its backends, from
# pg_stat_activity; SQLite runs inside the server) and the server's own, per request, and the
# machine's load average and how busy its CPUs were (all processes, from /proc/stat, with the
# share waiting for I/O): the machine may be shared, and CPU per request depends far less on
# what else runs than requests per second do. And the database's pages read from disk per
# request (pages its memory did not hold): writes that wait for them show it there. Cache settings come from the environment
# (e.g. WEFT_CACHE_MEMORY_BYTES=0 for a run without the cache); BENCH_RAW=0 skips the raw runs.
#
# Usage: loadtests/bench.sh sqlite|mariadb|postgres [SECONDS]   (default 20 s per run)
#        BENCH_SCENARIOS="write read-c8" loadtests/bench.sh …   runs only those labels or scenarios
# Needs: cargo build --release --features mysql --bin weft --bin weft-loadtest -p weft -p weft-loadtests
#        (for mariadb a server on 127.0.0.1:3306 that root can use without a password, for
#        postgres one at $WEFT_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432).
# Results (JSON per run, server log per scenario, table) go to target/bench/<backend>/, or to
# $BENCH_OUT (e.g. one directory per build of a before/after comparison).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source loadtests/lib.sh
BACKEND="${1:?usage: bench.sh sqlite|mariadb|postgres [SECONDS]}"
SECONDS_PER_RUN="${2:-20}"
RUNS=3
# WEFT_BIN / LT_BIN: other builds (e.g. another checkout's, for a before/after comparison).
WEFT="${WEFT_BIN:-target/release/weft}"
LT="${LT_BIN:-target/release/weft-loadtest}"
OUT="${BENCH_OUT:-target/bench/$BACKEND}"
TAG="$(date +%s)"
rm -rf "$OUT" && mkdir -p "$OUT"
DATA="$(mktemp -d "${TMPDIR:-/tmp}/weft-bench.XXXXXX")"

# label | scenario | options (besides target, secret, duration, seed, json)
SCENARIOS=(
    "write-c8|write|--users 64 --concurrency 8"
    "write-c32|write|--users 64 --concurrency 32"
    "write-c64|write|--users 64 --concurrency 64"
    "read-c8|read|--users 100 --records-per-user 500 --concurrency 8"
    "read-c32|read|--users 100 --records-per-user 500 --concurrency 32"
    "sync-c8|sync|--users 1000 --concurrency 8"
    "sync-c32|sync|--users 1000 --concurrency 32"
    "sync-c64|sync|--users 1000 --concurrency 64"
    "launch|launch|--users 100 --records-per-user 2000 --concurrency 16"
    "token|token|--users 1000 --concurrency 16"
)

case "$BACKEND" in
    sqlite | mariadb) ;;
    postgres) PG_SERVER="${WEFT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}" ;;
    *) echo "backend must be sqlite, mariadb or postgres" >&2; exit 2 ;;
esac

# Every scenario starts from empty databases (its server's and its raw runs'), so that its
# numbers do not depend on which scenarios ran before it: a read after the write scenario's
# million records measured the database server's buffer pool more than Weft. The three runs
# of one scenario share them (each run adds its own users' records).
create_databases() {
    local label="$1" db
    case "$BACKEND" in
        sqlite)
            DB_URL="sqlite:$DATA/$label.db"
            RAW_URL="sqlite:$DATA/$label-raw.db"
            ;;
        mariadb)
            for db in "weft_bench_${TAG}_$label" "weft_bench_raw_${TAG}_$label"; do
                mariadb -h127.0.0.1 -uroot -e "CREATE DATABASE \`${db//-/_}\`"
            done
            DB_URL="mysql://root@127.0.0.1:3306/weft_bench_${TAG}_${label//-/_}"
            RAW_URL="mysql://root@127.0.0.1:3306/weft_bench_raw_${TAG}_${label//-/_}"
            ;;
        postgres)
            for db in "weft_bench_${TAG}_$label" "weft_bench_raw_${TAG}_$label"; do
                psql -X -q -d "$PG_SERVER/postgres" -c "CREATE DATABASE ${db//-/_} TEMPLATE template0 ENCODING 'UTF8'"
            done
            DB_URL="$PG_SERVER/weft_bench_${TAG}_${label//-/_}"
            RAW_URL="$PG_SERVER/weft_bench_raw_${TAG}_${label//-/_}"
            ;;
    esac
}

drop_databases() {
    local db
    case "$BACKEND" in
        sqlite) rm -f "$DATA"/*.db* ;;
        mariadb)
            for db in $(mariadb -h127.0.0.1 -uroot -N -B -e "SHOW DATABASES LIKE 'weft\_bench\_%$TAG%'"); do
                mariadb -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS \`$db\`" || true
            done
            ;;
        postgres)
            for db in $(psql -X -q -t -A -d "$PG_SERVER/postgres" -c "SELECT datname FROM pg_database WHERE datname LIKE 'weft\_bench\_%$TAG%'"); do
                psql -X -q -d "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
            done
            ;;
    esac
}

SECRET="bench-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
JWK="$("$LT" --print-test-jwk)"
PID=""
stop_server() {
    stop_pid "$PID"
    PID=""
}
cleanup() {
    stop_server
    drop_databases
    rm -rf "$DATA"
}
trap cleanup EXIT

# A fresh `weft serve` on the scenario's databases; its log is $OUT/<label>-server.log.
start_server() {
    local label="$1"
    PORT="$(free_port)"
    METRICS_PORT="$(free_port)"
    URL="http://127.0.0.1:$PORT"
    env -u WEFT_TEST_MYSQL_URL -u WEFT_TEST_POSTGRES_URL -u WEFT_TEST_MEMCACHED \
        WEFT_LISTEN="127.0.0.1:$PORT" WEFT_PUBLIC_URL="$URL" WEFT_DATA_DIR="$DATA/data-$label" \
        WEFT_DATABASE_URL="$DB_URL" WEFT_MASTER_SECRET="$SECRET" \
        WEFT_METRICS_ENABLED=true WEFT_METRICS_LISTEN="127.0.0.1:$METRICS_PORT" \
        WEFT_TOKENSERVER_FXA_OAUTH_PRIMARY_JWK="$JWK" \
        WEFT_TOKENSERVER_FXA_OAUTH_SERVER_URL="http://127.0.0.1:9" \
        "$WEFT" serve >"$OUT/$label-server.log" 2>&1 </dev/null &
    PID=$!
    wait_listening "$PID" "$OUT/$label-server.log"
    echo "$label: weft serve pid $PID on $URL ($BACKEND)"
}

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

# "<storage requests answered by the database> <by the cache> <context switches>" now: the
# server's counters, and the voluntary and involuntary switches of all its threads.
counters() {
    local metrics
    metrics="$(curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" || true)"
    awk -v kind=database '$1 ~ /^weft_storage_requests_total\{/ && $1 ~ "answered_by=\"" kind "\"" {n += $2} END {printf "%d ", n}' <<<"$metrics"
    awk -v kind=cache '$1 ~ /^weft_storage_requests_total\{/ && $1 ~ "answered_by=\"" kind "\"" {n += $2} END {printf "%d ", n}' <<<"$metrics"
    cat /proc/"$PID"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {n += $2} END {print n + 0}'
}

# Sum of utime + stime (clock ticks) of the processes or threads /proc paths in "$@".
cpu_ticks() {
    cat "$@" 2>/dev/null | awk '{
        # The command name (field 2) may hold spaces: count fields after its closing ")".
        sub(/^.*\) /, ""); n += $12 + $13
    } END {print n + 0}'
}

# "<database CPU ticks> <server CPU ticks>" now: the database's work for this scenario's
# database only, so that other databases on a shared server do not count.
cpu_now() {
    local db="${DB_URL##*/}" tids p pid="" stats=()
    case "$BACKEND" in
        sqlite) echo -n "0 " ;;
        mariadb)
            tids="$(mariadb -h127.0.0.1 -uroot -N -B -e "SELECT TID FROM information_schema.PROCESSLIST WHERE DB = '$db'")"
            for p in $(pgrep -x mariadbd); do
                for t in $tids; do [ -e "/proc/$p/task/$t" ] && { pid="$p"; break 2; }; done
            done
            for t in $tids; do stats+=("/proc/$pid/task/$t/stat"); done
            if [ -n "$pid" ]; then echo -n "$(cpu_ticks "${stats[@]}") "; else echo -n "0 "; fi
            ;;
        postgres)
            for p in $(psql -X -q -t -A -d "$PG_SERVER/postgres" -c "SELECT pid FROM pg_stat_activity WHERE datname = '$db'"); do
                stats+=("/proc/$p/stat")
            done
            if [ "${#stats[@]}" -gt 0 ]; then echo -n "$(cpu_ticks "${stats[@]}") "; else echo -n "0 "; fi
            ;;
    esac
    cpu_ticks "/proc/$PID/stat"
}

# The database's pages read from disk so far (not found in its cache: InnoDB's buffer pool, the
# whole server's `Innodb_buffer_pool_reads`; PostgreSQL's shared buffers, `blks_read` of the
# scenario's database): a write that must first read the pages it changes waits for the disk,
# which neither CPU column shows. SQLite: 0 (its reads are the server's own CPU and I/O wait).
disk_reads_now() {
    case "$BACKEND" in
        sqlite) echo 0 ;;
        mariadb) mariadb -h127.0.0.1 -uroot -N -B -e "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_READS'" ;;
        postgres) psql -X -q -t -A -d "$PG_SERVER/postgres" -c "SELECT blks_read FROM pg_stat_database WHERE datname = '${DB_URL##*/}'" ;;
    esac
}

# "<busy ticks> <iowait ticks> <all ticks>" of the whole machine now (/proc/stat's cpu line:
# user nice system idle iowait irq softirq steal …).
machine_ticks() {
    awk '/^cpu / {all = 0; for (i = 2; i <= 9; i++) all += $i; print all - $5 - $6, $6, all}' /proc/stat
}

# True when BENCH_SCENARIOS (default: everything) names one of the words of "$1".
selected() {
    local word
    [ -z "${BENCH_SCENARIOS:-}" ] && return 0
    for word in $1; do
        case " $BENCH_SCENARIOS " in *" $word "*) return 0 ;; esac
    done
    return 1
}

for entry in "${SCENARIOS[@]}"; do
    IFS='|' read -r label scenario options <<<"$entry"
    selected " $label $scenario " || continue
    read -r -a opts <<<"$options"
    create_databases "$label"
    start_server "$label"
    for run in $(seq "$RUNS"); do
        json="$OUT/$label-http-$run.json"
        before="$(counters)"
        cpu_before="$(cpu_now)"
        machine_before="$(machine_ticks)"
        reads_before="$(disk_reads_now)"
        touch "$OUT/.running"
        "$LT" --scenario "$scenario" --target "$URL" --master-secret "$SECRET" \
            --duration "$SECONDS_PER_RUN" --seed "$run" --no-progress --verify "${opts[@]}" --json "$json" \
            >"$OUT/$label-http-$run.log" 2>&1 &
        lt_pid=$!
        sample_rss "$lt_pid" "$OUT/.running" >"$OUT/$label-http-$run.rss" &
        sampler=$!
        wait "$lt_pid" || echo "  $label run $run: weft-loadtest exited $? (see $OUT/$label-http-$run.log)"
        rm -f "$OUT/.running"
        wait "$sampler" || true
        echo "$before $(counters)" >"$OUT/$label-http-$run.counters"
        echo "$cpu_before $(cpu_now) $(cut -d' ' -f1 /proc/loadavg)" >"$OUT/$label-http-$run.cpu"
        echo "$machine_before $(machine_ticks)" >"$OUT/$label-http-$run.machine"
        echo "$reads_before $(disk_reads_now)" >"$OUT/$label-http-$run.reads"
        echo "  $label http run $run: $(grep -m1 '^  requests' "$OUT/$label-http-$run.log" || echo failed)"
    done
    stop_server
    { [ "$scenario" = token ] || [ "${BENCH_RAW:-1}" = 0 ]; } && { drop_databases; continue; }
    for run in $(seq "$RUNS"); do
        "$LT" --scenario "$scenario" --raw "$RAW_URL" --duration "$SECONDS_PER_RUN" --seed "$run" \
            --no-progress "${opts[@]}" --json "$OUT/$label-raw-$run.json" >"$OUT/$label-raw-$run.log" 2>&1 \
            || echo "  $label raw run $run: exited $?"
        echo "  $label raw run $run: $(grep -m1 '^  requests' "$OUT/$label-raw-$run.log" || echo failed)"
    done
    drop_databases
done

LABELS="$(for entry in "${SCENARIOS[@]}"; do
    IFS='|' read -r label scenario _ <<<"$entry"
    if selected " $label $scenario "; then echo "$label"; fi
done)"
python3 - "$OUT" $LABELS <<'EOF' | tee "$OUT/table.md"
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
def counters(name):
    """(share of storage requests that reached the database, context switches per request)
    over a run, setup included."""
    try:
        with open(os.path.join(out, name)) as f:
            b_db, b_cache, b_cs, a_db, a_cache, a_cs = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return None, None
    db, cache = a_db - b_db, a_cache - b_cache
    run = load(name.replace(".counters", ".json")) or {}
    requests = run.get("requests", 0) + run.get("setup", {}).get("requests", 0)
    share = 100 * db / (db + cache) if db + cache else None
    return share, ((a_cs - b_cs) / requests if requests else None)
def cpu_per_request(name):
    """(database CPU µs per request, server CPU µs per request, load average after the run):
    CPU over the run divided by the generator's requests, setup included."""
    try:
        with open(os.path.join(out, name)) as f:
            db0, srv0, db1, srv1, load = f.read().split()
    except (OSError, ValueError):
        return None, None, None
    run = load_json(name.replace(".cpu", ".json")) or {}
    requests = run.get("requests", 0) + run.get("setup", {}).get("requests", 0)
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    per = lambda a, b: (int(b) - int(a)) * tick_us / requests if requests else None
    return (per(db0, db1) if int(db1) else None), per(srv0, srv1), float(load)
load_json = load
def reads_per_request(name):
    """Database pages read from disk per request over a run, setup included."""
    try:
        with open(os.path.join(out, name)) as f:
            r0, r1 = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return None
    run = load_json(name.replace(".reads", ".json")) or {}
    requests = run.get("requests", 0) + run.get("setup", {}).get("requests", 0)
    return (r1 - r0) / requests if requests else None
def machine(name):
    """(% of the machine's CPU time busy, % waiting for I/O) over a run."""
    try:
        with open(os.path.join(out, name)) as f:
            b0, w0, a0, b1, w1, a1 = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return None, None
    return (100 * (b1 - b0) / (a1 - a0), 100 * (w1 - w0) / (a1 - a0)) if a1 > a0 else (None, None)
print("| scenario | req/s | records/s | p99 ms (slowest kind) | 5xx | errors | lost | raw req/s | raw records/s | % of raw | reached the database % | context switches / request | DB CPU µs / request | DB pages read from disk / request | server CPU µs / request | load (1 min) | machine busy % (I/O wait %) | RSS max / HWM MiB | generator CPU % |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for scenario in sys.argv[2:]:
    runs = [load(f"{scenario}-http-{i}.json") for i in (1, 2, 3)]
    raws = [load(f"{scenario}-raw-{i}.json") for i in (1, 2, 3)]
    runs = [r for r in runs if r]
    raws = [r for r in raws if r]
    if not runs:
        print(f"| {scenario} | failed | | | | | | | | | | | | | | | | | |")
        continue
    rps = med([r["requests_per_second"] for r in runs])
    recs = med([r["records_per_second"] for r in runs])
    p99 = med([max((k["p99_ms"] for k in r["latency"].values()), default=0) for r in runs])
    e5 = sum(r["server_errors_5xx"] for r in runs)
    errs = sum(r["error_count"] for r in runs)
    lost = sum(r.get("verify", {}).get("lost", 0) for r in runs)
    raw_rps = med([r["requests_per_second"] for r in raws]) if raws else None
    raw_recs = med([r["records_per_second"] for r in raws]) if raws else None
    if raw_recs and scenario.split("-")[0] in ("write", "launch"):
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
    measured = [counters(f"{scenario}-http-{i}.counters") for i in (1, 2, 3)]
    db_share = med([m[0] for m in measured])
    switches = med([m[1] for m in measured])
    cpus = [cpu_per_request(f"{scenario}-http-{i}.cpu") for i in (1, 2, 3)]
    db_cpu, srv_cpu, load_avg = (med([c[k] for c in cpus]) for k in range(3))
    machines = [machine(f"{scenario}-http-{i}.machine") for i in (1, 2, 3)]
    busy, iowait = (med([m[k] for m in machines]) for k in range(2))
    disk_reads = med([reads_per_request(f"{scenario}-http-{i}.reads") for i in (1, 2, 3)])
    fmt = lambda v, d=0: "-" if v is None else f"{v:,.{d}f}"
    print(f"| {scenario} | {fmt(rps)} | {fmt(recs)} | {fmt(p99, 1)} | {e5} | {errs} | {lost} | {fmt(raw_rps)} | {fmt(raw_recs)} | {pct} | {fmt(db_share)} | {fmt(switches, 1)} | {fmt(db_cpu)} | {fmt(disk_reads, 1)} | {fmt(srv_cpu)} | {fmt(load_avg, 1)} | {fmt(busy)} ({fmt(iowait)}) | {rss_s} | {fmt(cpu)} |")
EOF
