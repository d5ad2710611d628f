#!/usr/bin/env bash
# loadtests/sqlite-sync-cost.sh — what `shard.sqlite_synchronous = "full"` (the default) costs
# writes against `"normal"`: the `write` scenario (100 BSOs × 500 B per POST, 1000 users,
# concurrency 16) against a fresh SQLite database per run, alternating the two settings.
# Not part of the tests; its numbers are in loadtests/BENCHMARKS.md.
#
# Usage: loadtests/sqlite-sync-cost.sh [SECONDS] [RUNS]   (default 20 s, 2 runs per setting)
# Needs: cargo build --release --features mysql --bin weft --bin weft-loadtest -p weft -p weft-loadtests
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source loadtests/lib.sh
SECONDS_PER_RUN="${1:-20}"
RUNS="${2:-2}"
WEFT=target/release/weft
LT=target/release/weft-loadtest
SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"

for run in $(seq "$RUNS"); do
    for mode in full normal; do
        data="$(mktemp -d "${TMPDIR:-/tmp}/weft-sync.XXXXXX")"
        port="$(free_port)"
        WEFT_SHARD_SQLITE_SYNCHRONOUS="$mode" WEFT_LISTEN="127.0.0.1:$port" \
            WEFT_PUBLIC_URL="http://127.0.0.1:$port" WEFT_DATA_DIR="$data" WEFT_MASTER_SECRET="$SECRET" \
            WEFT_TOKENSERVER_ENABLED=false "$WEFT" serve >"$data/server.log" 2>&1 </dev/null &
        pid=$!
        wait_listening "$pid" "$data/server.log"
        "$LT" --scenario write --target "http://127.0.0.1:$port" --master-secret "$SECRET" \
            --duration "$SECONDS_PER_RUN" --seed "$run" --no-progress --verify --users 1000 --concurrency 16 \
            --json "$data/run.json" >"$data/loadtest.log" 2>&1 || true
        kill "$pid"
        wait "$pid" || true
        python3 - "$mode" "$run" "$data/run.json" <<'PY'
import json, sys
mode, run, path = sys.argv[1:]
r = json.load(open(path))
p = r["latency"]
post = max(p.values(), key=lambda k: k["p99_ms"])
print(f"| {mode} | {run} | {r['requests_per_second']:,.0f} | {r['records_per_second']:,.0f} | "
      f"{post.get('p50_ms', 0):.1f} | {post['p99_ms']:.1f} | {r['server_errors_5xx']} | {r.get('verify', {}).get('lost', 0)} |")
PY
        rm -rf "$data"
    done
done
