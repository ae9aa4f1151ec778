#!/usr/bin/env bash
# What checkpoints cost. (1) Nexmark q5 and q7 from the built-in generator, without
# checkpoints and with one every second, alternating, ROUNDS times each; the ratio of
# the median rates is the overhead. (2) A window holding about 1 GB of state
# (bench/checkpoint-state.sql: 16M one-row groups in a one-day window), checkpointed
# every 1.5 s: each checkpoint's duration, bytes written, state size and alignment from
# the log (the first is whole, the later ones incremental).
#
#   scripts/bench-checkpoints.sh
#   EVENTS=20000000 ROUNDS=5 STATE_ROWS=12000000 scripts/bench-checkpoints.sh
#
# Needs a release build (made here). One line per run; the numbers go into
# bench/RESULTS.md with the date.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${EVENTS:-20000000}"
ROUNDS="${ROUNDS:-3}"
WORKERS="${WORKERS:-2}"
STATE_ROWS="${STATE_ROWS:-16000000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target-release}"
# SLUICE=path/to/sluice skips the build.
if [ -z "${SLUICE:-}" ]; then
  cargo build --release -p sluice-cli >&2
  SLUICE="$CARGO_TARGET_DIR/release/sluice"
fi
SIDE="$(mktemp -d)"; mkdir -p "$SIDE/data"
trap 'rm -rf "$SIDE"' EXIT
seq 0 9999 | awk '{print $1",value-"$1}' > "$SIDE/data/side_input.txt"
for q in ${QUERIES:-q5 q7}; do
  for r in $(seq "$ROUNDS"); do
    FLINK_HOME="$SIDE" "$SLUICE" bench nexmark --query "$q" --events "$EVENTS" --workers "$WORKERS" | sed "s/^/none round=$r /"
    FLINK_HOME="$SIDE" "$SLUICE" bench nexmark --query "$q" --events "$EVENTS" --workers "$WORKERS" --checkpoint-interval 1s | sed "s/^/1s round=$r /"
  done
done
echo "# window state: $STATE_ROWS groups, checkpoint every 1.5 s"
/usr/bin/time -f "# cpu_s=%U+%S max_rss_kib=%M wall_s=%e" \
  "$SLUICE" -v run bench/checkpoint-state.sql -D "ROWS=$STATE_ROWS" -w "$WORKERS" \
  --checkpoint-dir "$SIDE/chk" --checkpoint-interval 1500ms 2>&1 \
  | grep -E 'Checkpoint [0-9]+ complete|Finished|cpu_s' | sed -E 's/\x1b\[[0-9;]*m//g'
