#!/usr/bin/env bash
# Kafka throughput (issue 5), against tansu on 127.0.0.1:9092 (scripts/services/kafka.sh).
# EVENTS Nexmark bids (the peers' generator, a JSON file) are loaded into a topic of
# PARTS partitions by Sluice itself; then, one line each:
#   - load:   file → Kafka (json, at-least-once): the producer side;
#   - q0:     Kafka → Kafka (a second topic), against q0 file → blackhole as the baseline;
#   - q5:     Kafka → q5 → blackhole, against q5 file → blackhole as the baseline.
# Each baseline runs in the same invocation, so the ratio (Kafka / file, events/s) is
# what Kafka costs. Rows read from Kafka are taken from Sluice's summary line.
#
#   scripts/bench-kafka.sh
#   EVENTS=2000000 ROUNDS=3 scripts/bench-kafka.sh
#
# Needs a release build (made here unless SLUICE names one), python3 (the generator,
# and confluent-kafka from PyPI to create the topics).
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${EVENTS:-5000000}"
PARTS="${PARTS:-2}"
WORKERS="${WORKERS:-2}"
ROUNDS="${ROUNDS:-2}"
PEERS="${PEERS:-../shared/peers}"
DATA="${DATA:-$HOME/.cache/sluice-bench/bids-$EVENTS.json}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target-release}"
if [ -z "${SLUICE:-}" ]; then
  cargo build --release -p sluice-cli >&2
  SLUICE="$CARGO_TARGET_DIR/release/sluice"
fi
./scripts/services/kafka.sh
python3 -c 'import confluent_kafka' 2>/dev/null || python3 -m pip install -q confluent-kafka >&2
mkdir -p "$(dirname "$DATA")"
if [ ! -s "$DATA" ]; then
  echo "# generating $EVENTS bids into $DATA" >&2
  python3 "$PEERS/nexmark_gen.py" --events "$EVENTS" --out "$DATA" --workers 2 >&2
fi
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
IN="bench-bids-$$"
OUT="bench-out-$$"
python3 - "$IN" "$OUT" "$PARTS" <<'PY'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": "127.0.0.1:9092"})
for f in a.create_topics([NewTopic(t, int(sys.argv[3]), 1) for t in sys.argv[1:3]]).values():
    f.result()
PY
COLS="auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, date_time TIMESTAMP(3), extra STRING"
WM="WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND"
file_table="CREATE TABLE bid_src ($COLS, $WM) WITH ('connector' = 'filesystem', 'path' = '$DATA', 'format' = 'json');"
kafka_table="CREATE TABLE bid_src ($COLS, $WM) WITH ('connector' = 'kafka', 'topic' = '$IN',
  'properties.bootstrap.servers' = '127.0.0.1:9092', 'scan.startup.mode' = 'earliest-offset',
  'scan.bounded.mode' = 'latest-offset', 'format' = 'json');"
view="CREATE VIEW bid AS SELECT auction, bidder, price, channel, url, date_time AS \`dateTime\`, extra FROM bid_src;"
to_kafka() { echo "CREATE TABLE sink ($COLS) WITH ('connector' = 'kafka', 'topic' = '$1',
  'properties.bootstrap.servers' = '127.0.0.1:9092', 'format' = 'json');
INSERT INTO sink SELECT * FROM bid_src;"; }
q0_blackhole="CREATE TABLE sink ($COLS) WITH ('connector' = 'blackhole'); INSERT INTO sink SELECT * FROM bid_src;"
q5="$view
$(cat tests/nexmark/q5.sql)"
# Runs SQL ($2) and prints "<label>: N rows in T s = R rows/s" from Sluice's summary.
run() {
  printf '%s\n' "$2" > "$DIR/p.sql"
  local t0 t1 rows
  t0=$(date +%s.%N)
  rows=$("$SLUICE" run -w "$WORKERS" "$DIR/p.sql" 2>&1 >/dev/null | sed -n 's/.*: \([0-9]*\) rows in .*/\1/p' | tail -1)
  t1=$(date +%s.%N)
  awk -v l="$1" -v r="$rows" -v a="$t0" -v b="$t1" 'BEGIN { printf "%s: %d rows in %.2f s = %.0f rows/s\n", l, r, b - a, r / (b - a) }'
}
run "load file -> kafka ($PARTS partitions)" "$file_table
$(to_kafka "$IN")"
for _ in $(seq "$ROUNDS"); do
  run "q0 file -> blackhole (baseline)" "$file_table
$q0_blackhole"
  run "q0 kafka -> kafka" "$kafka_table
$(to_kafka "$OUT")"
  run "q5 file -> blackhole (baseline)" "$file_table
$q5"
  run "q5 kafka -> blackhole" "$kafka_table
$q5"
done
