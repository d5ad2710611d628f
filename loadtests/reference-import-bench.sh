#!/usr/bin/env bash
# loadtests/reference-import-bench.sh — `weft import --from-reference` of one user with a large
# history collection, behind loadtests/BENCHMARKS.md ("Import from syncstorage-rs"); not part of
# the tests.
#
# Owns: per size N, a PostgreSQL database in syncstorage-rs's own schema
# (tests/fixtures/reference/postgres-storage.sql, created with a linguistic ICU collation as a
# server with an en_US locale gives it) holding one user (uid 1) whose `history` has N records
# written as the reference writes them (10-ms times, default expiry, ~380-byte payloads), and a
# fresh target database (PostgreSQL, or SQLite with TARGET=sqlite). Times the release
# `weft import --from-reference` into it, then `--check` of the same pair, and prints rows/s.
# Prints the plan of one page of the source read (the primary key's index, no sort).
#
# Usage: loadtests/reference-import-bench.sh [N…]   (default 50000 200000)
# Needs: cargo build --release --features mysql --bin weft -p weft, PostgreSQL at
#        $WEFT_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432) with ICU.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(50000 200000)
SERVER="${WEFT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
TARGET="${TARGET:-postgres}"
WEFT="${WEFT_BIN:-target/release/weft}"
DATA="$(mktemp -d "${TMPDIR:-/tmp}/weft-refbench.XXXXXX")"
STAMP="$(date +%s)_$$"
DBS=()
psql_on() { psql -X -q -v ON_ERROR_STOP=1 -d "$SERVER/$1" "${@:2}"; }
cleanup() {
    for db in "${DBS[@]}"; do psql_on postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true; done
    rm -rf "$DATA"
}
trap cleanup EXIT

for n in "${SIZES[@]}"; do
    src="weft_refbench_src_${n}_$STAMP"
    DBS+=("$src")
    psql_on postgres -c "CREATE DATABASE $src TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
    psql_on "$src" -f tests/fixtures/reference/postgres-storage.sql
    # One user, `history` (4): the collection's time is its newest record's; every record on
    # the 10-ms grid, expiry = modified + 2 100 000 000 s, payload a ciphertext-like string.
    psql_on "$src" <<SQL
INSERT INTO user_collections (user_id, collection_id, modified, count, total_bytes)
  VALUES (1, 4, TIMESTAMPTZ 'epoch' + INTERVAL '1 millisecond' * 1796000000000, NULL, NULL);
INSERT INTO bsos (user_id, collection_id, bso_id, sortindex, payload, modified, expiry)
  SELECT 1, 4, substr(md5(i::text), 1, 12), i % 100,
         '{"ciphertext":"' || repeat(md5(i::text || 'x'), 11) || '","IV":"' || substr(md5(i::text), 1, 24) || '","hmac":"' || md5(i::text || 'h') || '"}',
         TIMESTAMPTZ 'epoch' + INTERVAL '1 millisecond' * (1796000000000 - i * 10),
         TIMESTAMPTZ 'epoch' + INTERVAL '1 millisecond' * (1796000000000 - i * 10 + 2100000000000)
  FROM generate_series(1, $n) AS i;
VACUUM ANALYZE;
SQL
    case "$TARGET" in
        sqlite) target="sqlite:$DATA/target-$n.db" ;;
        *) tgt="weft_refbench_dst_${n}_$STAMP"; DBS+=("$tgt")
           psql_on postgres -c "CREATE DATABASE $tgt TEMPLATE template0 ENCODING 'UTF8'"
           target="$SERVER/$tgt" ;;
    esac
    if [ "$n" = "${SIZES[-1]}" ]; then
        echo "plan of one page of the source read (uid 1, history, after a key in the middle):"
        psql_on "$src" -At -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT bso_id, payload FROM bsos WHERE user_id = 1 AND collection_id = 4 AND bso_id > '8' AND expiry > now() ORDER BY bso_id LIMIT 1000"
        echo "the same page ordered by another collation (the reader before issue 22):"
        psql_on "$src" -At -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT bso_id, payload FROM bsos WHERE user_id = 1 AND collection_id = 4 AND bso_id COLLATE \"C\" > '8' AND expiry > now() ORDER BY bso_id COLLATE \"C\" LIMIT 1000"
    fi
    run() {
        local start end
        start=$(date +%s.%N)
        env -u WEFT_DATABASE_URL WEFT_DATA_DIR="$DATA" "$WEFT" import --no-progress --database "$target" \
            --tokenserver-database "$target" --from-reference "$SERVER/$src" "$@" >"$DATA/out-$n.txt" 2>&1 \
            || { cat "$DATA/out-$n.txt"; exit 1; }
        end=$(date +%s.%N)
        echo "$end - $start" | bc
    }
    secs=$(run)
    out=$(cat "$DATA/out-$n.txt" | tr '\n' ' ')
    check=$(run --check)
    printf 'N=%-7s import %6.2f s  %8.0f rows/s   check %6.2f s   (%s)\n' \
        "$n" "$secs" "$(echo "$n / $secs" | bc -l)" "$check" "$out"
done
