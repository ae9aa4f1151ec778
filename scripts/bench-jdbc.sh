#!/usr/bin/env bash
# PostgreSQL upsert sink throughput (issue 5). ROWS rows from `datagen` (KEYS distinct
# keys, so most rows update a key already written) go through `sluice run` into a
# jdbc upsert table, at sink.buffer-flush.max-rows 1000 and 10000, without and with
# checkpoints (exactly-once staging). Baseline in the same run: the server's own
# `INSERT … SELECT FROM generate_series … ON CONFLICT DO UPDATE` of the same row count
# (no client, no network: what the table can take). One line per run.
#
#   scripts/bench-jdbc.sh
#   ROWS=2000000 KEYS=100000 scripts/bench-jdbc.sh
#
# Needs a release build (made here) and PostgreSQL on 127.0.0.1:5432 (started here if
# absent).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${ROWS:-1000000}"
KEYS="${KEYS:-100000}" # at least 10000
WORKERS="${WORKERS:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target-release}"
if [ -z "${SLUICE:-}" ]; then
  cargo build --release -p sluice-cli >&2
  SLUICE="$CARGO_TARGET_DIR/release/sluice"
fi
./scripts/services/postgres.sh
export PGOPTIONS="-c client_min_messages=warning"
PSQL=(psql -h 127.0.0.1 -U postgres -d test -Atq -v ON_ERROR_STOP=1)
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"; "${PSQL[@]}" -c "DROP TABLE IF EXISTS bench_upsert, bench_upsert_sluice_staging" >/dev/null 2>&1 || true' EXIT
reset() {
  "${PSQL[@]}" -c "DROP TABLE IF EXISTS bench_upsert, bench_upsert_sluice_staging;
    CREATE TABLE bench_upsert (id bigint PRIMARY KEY, name text, amount double precision, ts timestamp(3))"
}
now() { date +%s.%N; }
reset
t0=$(now)
# In statements of 10,000 rows (distinct keys in each, as ON CONFLICT requires).
"${PSQL[@]}" -c "DO \$\$ BEGIN FOR i IN 0..($ROWS - 1) / 10000 LOOP
    INSERT INTO bench_upsert SELECT g % $KEYS, md5(g::text), g * 0.5, now()
    FROM generate_series(i * 10000 + 1, least((i + 1) * 10000, $ROWS)) g
    ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, amount = EXCLUDED.amount, ts = EXCLUDED.ts;
  END LOOP; END \$\$"
t1=$(now)
awk -v r="$ROWS" -v a="$t0" -v b="$t1" 'BEGIN { printf "baseline server-side upsert: %d rows in %.2f s = %.0f rows/s\n", r, b - a, r / (b - a) }'
for batch in 1000 10000; do
  for mode in none 1s; do
    reset
    cat > "$DIR/p.sql" <<SQL
CREATE TABLE src (id BIGINT, name STRING, amount DOUBLE, ts TIMESTAMP(3))
WITH ('connector' = 'datagen', 'number-of-rows' = '$ROWS', 'rows-per-second' = '1000000000',
      'fields.id.min' = '0', 'fields.id.max' = '$((KEYS - 1))', 'fields.name.length' = '32');
CREATE TABLE out (id BIGINT, name STRING, amount DOUBLE, ts TIMESTAMP(3), PRIMARY KEY (id) NOT ENFORCED)
WITH ('connector' = 'jdbc', 'url' = 'jdbc:postgresql://127.0.0.1:5432/test', 'table-name' = 'bench_upsert',
      'username' = 'postgres', 'sink.buffer-flush.max-rows' = '$batch');
INSERT INTO out SELECT * FROM src;
SQL
    args=(run -q -w "$WORKERS" "$DIR/p.sql")
    [ "$mode" = 1s ] && args+=(--checkpoint-dir "$DIR/chk-$batch" --checkpoint-interval 1s)
    t0=$(now)
    SLUICE_LOG=error "$SLUICE" "${args[@]}"
    t1=$(now)
    n=$("${PSQL[@]}" -c "SELECT count(*) FROM bench_upsert")
    awk -v r="$ROWS" -v a="$t0" -v b="$t1" -v batch="$batch" -v mode="$mode" -v n="$n" \
      'BEGIN { printf "sluice batch=%d checkpoints=%s: %d rows in %.2f s = %.0f rows/s (%d keys in the table)\n", batch, mode, r, b - a, r / (b - a), n }'
  done
done
