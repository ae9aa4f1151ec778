#!/usr/bin/env bash
# Makes sure PostgreSQL answers on 127.0.0.1:5432 with trust authentication, a role
# `postgres` and a database `test` (the jdbc connector's tests). Uses the server that is
# running; otherwise starts a throwaway cluster in a temporary directory (it stays up for
# the rest of the test run). Installs Debian's package when its binaries are missing
# (the outage test starts a cluster of its own).
#
#   scripts/services/postgres.sh
set -euo pipefail
PORT="${PGPORT_TEST:-5432}"
# The server's binaries are needed even when one runs: a test starts its own cluster.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "# installing PostgreSQL (for the jdbc connector tests)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q postgresql >&2 || { apt-get update -q >&2 && apt-get install -y -q postgresql >&2; }
fi
if pg_isready -q -h 127.0.0.1 -p "$PORT" 2>/dev/null; then
  psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
    || psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qc "CREATE DATABASE test"
  exit 0
fi
BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
DATA="$(mktemp -d /tmp/sluice-postgres.XXXXXX)"
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[ "$(id -u)" = 0 ] && chown postgres "$DATA"
echo "# starting PostgreSQL on 127.0.0.1:$PORT (data in $DATA)" >&2
as_owner "$BIN/initdb" -D "$DATA" -A trust -U postgres >/dev/null
as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w \
  -o "-p $PORT -c listen_addresses=127.0.0.1 -k $DATA -c fsync=off" start >&2
psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qc "CREATE DATABASE test"
