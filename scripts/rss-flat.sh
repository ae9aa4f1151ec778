#!/usr/bin/env bash
# Shows that memory stays bounded however large the input: a big JSON file (default
# 10 GB) read through a deliberately slow sink (blackhole throttled to 200k rows/s).
# Samples the process's RSS every 5 s for DURATION seconds, then stops it with Ctrl-C.
#
#   scripts/rss-flat.sh            # 10 GB, 60 s
#   GB=1 DURATION=20 scripts/rss-flat.sh
set -euo pipefail
cd "$(dirname "$0")/.."
GB="${GB:-10}"
DURATION="${DURATION:-60}"
DIR="${DIR:-$HOME/.cache/sluice-bench}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
cargo build --release -p sluice-cli >&2
SLUICE="$CARGO_TARGET_DIR/release/sluice"
DATA="$DIR/big-${GB}g.json"
mkdir -p "$DIR"
if [ ! -s "$DATA" ]; then
  # ~205 bytes per bid line, 46 of 50 events are bids.
  EV=$(( GB * 1024 * 1024 * 1024 / 205 * 50 / 46 ))
  echo "# writing $DATA ($EV events)" >&2
  "$SLUICE" gen nexmark --events "$EV" --out "$DATA"
fi
ls -l "$DATA" >&2
SQL="$DIR/rss-flat.sql"
cat > "$SQL" <<SQL
CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
  date_time TIMESTAMP(3), extra STRING)
WITH ('connector' = 'filesystem', 'path' = '$DATA', 'format' = 'json');
CREATE TABLE slow (auction BIGINT, price BIGINT, extra STRING)
WITH ('connector' = 'blackhole', 'sink.throttle.rows-per-second' = '200000');
INSERT INTO slow SELECT auction, price, extra FROM bid;
SQL
"$SLUICE" run --workers 2 "$SQL" 2> "$DIR/rss-flat.log" &
PID=$!
echo "seconds rss_mib"
for t in $(seq 5 5 "$DURATION"); do
  sleep 5
  RSS=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$PID/status" 2>/dev/null || echo gone)
  echo "$t $RSS"
done
kill -INT "$PID"; wait "$PID" || true
tail -1 "$DIR/rss-flat.log"
