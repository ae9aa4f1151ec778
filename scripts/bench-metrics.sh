#!/usr/bin/env bash
# What the operator metrics cost, and latency under load (issue 7).
# (1) Nexmark q0 and q5 from the built-in generator with per-operator timing (the
#     batch-time histograms and backpressure counters of /metrics) and without
#     (--no-operator-timing), alternating, ROUNDS times each: the ratio of the median
#     rates is the overhead.
# (2) q0 and q5 at half the rate measured in (1) (--rate): the batch latency
#     percentiles (source read -> sink write, chained tasks) the run prints.
# (3) The UI's list with PIPELINES running pipelines: the time `GET /api/pipelines` and
#     `GET /metrics` take (curl), with every pipeline generating events.
#
#   scripts/bench-metrics.sh
#   EVENTS=20000000 ROUNDS=5 PIPELINES=50 scripts/bench-metrics.sh
#
# Needs a release build (made here; SLUICE=path skips it). The numbers go into
# bench/RESULTS.md with the date.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${EVENTS:-20000000}"
ROUNDS="${ROUNDS:-3}"
WORKERS="${WORKERS:-1}"
PIPELINES="${PIPELINES:-50}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target-release}"
if [ -z "${SLUICE:-}" ]; then
  cargo build --release --locked -p sluice-cli >&2
  SLUICE="$CARGO_TARGET_DIR/release/sluice"
fi
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
rate_of() { grep -o 'events_per_sec=[0-9]*' | cut -d= -f2; }
for q in ${QUERIES:-q0 q5}; do
  on=(); off=()
  for r in $(seq "$ROUNDS"); do
    a=$("$SLUICE" bench nexmark --query "$q" --events "$EVENTS" --workers "$WORKERS")
    echo "on  round=$r $a" | head -1
    b=$("$SLUICE" bench nexmark --query "$q" --events "$EVENTS" --workers "$WORKERS" --no-operator-timing)
    echo "off round=$r $b" | head -1
    on+=("$(echo "$a" | rate_of)"); off+=("$(echo "$b" | rate_of)")
  done
  mon=$(printf '%s\n' "${on[@]}" | median); moff=$(printf '%s\n' "${off[@]}" | median)
  echo "# $q: median events/s with timing $mon, without $moff, ratio $(awk -v a="$mon" -v b="$moff" 'BEGIN {printf "%.3f", a / b}')"
  half=$(awk -v a="$mon" 'BEGIN {printf "%d", a / 2}')
  n=$(awk -v h="$half" 'BEGIN {printf "%d", h * 20}')
  echo "# $q at $half events/s (half of the median) for 20 s:"
  "$SLUICE" bench nexmark --query "$q" --events "$n" --workers "$WORKERS" --rate "$half" | sed "s/^/  /"
done
# (3) Many pipelines on one server.
DIR="$(mktemp -d)"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$SLUICE" serve --data-dir "$DIR/data" --listen "127.0.0.1:$PORT" --pg-listen off 2>"$DIR/serve.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
for i in $(seq "$PIPELINES"); do
  sql="CREATE TABLE g (k BIGINT, v BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '1000', 'fields.k.max' = '100');
       CREATE TABLE o (k BIGINT, n BIGINT, PRIMARY KEY (k) NOT ENFORCED) WITH ('connector' = 'blackhole');
       INSERT INTO o SELECT k, COUNT(*) FROM g GROUP BY k;"
  python3 -c 'import json, sys; print(json.dumps({"name": sys.argv[1], "sql": sys.argv[2]}))' "p$i" "$sql" \
    | curl -fs -o /dev/null -H 'Content-Type: application/json' -d @- "http://127.0.0.1:$PORT/api/pipelines"
done
sleep 5
for path in /api/pipelines /metrics /api/pipelines/p1 /; do
  t=$(for _ in $(seq 20); do curl -fs -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$PORT$path"; done | median)
  echo "# $PIPELINES pipelines: GET $path median $(awk -v t="$t" 'BEGIN {printf "%.1f", t * 1000}') ms over 20 requests"
done
