#!/usr/bin/env bash
# MQTT source throughput (issue 6): MESSAGES QoS 1 JSON messages wait in a persistent
# session of a Mosquitto of this script's own; then they are read
#  - by mosquitto_sub (the peer: Mosquitto's own client, printing to /dev/null), and
#  - by Sluice: the mqtt source counting them into Redis (acknowledging after each
#    checkpoint), timed until the count in Redis reaches MESSAGES.
# One line each with messages/s; Sluice's also as a ratio of the peer's.
#
#   SLUICE=<release binary> scripts/bench-mqtt.sh
#   MESSAGES=200000 scripts/bench-mqtt.sh   (more than a session's 65,535 packet ids
#                                            is fine: they are reused after each ack)
#
# Needs a release build (made here when SLUICE is unset), Debian's mosquitto and
# mosquitto-clients, and Redis on 127.0.0.1:6379 (started here if absent).
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES="${MESSAGES:-60000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target-release}"
if [ -z "${SLUICE:-}" ]; then
  cargo build --release -p sluice-cli >&2
  SLUICE="$CARGO_TARGET_DIR/release/sluice"
fi
./scripts/services/mqtt.sh
command -v mosquitto_pub >/dev/null || apt-get install -y -q mosquitto-clients >&2
./scripts/services/redis.sh
DIR="$(mktemp -d)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$DIR/m.conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 0
max_queued_messages 0
user $(id -un)
CONF
mosquitto -c "$DIR/m.conf" >/dev/null 2>&1 &
BROKER=$!
trap 'kill $BROKER 2>/dev/null || true; redis-cli DEL bench:mqtt:count >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
sleep 0.5
python3 - "$DIR/msgs.txt" "$MESSAGES" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write('{"device": "d%d", "temp": %d.%d}\n' % (i % 100, 20 + i % 15, i % 10))
PY
now() { date +%s.%N; }
fill() { # client id: a persistent session holding MESSAGES messages
  timeout 2 mosquitto_sub -p "$PORT" -c -i "$1" -q 1 -t 'bench/+' >/dev/null 2>&1 || true
  # stdin stays open a while after the last line: mosquitto_pub -l disconnects at EOF
  # and drops what it has not yet sent (with 150,000 lines only ~19,000 arrived).
  (cat "$DIR/msgs.txt"; sleep 5) | mosquitto_pub -p "$PORT" -q 1 -t bench/t -l
}
fill peer
t0=$(now)
mosquitto_sub -p "$PORT" -c -i peer -q 1 -t 'bench/+' -C "$MESSAGES" > /dev/null
t1=$(now)
PEER=$(awk -v n="$MESSAGES" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
printf '%-44s %8d msgs in %6.2f s = %9d msgs/s\n' "peer: mosquitto_sub" "$MESSAGES" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$PEER"
fill sluice-bench
redis-cli DEL bench:mqtt:count >/dev/null
cat > "$DIR/p.sql" <<SQL
CREATE TABLE readings (device STRING, temp DOUBLE)
WITH ('connector' = 'mqtt', 'url' = 'mqtt://127.0.0.1:$PORT', 'topic' = 'bench/+', 'qos' = '1',
      'client-id' = 'sluice-bench', 'format' = 'json');
CREATE TABLE counted (k STRING, n BIGINT, PRIMARY KEY (k) NOT ENFORCED)
WITH ('connector' = 'redis', 'url' = 'redis://127.0.0.1:6379/0', 'sink.command' = 'hset', 'key' = 'bench:mqtt:{k}');
INSERT INTO counted SELECT 'count', COUNT(*) FROM readings;
SQL
t0=$(now)
SLUICE_LOG=error "$SLUICE" run -q --checkpoint-dir "$DIR/chk" --checkpoint-interval "${INTERVAL:-1s}" "$DIR/p.sql" &
JOB=$!
while [ "$(redis-cli --raw HGET bench:mqtt:count n)" != "$MESSAGES" ]; do
  sleep 0.02
  if ! kill -0 "$JOB" 2>/dev/null; then echo "sluice stopped" >&2; exit 1; fi
done
t1=$(now)
kill "$JOB"; wait "$JOB" 2>/dev/null || true
awk -v n="$MESSAGES" -v a="$t0" -v b="$t1" -v peer="$PEER" -v name="sluice: mqtt source -> count -> redis" \
  'BEGIN { rate = n / (b - a); printf "%-44s %8d msgs in %6.2f s = %9.0f msgs/s  (%.2f of the peer)\n", name, n, b - a, rate, rate / peer }'
