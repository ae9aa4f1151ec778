#!/usr/bin/env bash
# Makes sure a Kafka-protocol broker answers on 127.0.0.1:9092 (the kafka connector's
# tests). No Apache Kafka or Redpanda can be installed on these machines: the broker is
# tansu (crates.io), installed once into ~/.cache/sluice-tools (about 12 CPU-minutes)
# and started with in-memory storage; it stays up for the rest of the test run. Also
# installs what rdkafka's bundled librdkafka build needs (cmake, g++, pkg-config,
# libcurl) when missing.
#
#   scripts/services/kafka.sh
set -euo pipefail
PORT="${KAFKA_PORT_TEST:-9092}"
TOOLS="${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}"
missing=()
for p in cmake g++ pkg-config libcurl4-openssl-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "# installing ${missing[*]} (to build librdkafka)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >&2 || { apt-get update -q >&2 && apt-get install -y -q "${missing[@]}" >&2; }
fi
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
if answers; then
  exit 0
fi
TANSU="$TOOLS/bin/tansu"
if [ ! -x "$TANSU" ]; then
  echo "# installing tansu 0.6.0 into $TOOLS (a Kafka-protocol broker, for the kafka tests; ~12 CPU-minutes once)" >&2
  # Its own target directory: the workspace's CARGO_TARGET_DIR holds other builds.
  CARGO_TARGET_DIR="$TOOLS/target" cargo install tansu@0.6.0 --locked --no-default-features \
    --features dynostore --root "$TOOLS" >&2
  rm -rf "$TOOLS/target"
fi
LOG="$(mktemp /tmp/sluice-tansu.XXXXXX.log)"
echo "# starting tansu on 127.0.0.1:$PORT (log in $LOG)" >&2
nohup "$TANSU" broker --listener-url "tcp://127.0.0.1:$PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$PORT" \
  --storage-engine memory://tansu/ >"$LOG" 2>&1 &
for _ in $(seq 1 100); do
  answers && exit 0
  sleep 0.2
done
echo "tansu did not start on 127.0.0.1:$PORT; its log:" >&2
cat "$LOG" >&2
exit 1
