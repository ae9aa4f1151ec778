#!/usr/bin/env bash
# Run one Nexmark suite query (the suite's own SQL text) on Apache Flink over a BID JSON file.
#
#   run.sh QUERY INPUT [PARALLELISM]
#     QUERY: qN (the suite file tests/nexmark/qN.sql, verbatim),
#            backtick/qN (the same text with `dateTime` back-quoted, see README.md),
#            or a path to a .sql file
#     INPUT: newline-delimited BID JSON (/work/shared/peers/nexmark_gen.py)
#
# The source DDL bid_file.sql (table bid_file + view bid, ${INPUT} substituted) is executed
# first, then the query file's statements (sink DDL + INSERT): the two files run as one
# script, by the peer's runner /work/shared/peers/flink/flink_sql_run.py (--source-ddl).
#
# stdout: one line  `flink <query> <events> <seconds> <events_per_sec>`
#   seconds = the job's net runtime as reported by Flink (excludes JVM start, planning).
# stderr: `# flink-detail ...` (incl. jvm_peak_rss_mib, jvm_cpu_s) and
#         `# flink-process wall_s=... python_maxrss_kib=...`.
#
# env: as /work/shared/peers/flink/run.sh — FLINK_VENV (default
#      $HOME/.cache/sluice-peers/flink-venv, installed if missing), FLINK_VERSION (2.3.0),
#      PYTHON, EVENTS (default: wc -l INPUT), JVM_ARGS (read by PyFlink's gateway),
#      FLINK_CONF (space separated KEY=VALUE), PEER_DIR (default /work/shared/peers/flink).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEER_DIR="${PEER_DIR:-/work/shared/peers/flink}"
FLINK_VENV="${FLINK_VENV:-$HOME/.cache/sluice-peers/flink-venv}"
FLINK_VERSION="${FLINK_VERSION:-2.3.0}"

if [ $# -lt 2 ]; then
  sed -n '2,22p' "$0" >&2; exit 2
fi
Q="$1"; INPUT="$2"; P="${3:-1}"
SUITE="$HERE/../../tests/nexmark"
TMPQ="$(mktemp --suffix .sql)"
if [ -f "$Q" ]; then
  NAME="$(basename "$Q" .sql)"
elif [ "${Q#backtick/}" != "$Q" ]; then
  # The suite file with every `dateTime` back-quoted (Flink 2.3 reserves the word).
  NAME="${Q//\//-}"                      # backtick/q5 -> backtick-q5
  [ -f "$SUITE/${Q#backtick/}.sql" ] || { echo "no such query: $1" >&2; exit 2; }
  sed -e 's/`dateTime`/dateTime/g' -e 's/\bdateTime\b/`dateTime`/g' \
    "$SUITE/${Q#backtick/}.sql" > "$TMPQ"
  Q="$TMPQ"
else
  NAME="$Q"
  Q="$SUITE/$Q.sql"
fi
[ -f "$Q" ] || { echo "no such query: $1" >&2; exit 2; }
[ -e "$INPUT" ] || { echo "no such input: $INPUT" >&2; exit 2; }
DDL="$HERE/bid_file.sql"
RUNNER="$PEER_DIR/flink_sql_run.py"
[ -f "$RUNNER" ] || { echo "peer runner not found: $RUNNER" >&2; exit 2; }

if [ ! -x "$FLINK_VENV/bin/python" ] || ! "$FLINK_VENV/bin/python" -c 'import pyflink' 2>/dev/null; then
  echo "# installing apache-flink==$FLINK_VERSION into $FLINK_VENV" >&2
  "${PYTHON:-python3}" -m venv "$FLINK_VENV"
  "$FLINK_VENV/bin/pip" install -q --upgrade pip >&2
  "$FLINK_VENV/bin/pip" install -q "apache-flink==$FLINK_VERSION" >&2
fi
command -v java >/dev/null || [ -n "${JAVA_HOME:-}" ] || { echo "java not found (need Java 11/17/21)" >&2; exit 2; }

EVENTS="${EVENTS:-$(wc -l < "$INPUT" 2>/dev/null || echo -1)}"
CONF_ARGS=()
for kv in ${FLINK_CONF:-}; do CONF_ARGS+=(--conf "$kv"); done

TIMEF="$(mktemp)"; trap 'rm -f "$TIMEF" "$TMPQ"' EXIT
TIMECMD=()
if [ -x /usr/bin/time ]; then TIMECMD=(/usr/bin/time -f '%e %M' -o "$TIMEF"); fi
"${TIMECMD[@]}" "$FLINK_VENV/bin/python" "$RUNNER" "$Q" "$INPUT" --source-ddl "$DDL" \
  --parallelism "$P" --events "$EVENTS" --name "$NAME" "${CONF_ARGS[@]}"
if [ -s "$TIMEF" ]; then
  read -r WALL MAXRSS < "$TIMEF"
  echo "# flink-process wall_s=$WALL python_maxrss_kib=$MAXRSS" >&2
fi
