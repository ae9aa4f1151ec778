#!/usr/bin/env bash
# Makes sure a NATS server with JetStream answers on 127.0.0.1:4222 (the nats
# connector's tests). Uses the server that is running; otherwise installs Debian's
# nats-server if needed and starts one with JetStream, keeping its data in a temporary
# directory (it stays up for the rest of the test run).
#
#   scripts/services/nats.sh
set -euo pipefail
PORT="${NATS_PORT_TEST:-4222}"
up() {
  # A NATS server greets every connection with an INFO line; JetStream shows in it.
  exec 3<>"/dev/tcp/127.0.0.1/$PORT" 2>/dev/null || return 1
  local line
  IFS= read -r -t 2 line <&3 || { exec 3>&-; return 1; }
  exec 3>&-
  [[ "$line" == INFO* ]] || return 1
  if [[ "$line" != *'"jetstream":true'* ]]; then
    echo "a NATS server on 127.0.0.1:$PORT runs without JetStream (start it with -js)" >&2
    exit 1
  fi
}
if up; then
  exit 0
fi
if ! command -v nats-server >/dev/null; then
  echo "# installing nats-server (for the nats connector tests)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q nats-server >&2 || { apt-get update -q >&2 && apt-get install -y -q nats-server >&2; }
fi
DATA="$(mktemp -d /tmp/sluice-nats.XXXXXX)"
echo "# starting NATS (JetStream) on 127.0.0.1:$PORT (in $DATA)" >&2
nohup nats-server -a 127.0.0.1 -p "$PORT" -js -sd "$DATA" -l "$DATA/nats.log" >/dev/null 2>&1 &
for _ in $(seq 1 50); do
  up && exit 0
  sleep 0.1
done
echo "NATS did not start on 127.0.0.1:$PORT; its log:" >&2
cat "$DATA/nats.log" >&2
exit 1
