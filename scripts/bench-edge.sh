#!/usr/bin/env bash
# Edge connectors' throughput (issue 6), one line per run with rows/s and the ratio to
# the baseline measured in the same run: Sluice reading the same NDJSON rows from a
# file into a blackhole.
#
# - nats sink: the file's rows published to a JetStream stream (at-least-once: every
#   publication acknowledged);
# - nats source: that stream read back (a bounded run) into a blackhole;
# - http ingest: wrk with 64 connections POSTing NDJSON bodies of 1,000 rows each to
#   `POST /ingest/clicks` for DURATION seconds, pipeline into a blackhole: rows/s and
#   the acknowledgement latency percentiles (wrk's; its client shares the 2 cores).
#
#   SLUICE=<release binary> scripts/bench-edge.sh
#   ROWS=1000000 DURATION=20 scripts/bench-edge.sh
#
# Needs a release build (made here when SLUICE is unset), NATS with JetStream on
# 127.0.0.1:4222 (started here if absent) and wrk (Debian's, installed if absent).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${ROWS:-1000000}"
DURATION="${DURATION:-20}"
WORKERS="${WORKERS:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target-release}"
if [ -z "${SLUICE:-}" ]; then
  cargo build --release -p sluice-cli >&2
  SLUICE="$CARGO_TARGET_DIR/release/sluice"
fi
./scripts/services/nats.sh
command -v wrk >/dev/null || apt-get install -y -q wrk >&2
DIR="$(mktemp -d)"
STREAM="BENCH_EDGE_$$"
cleanup() {
  [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null || true
  # The stream goes with a last pipeline-free request to the server's API.
  python3 - "$STREAM" <<'PY' 2>/dev/null || true
import json, socket, sys
s = socket.create_connection(("127.0.0.1", 4222)); s.recv(4096)
s.sendall(b'CONNECT {"verbose":false}\r\nSUB _r 1\r\nPUB $JS.API.STREAM.DELETE.%s _r 0\r\n\r\nPING\r\n' % sys.argv[1].encode())
s.recv(4096)
PY
  rm -rf "$DIR"
}
trap cleanup EXIT
python3 - "$DIR/clicks.ndjson" "$ROWS" <<'PY'
import random, sys
path, n = sys.argv[1], int(sys.argv[2])
r = random.Random(7)
with open(path, "w") as f:
    for i in range(n):
        f.write('{"user_id": %d, "url": "/p/%d", "ts": %d, "ms": %d}\n' % (r.randrange(100000), r.randrange(500), 1700000000000 + i, r.randrange(2000)))
PY
head -n 1000 "$DIR/clicks.ndjson" > "$DIR/body.ndjson"
COLS="user_id BIGINT, url STRING, ts BIGINT, ms INT"
now() { date +%s.%N; }
report() { # name, rows, seconds
  awk -v r="$2" -v s="$3" -v name="$1" -v base="${BASE:-0}" \
    'BEGIN { rate = r / s; printf "%-40s %9d rows in %6.2f s = %9.0f rows/s", name, r, s, rate;
             if (base > 0) printf "  (%.3f of the baseline)", rate / base; printf "\n" }'
  LAST=$(awk -v r="$2" -v s="$3" 'BEGIN { printf "%.0f", r / s }')
}
timed() { # name, sql
  printf '%s\n' "$2" > "$DIR/p.sql"
  local t0 t1
  t0=$(now)
  SLUICE_LOG=error "$SLUICE" run -q -w "$WORKERS" "$DIR/p.sql"
  t1=$(now)
  report "$1" "$ROWS" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
}
BASE=0
timed "baseline: file -> blackhole" "
CREATE TABLE clicks ($COLS) WITH ('connector' = 'filesystem', 'path' = '$DIR/clicks.ndjson', 'format' = 'json');
CREATE TABLE out ($COLS) WITH ('connector' = 'blackhole');
INSERT INTO out SELECT * FROM clicks;"
BASE=$LAST
# The stream, created through the NATS protocol's JetStream API (no nats CLI needed).
python3 - "$STREAM" <<'PY'
import json, socket, sys
name = sys.argv[1]
cfg = json.dumps({"name": name, "subjects": [name.lower() + ".>"], "storage": "memory"}).encode()
s = socket.create_connection(("127.0.0.1", 4222)); s.recv(4096)
s.sendall(b'CONNECT {"verbose":false}\r\nSUB _r 1\r\nPUB $JS.API.STREAM.CREATE.' + name.encode() + b' _r ' + str(len(cfg)).encode() + b'\r\n' + cfg + b'\r\n')
reply = s.recv(65536)
assert b"error" not in reply.split(b"\r\n", 2)[-1][:200] or b'"error"' not in reply, reply
PY
SUBJ="$(echo "$STREAM" | tr 'A-Z' 'a-z').clicks"
timed "nats sink: file -> JetStream" "
CREATE TABLE clicks ($COLS) WITH ('connector' = 'filesystem', 'path' = '$DIR/clicks.ndjson', 'format' = 'json');
CREATE TABLE out ($COLS) WITH ('connector' = 'nats', 'url' = 'nats://127.0.0.1:4222', 'stream' = '$STREAM',
  'subject' = '$SUBJ', 'format' = 'json');
INSERT INTO out SELECT * FROM clicks;"
timed "nats source: JetStream -> blackhole" "
CREATE TABLE clicks ($COLS) WITH ('connector' = 'nats', 'url' = 'nats://127.0.0.1:4222', 'stream' = '$STREAM',
  'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', 'format' = 'json');
CREATE TABLE out ($COLS) WITH ('connector' = 'blackhole');
INSERT INTO out SELECT * FROM clicks;"
# HTTP ingest under wrk.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$DIR/ingest.sql" <<SQL
CREATE TABLE clicks ($COLS) WITH ('connector' = 'http', 'format' = 'json', 'ingest.queue' = '256');
CREATE TABLE out ($COLS) WITH ('connector' = 'blackhole');
INSERT INTO out SELECT * FROM clicks;
SQL
SLUICE_LOG=error "$SLUICE" run -q -w "$WORKERS" --http "127.0.0.1:$PORT" "$DIR/ingest.sql" &
SERVER=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
cat > "$DIR/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-ndjson"
local f = io.open("$DIR/body.ndjson", "rb")
wrk.body = f:read("*a")
f:close()
LUA
wrk -t 2 -c 64 -d "${DURATION}s" --latency -s "$DIR/post.lua" "http://127.0.0.1:$PORT/ingest/clicks" > "$DIR/wrk.txt"
TOTAL=$(awk '/requests in/ { print $1 }' "$DIR/wrk.txt")
SECS=$(awk '/requests in/ { s = $4; sub(/s,?$/, "", s); print s }' "$DIR/wrk.txt")
BAD=$(awk '/Non-2xx/ { print $NF }' "$DIR/wrk.txt")
report "http ingest: 64 clients x 1000-row NDJSON" "$(( (TOTAL - ${BAD:-0}) * 1000 ))" "$SECS"
awk '/Latency Distribution/ { on = 1; next } on && /%/ { p = $1; sub(/%$/, "", p); printf "  ack latency p%s %s\n", p, $2 } /requests in/ { on = 0 }' "$DIR/wrk.txt"
echo "  non-2xx answers: ${BAD:-0} (429 = backpressure)"
kill "$SERVER" 2>/dev/null || true
wait "$SERVER" 2>/dev/null || true
SERVER=
