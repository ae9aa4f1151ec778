#!/usr/bin/env bash
# Side-by-side benchmark: Sluice and Apache Flink on the same JSON file of Nexmark bids
# (q0, q1, q2, one worker / parallelism 1), plus Sluice on its built-in generator.
# Prints one line per run; copy them into bench/RESULTS.md with the date.
#
#   scripts/bench.sh            # 10M events
#   EVENTS=1000000 scripts/bench.sh
#
# Needs: a release build (built here), python3 and java 17 for the Flink peer
# (../shared/peers/flink/run.sh installs Flink into ~/.cache on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${EVENTS:-10000000}"
PEERS="${PEERS:-../shared/peers}"
DATA="${DATA:-$HOME/.cache/sluice-bench/bids-$EVENTS.json}"
RUNS="${RUNS:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
cargo build --release -p sluice-cli >&2
SLUICE="$CARGO_TARGET_DIR/release/sluice"
mkdir -p "$(dirname "$DATA")"
if [ ! -s "$DATA" ]; then
  echo "# generating $EVENTS bids into $DATA with the peer's generator" >&2
  python3 "$PEERS/nexmark_gen.py" --events "$EVENTS" --out "$DATA" --workers 2 >&2
fi
for q in q0 q1 q2; do
  for _ in $(seq "$RUNS"); do "$SLUICE" bench nexmark --query "$q" --input "$DATA" --workers 1; done
  if [ -x "$PEERS/flink/run.sh" ] && [ "${SKIP_FLINK:-0}" != 1 ]; then
    for _ in $(seq "$RUNS"); do EVENTS="$EVENTS" "$PEERS/flink/run.sh" "$q" "$DATA" 1; done
  fi
done
for q in q0 q1 q2; do
  for _ in $(seq "$RUNS"); do "$SLUICE" bench nexmark --query "$q" --events "$EVENTS" --workers 1; done
done
