#!/usr/bin/env bash
# Lookup-join throughput (issue 5). ROWS rows from `datagen` (KEYS distinct customer ids)
# are enriched FOR SYSTEM_TIME AS OF their processing time from a PostgreSQL table and
# from Redis hashes of KEYS customers, without a cache and with one that holds every
# key, into a blackhole. Baseline in the same run: the same pipeline without the join.
# One line per run: rows/s and the ratio to the baseline.
#
#   SLUICE=<release binary> scripts/bench-lookup.sh
#   ROWS=2000000 KEYS=10000 scripts/bench-lookup.sh
#
# Needs a release build (made here when SLUICE is unset), PostgreSQL on 127.0.0.1:5432
# and Redis on 127.0.0.1:6379 (started here if absent).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${ROWS:-2000000}"
KEYS="${KEYS:-10000}"
WORKERS="${WORKERS:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target-release}"
if [ -z "${SLUICE:-}" ]; then
  cargo build --release -p sluice-cli >&2
  SLUICE="$CARGO_TARGET_DIR/release/sluice"
fi
./scripts/services/postgres.sh
./scripts/services/redis.sh
export PGOPTIONS="-c client_min_messages=warning"
PSQL=(psql -h 127.0.0.1 -U postgres -d test -Atq -v ON_ERROR_STOP=1)
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"; "${PSQL[@]}" -c "DROP TABLE IF EXISTS bench_customers" >/dev/null 2>&1 || true' EXIT
"${PSQL[@]}" -c "DROP TABLE IF EXISTS bench_customers;
  CREATE TABLE bench_customers (id bigint PRIMARY KEY, name text, tier text);
  INSERT INTO bench_customers SELECT g, 'customer ' || g, CASE WHEN g % 3 = 0 THEN 'gold' ELSE 'basic' END
  FROM generate_series(0, $KEYS - 1) g"
# The same customers as Redis hashes, through one pipe.
awk -v n="$KEYS" 'BEGIN { for (i = 0; i < n; i++) printf "HSET bench:c:%d name \"customer %d\" tier %s\r\n", i, i, (i % 3 == 0 ? "gold" : "basic") }' \
  | redis-cli -h 127.0.0.1 -p 6379 --pipe >/dev/null
now() { date +%s.%N; }
run() { # name, the SELECT's FROM/JOIN part, extra DDL
  cat > "$DIR/p.sql" <<SQL
CREATE TABLE orders (id BIGINT, customer_id BIGINT, amount DOUBLE, pt AS PROCTIME())
WITH ('connector' = 'datagen', 'number-of-rows' = '$ROWS', 'rows-per-second' = '1000000000',
      'fields.customer_id.min' = '0', 'fields.customer_id.max' = '$((KEYS - 1))');
$3
CREATE TABLE out (id BIGINT, amount DOUBLE, name STRING) WITH ('connector' = 'blackhole');
INSERT INTO out $2;
SQL
  local t0 t1
  t0=$(now)
  SLUICE_LOG=error "$SLUICE" run -q -w "$WORKERS" "$DIR/p.sql"
  t1=$(now)
  awk -v r="$ROWS" -v a="$t0" -v b="$t1" -v name="$1" -v base="${BASE:-0}" \
    'BEGIN { rate = r / (b - a); printf "%-34s %d rows in %6.2f s = %9.0f rows/s", name, r, b - a, rate;
             if (base > 0) printf "  (%.3f of the baseline)", rate / base; printf "\n" }'
  LAST=$(awk -v r="$ROWS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", r / (b - a) }')
}
BASE=0
run "baseline (no join)" "SELECT id, amount, CAST(customer_id AS STRING) FROM orders" ""
BASE=$LAST
PG="'connector' = 'jdbc', 'url' = 'jdbc:postgresql://127.0.0.1:5432/test?sslmode=disable', 'table-name' = 'bench_customers', 'username' = 'postgres'"
RD="'connector' = 'redis', 'url' = 'redis://127.0.0.1:6379/0', 'key' = 'bench:c:{id}', 'lookup.command' = 'hgetall'"
JOIN="SELECT o.id, o.amount, c.name FROM orders AS o JOIN customers FOR SYSTEM_TIME AS OF o.pt AS c ON o.customer_id = c.id"
CACHE="'lookup.cache' = 'PARTIAL', 'lookup.partial-cache.max-rows' = '$KEYS'"
run "jdbc lookup, no cache" "$JOIN" "CREATE TABLE customers (id BIGINT, name STRING, tier STRING) WITH ($PG);"
run "jdbc lookup, cache of every key" "$JOIN" "CREATE TABLE customers (id BIGINT, name STRING, tier STRING) WITH ($PG, $CACHE);"
run "redis lookup, no cache" "$JOIN" "CREATE TABLE customers (id BIGINT, name STRING, tier STRING) WITH ($RD);"
run "redis lookup, cache of every key" "$JOIN" "CREATE TABLE customers (id BIGINT, name STRING, tier STRING) WITH ($RD, $CACHE);"
redis-cli -h 127.0.0.1 -p 6379 --scan --pattern 'bench:c:*' | xargs -r -n 1000 redis-cli -h 127.0.0.1 -p 6379 DEL >/dev/null
