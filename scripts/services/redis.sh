#!/usr/bin/env bash
# Makes sure Redis answers on 127.0.0.1:6379 (the redis connector's tests). Uses the
# server that is running; otherwise installs Debian's redis-server if needed and starts
# one that keeps nothing on disk (it stays up for the rest of the test run).
#
#   scripts/services/redis.sh
set -euo pipefail
PORT="${REDIS_PORT_TEST:-6379}"
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  echo "# installing redis-server (for the redis connector tests)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q redis-server >&2 || { apt-get update -q >&2 && apt-get install -y -q redis-server >&2; }
fi
if redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG; then
  exit 0
fi
DATA="$(mktemp -d /tmp/sluice-redis.XXXXXX)"
echo "# starting Redis on 127.0.0.1:$PORT (in $DATA)" >&2
redis-server --daemonize yes --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no \
  --dir "$DATA" --logfile "$DATA/redis.log"
for _ in $(seq 1 50); do
  redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG && exit 0
  sleep 0.1
done
echo "Redis did not start on 127.0.0.1:$PORT; its log:" >&2
cat "$DATA/redis.log" >&2
exit 1
