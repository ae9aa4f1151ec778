#!/usr/bin/env bash
# Side-by-side benchmark of the event-time Nexmark queries: Sluice and Apache Flink run
# the suite's own SQL over the same JSON file of bids (one worker / parallelism 1), then
# Sluice alone on its built-in generator (all suite queries). One line per run; the
# numbers go into bench/RESULTS.md with the date.
#
#   scripts/bench-event-time.sh                 # 5M bids
#   EVENTS=1000000 SKIP_FLINK=1 scripts/bench-event-time.sh
#
# Needs a release build (made here) and, for Flink, python3 + Java 17 (bench/flink/run.sh
# installs Flink into ~/.cache on first use). CPU seconds come from /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${EVENTS:-5000000}"
PEERS="${PEERS:-../shared/peers}"
DATA="${DATA:-$HOME/.cache/sluice-bench/bids-$EVENTS.json}"
QUERIES="${QUERIES:-q5 q7 q15 q16 q17 q18 q19}"
GEN_QUERIES="${GEN_QUERIES:-q3 q4 q5 q7 q8 q9 q11 q12 q13 q15 q16 q17 q18 q19 q20 q23}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target-release}"
cargo build --release -p sluice-cli >&2
SLUICE="$CARGO_TARGET_DIR/release/sluice"
mkdir -p "$(dirname "$DATA")"
if [ ! -s "$DATA" ]; then
  echo "# generating $EVENTS bids into $DATA with the peer's generator" >&2
  python3 "$PEERS/nexmark_gen.py" --events "$EVENTS" --out "$DATA" --workers 1 >&2
fi
# Sluice's CPU seconds (user + system) after each line, as `# cpu=...`.
timed() { /usr/bin/time -f "# cpu_s=%U+%S max_rss_kib=%M" "$@"; }
for q in $QUERIES; do
  timed "$SLUICE" bench nexmark --query "$q" --input "$DATA" --workers 1 2>&1
  if [ "${SKIP_FLINK:-0}" != 1 ]; then
    # Flink 2.3 reserves `dateTime`: run the suite text with it back-quoted
    # (see bench/flink/README.md).
    EVENTS="$EVENTS" bench/flink/run.sh "backtick/$q" "$DATA" 1 2>&1 | grep -E '^flink|flink-detail' || true
  fi
done
SIDE="$(mktemp -d)"; mkdir -p "$SIDE/data"
seq 0 9999 | awk '{print $1",value-"$1}' > "$SIDE/data/side_input.txt"
for q in $GEN_QUERIES; do
  FLINK_HOME="$SIDE" timed "$SLUICE" bench nexmark --query "$q" --events "${GEN_EVENTS:-10000000}" --workers 1 2>&1
done
