#!/usr/bin/env bash
# The test command (README, .ci/run): builds the workspace and runs every test, then
# prints one closing line with the totals ("tests: N passed, M failed").
# Needs a Rust toolchain, util-linux's `script` (the terminal test) and Python's pip
# (moto, an S3-compatible server the checkpoint test starts on loopback); later
# connectors' servers are installed and started from here. Reuses a target dir outside
# the clone when one exists.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
if ! command -v script >/dev/null; then
  echo "# installing util-linux (for \`script\`)" >&2
  apt-get install -y -q util-linux >&2 || true
fi
# protoc, which the protobuf format's tests use to compile descriptors and encode messages
# independently of Sluice.
if ! command -v protoc >/dev/null; then
  echo "# installing protobuf-compiler (protoc, for the protobuf format's tests)" >&2
  apt-get install -y -q protobuf-compiler >&2 || { apt-get update -q >&2 && apt-get install -y -q protobuf-compiler >&2; } || true
fi
# Headless Chromium, which the web UI's end-to-end test drives over the DevTools
# protocol.
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  echo "# installing chromium (for the web UI's browser test)" >&2
  apt-get install -y -q chromium >&2 || { apt-get update -q >&2 && apt-get install -y -q chromium >&2; } || true
fi
# An S3-compatible server for the checkpoint-storage test (moto, from PyPI).
if ! command -v moto_server >/dev/null; then
  echo "# installing moto (an S3-compatible server, for the S3 checkpoint test)" >&2
  python3 -m pip install -q 'moto[server]' >&2 || true
  hash -r
fi
# PostgreSQL on loopback, for the jdbc connector's tests (started if absent).
./scripts/services/postgres.sh
# A Kafka-protocol broker (tansu) on loopback, for the kafka connector's tests.
./scripts/services/kafka.sh
# Redis on loopback, for the redis connector's tests.
./scripts/services/redis.sh
# NATS with JetStream on loopback, for the nats connector's tests.
./scripts/services/nats.sh
# Mosquitto, whose brokers the mqtt connector's tests start themselves.
./scripts/services/mqtt.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
