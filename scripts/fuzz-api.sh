#!/usr/bin/env bash
# Fuzzes the HTTP surface of `sluice serve`: the REST API from its OpenAPI document
# (schemathesis), then an ingest endpoint, the API bodies and the tail with hostile
# requests. Fails on any server error (5xx other than an ingest 503/504), on a
# request the server does not answer, or when the server or the fuzzed pipeline is
# not healthy afterwards.
#
# Usage: scripts/fuzz-api.sh
#   SLUICE_BIN       the binary (default target/debug/sluice, else
#                    $CARGO_TARGET_DIR/debug/sluice, default ~/.cache/sluice-target)
#   ST_MAX_EXAMPLES  schemathesis test cases per operation (default 50)
#   ST_TIME_LIMIT    seconds schemathesis may take in all (default 600)
#   ST_CHECKS        schemathesis checks (default not_a_server_error)
#   ST_SEED          schemathesis seed, to repeat a run
#   FUZZ_SEED        seed of the hostile bodies (default: random, printed)
#   FUZZ_BODIES      random ingest bodies on top of the fixed ones (default 250)
#   KEEP=1           keep the temp dir (server log, config, data)
# Needs python3 and curl; installs schemathesis with pip when `st` is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${SLUICE_BIN:-target/debug/sluice}"
# scripts/test.sh builds into $CARGO_TARGET_DIR (default ~/.cache/sluice-target).
if [ -z "${SLUICE_BIN:-}" ] && [ ! -x "$BIN" ]; then
  BIN="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}/debug/sluice"
fi
case "$BIN" in /*) ;; *) BIN="$PWD/$BIN" ;; esac
if [ ! -x "$BIN" ]; then
  echo "fuzz-api: no binary at $BIN: build it (cargo build -p sluice-cli --bin sluice) or set SLUICE_BIN" >&2
  exit 2
fi
command -v python3 >/dev/null || { echo "fuzz-api: needs python3" >&2; exit 2; }
command -v curl >/dev/null || { echo "fuzz-api: needs curl" >&2; exit 2; }
if ! command -v st >/dev/null 2>&1; then
  echo "== installing schemathesis (pip)"
  python3 -m pip install -q schemathesis
  hash -r
  # pip --user puts scripts in ~/.local/bin.
  command -v st >/dev/null 2>&1 || export PATH="$HOME/.local/bin:$PATH"
  command -v st >/dev/null 2>&1 || { echo "fuzz-api: schemathesis installed, but no 'st' on PATH" >&2; exit 2; }
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz-api.XXXXXX")"
SERVER_PID=""
cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    # Running pipelines take a savepoint on SIGTERM; do not wait for long.
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
    echo "fuzz-api: kept $TMP (server log: $TMP/server.log)" >&2
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

KEY="$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')"
HASH="$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)"
mkdir -p "$TMP/data"
cat >"$TMP/sluice.toml" <<EOF
data_dir = "$TMP/data"

[limits]
max_body_bytes = 65536

[[api_keys]]
name = "fuzz"
scopes = ["admin"]
sha256 = "$HASH"
EOF

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Start the server; another process may take the port between the probe and the
# bind, so try a few times.
PORT=""
for attempt in 1 2 3; do
  PORT="$(free_port)"
  SLUICE_LOG="${SLUICE_LOG:-info}" "$BIN" serve --config "$TMP/sluice.toml" \
    --listen "127.0.0.1:$PORT" >"$TMP/server.log" 2>&1 &
  SERVER_PID=$!
  ready=0
  for _ in $(seq 1 300); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/readyz" 2>/dev/null; then ready=1; break; fi
    sleep 0.1
  done
  [ "$ready" = 1 ] && break
  echo "fuzz-api: the server did not become ready (attempt $attempt):" >&2
  tail -n 20 "$TMP/server.log" >&2
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
done
if [ -z "$SERVER_PID" ]; then
  echo "fuzz-api: FAILED: the server did not start" >&2
  exit 1
fi
BASE="http://127.0.0.1:$PORT"
echo "== sluice serve on $BASE (pid $SERVER_PID, data $TMP/data)"

alive() {
  curl -fsS -m 10 -o /dev/null "$BASE/healthz" 2>/dev/null
}

# A stopped pipeline, so that the list has something in it during the schema run.
curl -fsS -o /dev/null -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"name":"parked","start":false,"sql":"CREATE TABLE parked_in (a BIGINT) WITH ('"'"'connector'"'"' = '"'"'http'"'"'); CREATE TABLE parked_out (a BIGINT) WITH ('"'"'connector'"'"' = '"'"'blackhole'"'"'); INSERT INTO parked_out SELECT a FROM parked_in;"}' \
  "$BASE/api/pipelines" || { echo "fuzz-api: FAILED: could not submit the 'parked' pipeline" >&2; exit 1; }

# ---- (1) schemathesis on the OpenAPI document ---------------------------------------

HELP="$(st run --help 2>&1 || true)"
has() { grep -q -- "$1" <<<"$HELP"; }
ST_ARGS=(run "$BASE/api/openapi.json" -H "Authorization: Bearer $KEY")
ST_ARGS+=(--checks "${ST_CHECKS:-not_a_server_error}")
if has '--max-examples'; then
  ST_ARGS+=(--max-examples "${ST_MAX_EXAMPLES:-50}")            # v4
elif has '--hypothesis-max-examples'; then
  ST_ARGS+=(--hypothesis-max-examples "${ST_MAX_EXAMPLES:-50}") # v3
fi
if has '--url URL'; then
  ST_ARGS+=(--url "$BASE")                                      # v4
elif has '--base-url'; then
  ST_ARGS+=(--base-url "$BASE")                                 # v3
fi
# The streams (tail, sse) never end while a pipeline runs; they are probed below.
if has '--exclude-operation-id' || has '--exclude-TYPE'; then
  ST_ARGS+=(--exclude-operation-id tail --exclude-operation-id sse)
elif has '--exclude-path-regex'; then
  ST_ARGS+=(--exclude-path-regex '/tail$|^/sse/')
fi
has '--request-timeout' && ST_ARGS+=(--request-timeout 20)
# Our header, not a generated one (v4 would otherwise make up bearer tokens).
has '--generation-with-security-parameters' && ST_ARGS+=(--generation-with-security-parameters false)
# No example database in the working directory.
has '--generation-database' && ST_ARGS+=(--generation-database none)
[ -n "${ST_SEED:-}" ] && ST_ARGS+=(--seed "$ST_SEED")
ST_GLOBAL=()
# v4: send the {name} of the pipeline operations to an existing pipeline, so that
# get, stop, resume, delete and dead letters do more than answer 404.
if st --help 2>&1 | grep -q -- '--config-file'; then
  printf '[parameters]\n"path.name" = "parked"\n' >"$TMP/schemathesis.toml"
  ST_GLOBAL+=(--config-file "$TMP/schemathesis.toml")
fi
# Not --max-time: in v4 it is a budget that fuzzing repeats until spent. The time
# limit is the `timeout` around the run.
ST_LIMIT="${ST_TIME_LIMIT:-600}"
echo "== $(st --version 2>&1 | tail -n 1): st ${ST_GLOBAL[*]} ${ST_ARGS[*]/$KEY/<key>}"
st_rc=0
(cd "$TMP" && timeout --kill-after=10 "$ST_LIMIT" st "${ST_GLOBAL[@]}" "${ST_ARGS[@]}") || st_rc=$?
st_result="ok"
if [ "$st_rc" -eq 124 ] || [ "$st_rc" -eq 137 ]; then
  st_result="FAILED (over the ${ST_LIMIT}s time limit)"
elif [ "$st_rc" -ne 0 ]; then
  st_result="FAILED (exit $st_rc)"
fi
if ! alive; then
  echo "fuzz-api: FAILED: /healthz does not answer after schemathesis" >&2
  tail -n 40 "$TMP/server.log" >&2
  echo "fuzz-api: schemathesis $st_result; server DOWN after schemathesis"
  exit 1
fi

# ---- (2) hostile bodies: ingest, API bodies, tail ---------------------------------

FUZZ_SEED="${FUZZ_SEED:-$RANDOM$RANDOM}"
echo "== hostile requests (FUZZ_SEED=$FUZZ_SEED)"
py_rc=0
python3 - "$BASE" "$KEY" "$FUZZ_SEED" "${FUZZ_BODIES:-250}" "$TMP/hostile.txt" <<'PY' || py_rc=$?
import concurrent.futures, gzip, http.client, json, random, socket, sys, time, urllib.parse

base, key, seed, n_random, summary_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
url = urllib.parse.urlsplit(base)
HOST, PORT = url.hostname, url.port
AUTH = {"Authorization": "Bearer " + key}
rnd = random.Random(seed)
INGEST_LIMIT = 16 * 1024 * 1024   # the table's default ingest.max-body-size
API_LIMIT = 65536                 # [limits] max_body_bytes in the config
statuses = {}
problems = []
sent = 0

def request(method, path, body=None, headers=None, timeout=120):
    """(status, headers, body bytes), or (None, None, error text) when unanswered."""
    h = dict(AUTH)
    h.update(headers or {})
    c = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    except Exception as e:  # noqa: BLE001 - any failure to answer is reported
        try:
            r = c.getresponse()  # answered early (e.g. 413 before the whole body)
            return r.status, dict(r.getheaders()), r.read()
        except Exception:  # noqa: BLE001
            return None, None, repr(e)
    finally:
        c.close()

def healthy():
    s, _, _ = request("GET", "/healthz", timeout=10)
    return s == 200

def judge(what, status, body, size, ok_5xx=()):
    global sent
    sent += 1
    statuses[status] = statuses.get(status, 0) + 1
    if status is None:
        if size > INGEST_LIMIT or not healthy():
            # Over the limit the server may answer 413 and close before reading it all.
            if not healthy():
                problems.append(f"{what}: no answer ({body}) and /healthz is down")
        else:
            problems.append(f"{what}: no answer ({body})")
    elif status >= 500 and status not in ok_5xx:
        problems.append(f"{what}: {status} {body[:300]!r}")

def post_ingest(what, body, ctype="application/json", encoding=None, table="fz"):
    h = {}
    if ctype is not None:
        h["Content-Type"] = ctype
    if encoding is not None:
        h["Content-Encoding"] = encoding
    s, _, b = request("POST", "/ingest/" + table, body=body, headers=h)
    judge(what, s, b, len(body), ok_5xx=(503, 504))
    return s, b

# -- the pipeline under test
FZ_SQL = (
    "CREATE TABLE fz (a BIGINT, b STRING, c DOUBLE) WITH ("
    "'connector' = 'http', 'format' = 'json', 'ingest.on-error' = 'dead-letter', "
    "'ingest.body-timeout' = '2s');\n"
    "CREATE TABLE fz_out (a BIGINT, b STRING, c DOUBLE) WITH ('connector' = 'blackhole');\n"
    "INSERT INTO fz_out SELECT a, b, c FROM fz;\n"
)
s, _, b = request("POST", "/api/pipelines", body=json.dumps({"name": "fz", "sql": FZ_SQL}),
                  headers={"Content-Type": "application/json"})
if s != 201:
    print(f"fuzz-api: could not submit the fz pipeline: {s} {b[:500]!r}", file=sys.stderr)
    sys.exit(1)
detail = json.loads(b)
deadline = time.time() + 30
while detail.get("status") != "running" and time.time() < deadline:
    time.sleep(0.2)
    detail = json.loads(request("GET", "/api/pipelines/fz")[2])
if detail.get("status") != "running":
    print(f"fuzz-api: the fz pipeline does not run: {detail.get('status')} {detail.get('error')}", file=sys.stderr)
    sys.exit(1)
s, b = post_ingest("valid row (before)", b'{"a": 1, "b": "x", "c": 1.5}')
if s != 200:
    print(f"fuzz-api: a valid row was not accepted: {s} {b[:300]!r}", file=sys.stderr)
    sys.exit(1)

# -- fixed hostile bodies
def gz(data):
    return gzip.compress(data, compresslevel=6)

good = b'{"a": 1, "b": "x", "c": 1.5}'
deep = 100_000
fixed = [
    ("empty", b"", "application/json", None),
    ("whitespace", b" \n\t ", "application/json", None),
    ("no content type", good, None, None),
    ("null", b"null", "application/json", None),
    ("number", b"42", "application/json", None),
    ("string", b'"x"', "application/json", None),
    ("array of numbers", b"[1, 2, 3]", "application/json", None),
    ("array of arrays", b'[[{"a": 1}]]', "application/json", None),
    ("array with null", b'[{"a": 1}, null, {"a": 2}]', "application/json", None),
    ("truncated object", b'{"a": 1, "b": "x', "application/json", None),
    ("truncated array", b'[{"a": 1}, {"a": 2', "application/json", None),
    ("truncated escape", b'{"b": "\\u12', "application/json", None),
    ("truncated ndjson", good + b"\n" + good[:10], "application/x-ndjson", None),
    ("deep arrays 100k", b"[" * deep + b"]" * deep, "application/json", None),
    ("deep objects 100k", b'{"a":' * deep + b"1" + b"}" * deep, "application/json", None),
    ("deep in a field 100k", b'{"b":' + b"[" * deep + b"]" * deep + b"}", "application/json", None),
    ("deep object in a field 100k", b'{"b":' + b'{"x":' * deep + b"1" + b"}" * deep + b"}", "application/json", None),
    ("deep unclosed 100k", b"[" * deep, "application/json", None),
    ("deep ndjson lines", (b"[" * 10_000 + b"\n") * 20, "application/x-ndjson", None),
    ("deep gzip 1M", gz(b"[" * 1_000_000 + b"]" * 1_000_000), "application/json", "gzip"),
    ("huge string 10 MB", b'{"b": "' + b"x" * 10_000_000 + b'"}', "application/json", None),
    ("huge escaped string", b'{"b": "' + b"\\u00e9" * 1_000_000 + b'"}', "application/json", None),
    ("huge key 1 MB", b'{"' + b"k" * 1_000_000 + b'": 1}', "application/json", None),
    ("huge number", b'{"a": ' + b"9" * 1_000_000 + b"}", "application/json", None),
    ("over the ingest limit", b'{"b": "' + b"x" * (INGEST_LIMIT + 1024) + b'"}', "application/json", None),
    ("many fields", json.dumps({f"f{i}": i for i in range(100_000)}).encode(), "application/json", None),
    ("many records", b"\n".join([good] * 100_000), "application/x-ndjson", None),
    ("many empty objects", b"[" + b",".join([b"{}"] * 200_000) + b"]", "application/json", None),
    ("invalid utf-8 in a string", b'{"b": "\xff\xfe\xc3\x28"}', "application/json", None),
    ("invalid utf-8 in a key", b'{"\xff\xfe": 1}', "application/json", None),
    ("invalid utf-8 ndjson", b'{"b": "ok"}\n{"b": "\xc0\xaf"}\n', "application/x-ndjson", None),
    ("overlong utf-8", b'{"b": "\xe0\x80\xaf"}', "application/json", None),
    ("lone surrogate escape", b'{"b": "\\ud800"}', "application/json", None),
    ("surrogate pair escape", b'{"b": "\\ud83d\\ude00"}', "application/json", None),
    ("raw control character", b'{"b": "a\x00b\x1fc"}', "application/json", None),
    ("escaped nul", b'{"b": "\\u0000"}', "application/json", None),
    ("byte order mark", b"\xef\xbb\xbf" + good, "application/json", None),
    ("utf-16", good.decode().encode("utf-16"), "application/json", None),
    ("utf-16 declared", good.decode().encode("utf-16"), "application/json; charset=utf-16", None),
    ("duplicate keys", b'{"a": 1, "a": "x", "a": null}', "application/json", None),
    ("a as string", b'{"a": "1"}', "application/json", None),
    ("a as text", b'{"a": "x"}', "application/json", None),
    ("a as float", b'{"a": 1.5}', "application/json", None),
    ("a over i64", b'{"a": 9223372036854775808}', "application/json", None),
    ("a under i64", b'{"a": -9223372036854775809}', "application/json", None),
    ("a 2^70", b'{"a": 1180591620717411303424}', "application/json", None),
    ("a 1e400", b'{"a": 1e400}', "application/json", None),
    ("a bool", b'{"a": true}', "application/json", None),
    ("a array", b'{"a": [1]}', "application/json", None),
    ("a object", b'{"a": {"x": 1}}', "application/json", None),
    ("b number", b'{"b": 1}', "application/json", None),
    ("b object", b'{"b": {"x": [1, 2]}}', "application/json", None),
    ("c string", b'{"c": "1.5"}', "application/json", None),
    ("c NaN literal", b'{"c": NaN}', "application/json", None),
    ("c NaN string", b'{"c": "NaN"}', "application/json", None),
    ("c Infinity", b'{"c": Infinity}', "application/json", None),
    ("c 1e999", b'{"c": 1e999}', "application/json", None),
    ("c -1e-999", b'{"c": -1e-999}', "application/json", None),
    ("c -0", b'{"c": -0}', "application/json", None),
    ("c hex", b'{"c": 0x10}', "application/json", None),
    ("trailing comma", b'{"a": 1,}', "application/json", None),
    ("comments", b'{"a": 1 /* x */}', "application/json", None),
    ("single quotes", b"{'a': 1}", "application/json", None),
    ("unknown fields only", b'{"zz": 1, "yy": [1, {"q": null}]}', "application/json", None),
    ("csv as json", b"a,b,c\n1,x,1.5\n2,y,2.5\n", "application/json", None),
    ("csv as ndjson", b"a,b,c\n1,x,1.5\n", "application/x-ndjson", None),
    ("csv content type", b"a,b,c\n1,x,1.5\n", "text/csv", None),
    ("xml", b"<a>1</a>", "application/xml", None),
    ("form", b"a=1&b=x", "application/x-www-form-urlencoded", None),
    ("multipart", b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--\r\n", "multipart/form-data; boundary=x", None),
    ("garbage content type", good, "application/json;;;;===;charset", None),
    ("content type with params", good, "application/json; charset=utf-8; q=0.1", None),
    ("upper-case content type", good, "APPLICATION/JSON", None),
    ("gzip bomb 50 MB zeros", gz(b"\0" * 50_000_000), "application/json", "gzip"),
    ("gzip bomb 50 MB spaces", gz(b" " * 50_000_000), "application/json", "gzip"),
    ("gzip bomb 50 MB ndjson", gz((good + b"\n") * 1_700_000), "application/x-ndjson", "gzip"),
    ("gzip valid", gz(good), "application/json", "gzip"),
    ("gzip two members", gz(good) + gz(good), "application/x-ndjson", "gzip"),
    ("gzip truncated", gz(good * 100)[:40], "application/json", "gzip"),
    ("gzip bad crc", gz(good)[:-8] + b"\0" * 8, "application/json", "gzip"),
    ("gzip garbage", b"\x1f\x8b\x08\x00" + bytes(rnd.randrange(256) for _ in range(2000)), "application/json", "gzip"),
    ("gzip declared, plain body", good, "application/json", "gzip"),
    ("gzip then trailing bytes", gz(good) + b"trailing", "application/json", "gzip"),
    ("gzip of invalid utf-8", gz(b'{"b": "\xff"}'), "application/json", "gzip"),
    ("encoding x-gzip", gz(good), "application/json", "x-gzip"),
    ("encoding GZIP", gz(good), "application/json", "GZIP"),
    ("encoding gzip, gzip", gz(gz(good)), "application/json", "gzip, gzip"),
    ("encoding deflate", good, "application/json", "deflate"),
    ("encoding br", good, "application/json", "br"),
    ("encoding identity", good, "application/json", "identity"),
    ("encoding empty", good, "application/json", ""),
]
for what, body, ctype, enc in fixed:
    post_ingest(what, body, ctype, enc)
del fixed

# -- random mutations of valid bodies
def value(kind):
    r = rnd.random()
    if r < 0.6:
        return {"a": rnd.randint(-2**63, 2**63 - 1), "b": "".join(chr(rnd.randrange(32, 0x2FFF)) for _ in range(rnd.randrange(20))),
                "c": rnd.uniform(-1e300, 1e300)}[kind]
    return rnd.choice([None, True, "", "x", 0, -1, 2**64, 1e308, [], {}, [None], {"a": 1}, "\u0000", "\ud7ff"])

def record():
    keys = ["a", "b", "c"] + (["extra"] if rnd.random() < 0.2 else [])
    rec = {k: value(k if k != "extra" else "b") for k in keys if rnd.random() < 0.9}
    return rec

def mutate(data):
    data = bytearray(data)
    for _ in range(rnd.randrange(1, 6)):
        op = rnd.randrange(6)
        if not data:
            break
        i = rnd.randrange(len(data))
        if op == 0:
            del data[i:]                                   # truncate
        elif op == 1:
            data[i] = rnd.randrange(256)                   # flip a byte
        elif op == 2:
            data[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 8)))
        elif op == 3:
            j = rnd.randrange(i, len(data) + 1)
            data[i:i] = data[i:j] * rnd.randrange(1, 4)    # repeat a slice
        elif op == 4:
            data[i:i] = rnd.choice([b"[", b"{", b"]", b"}", b'"', b"\\", b",", b":", b"\n", b"\\u"])
        else:
            del data[i:i + rnd.randrange(1, 8)]
    return bytes(data)

CTYPES = ["application/json", "application/x-ndjson", "application/jsonl", "application/ndjson",
          "text/csv", "text/plain", None, "application/json; charset=latin-1", "*/*"]
for i in range(n_random):
    recs = [record() for _ in range(rnd.randrange(1, 20))]
    shape = rnd.randrange(3)
    if shape == 0:
        body = json.dumps(recs).encode()
    elif shape == 1:
        body = "\n".join(json.dumps(r) for r in recs).encode()
    else:
        body = "".join(json.dumps(r) for r in recs).encode()
    if rnd.random() < 0.7:
        body = mutate(body)
    enc = None
    if rnd.random() < 0.15:
        body = gz(body)
        enc = "gzip"
        if rnd.random() < 0.3:
            body = mutate(body)
    post_ingest(f"random body {i}", body, rnd.choice(CTYPES), enc)

# -- many at once (the request queue, 429)
def one(i):
    body = json.dumps([record() for _ in range(50)]).encode()
    return post_ingest(f"parallel {i}", body)
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    list(pool.map(one, range(200)))

# -- other tables, methods and raw HTTP
post_ingest("no such table", good, table="nope")
post_ingest("table name with dots", good, table="..%2f..%2fetc")
post_ingest("long table name", good, table="t" * 5000)
for method in ("GET", "PUT", "DELETE", "PATCH"):
    s, _, b = request(method, "/ingest/fz", body=good)
    judge(f"{method} /ingest/fz", s, b, len(good))

def raw(what, data, wait=8.0):
    global sent
    sent += 1
    try:
        sock = socket.create_connection((HOST, PORT), timeout=wait)
    except OSError as e:
        problems.append(f"{what}: cannot connect ({e!r})")
        return None
    try:
        sock.sendall(data)
        got = b""
        try:
            while b"\r\n" not in got:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                got += chunk
        except socket.timeout:
            pass
        line = got.split(b"\r\n", 1)[0]
        status = int(line.split()[1]) if line.startswith(b"HTTP/1.1 ") else None
        statuses[status] = statuses.get(status, 0) + 1
        if status is not None and status >= 500 and status not in (503, 504):
            problems.append(f"{what}: {line!r}")
        return status
    finally:
        sock.close()

auth = ("Authorization: Bearer " + key + "\r\n").encode()
host = f"Host: {HOST}:{PORT}\r\n".encode()
# The body never arrives in full: 408 after 'ingest.body-timeout' (2 s).
s = raw("slow body", b"POST /ingest/fz HTTP/1.1\r\n" + host + auth +
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":", wait=10)
if s not in (408, None):
    problems.append(f"slow body: expected 408, got {s}")
raw("bad chunk size", b"POST /ingest/fz HTTP/1.1\r\n" + host + auth +
    b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZZZ\r\n{}\r\n0\r\n\r\n")
raw("chunked, then cut", b"POST /ingest/fz HTTP/1.1\r\n" + host + auth +
    b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"a\": 1}", wait=4)
raw("length and chunked", b"POST /ingest/fz HTTP/1.1\r\n" + host + auth +
    b"Content-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
raw("content-length lies low", b"POST /ingest/fz HTTP/1.1\r\n" + host + auth +
    b"Content-Type: application/json\r\nContent-Length: 3\r\n\r\n" + good)
raw("huge content-length", b"POST /ingest/fz HTTP/1.1\r\n" + host + auth +
    b"Content-Type: application/json\r\nContent-Length: 99999999999999999999\r\n\r\n{}")
raw("header flood", b"POST /ingest/fz HTTP/1.1\r\n" + host + auth +
    b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(2000)) + b"Content-Length: 2\r\n\r\n{}")
raw("binary garbage", bytes(rnd.randrange(256) for _ in range(4096)))

# -- API bodies (the limit is 64 KiB here)
def api(what, method, path, body=None, ctype="application/json"):
    h = {"Content-Type": ctype} if ctype else {}
    s, _, b = request(method, path, body=body, headers=h)
    judge(what, s, b, len(body or b""))
    return s, b

api("submit over the API limit", "POST", "/api/pipelines",
    json.dumps({"name": "big", "sql": "x" * (API_LIMIT + 1)}).encode())
api("submit as text/plain", "POST", "/api/pipelines", b'{"name":"x","sql":"y"}', "text/plain")
api("submit without content type", "POST", "/api/pipelines", b'{"name":"x","sql":"y"}', None)
api("submit deep json", "POST", "/api/pipelines", b'{"name":"x","sql":' + b"[" * 30000 + b"]" * 30000 + b"}")
api("submit invalid utf-8", "POST", "/api/pipelines", b'{"name":"x","sql":"\xff\xfe"}')
api("submit truncated", "POST", "/api/pipelines", b'{"name":"x","sql":"CREA')
api("submit unknown field", "POST", "/api/pipelines", b'{"name":"x","sql":"y","zz":1}')
api("submit bad name", "POST", "/api/pipelines", json.dumps({"name": "../../etc", "sql": FZ_SQL}).encode())
api("submit taken name", "POST", "/api/pipelines", json.dumps({"name": "fz", "sql": FZ_SQL}).encode())
api("submit taken table", "POST", "/api/pipelines", json.dumps({"name": "fz2", "sql": FZ_SQL}).encode())
sql_cases = {
    "deep parentheses": "INSERT INTO o SELECT " + "(" * 20000 + "a" + ")" * 20000 + " FROM t",
    "long sum": "INSERT INTO o SELECT a" + " + 1" * 12000 + " FROM t",
    "deep case": "INSERT INTO o SELECT " + "CASE WHEN a > 0 THEN " * 3000 + "a" + " ELSE 0 END" * 3000 + " FROM t",
    "deep subqueries": "INSERT INTO o SELECT a FROM " + "(SELECT a FROM " * 2000 + "t" + ") s" * 2000,
    "long in list": "INSERT INTO o SELECT a FROM t WHERE a IN (" + ",".join(str(i) for i in range(9000)) + ")",
    "many unions": "INSERT INTO o " + " UNION ALL ".join(["SELECT a FROM t"] * 1500),
    "unicode": "INSERT INTO o SELECT a FROM t WHERE 'é\u0000\U0001F600' = 'x'",
    "unterminated string": "INSERT INTO o SELECT 'abc FROM t",
    "only comments": "-- nothing\n/* more */",
}
tables = ("CREATE TABLE t (a BIGINT) WITH ('connector' = 'http');\n"
          "CREATE TABLE o (a BIGINT) WITH ('connector' = 'blackhole');\n")
for i, (what, sql) in enumerate(sql_cases.items()):
    name = f"sql{i}"
    s, b = api(f"SQL {what}", "POST", "/api/pipelines",
               json.dumps({"name": name, "sql": tables + sql, "start": False}).encode())
    if s == 201:
        request("DELETE", f"/api/pipelines/{name}")

# -- the tail: a bogus operator is 404; a real one streams
def tail(what, query, expect_stream):
    global sent
    sent += 1
    c = http.client.HTTPConnection(HOST, PORT, timeout=5)
    try:
        c.request("GET", "/api/pipelines/fz/tail?" + query, headers=AUTH)
        r = c.getresponse()
        statuses[r.status] = statuses.get(r.status, 0) + 1
        if r.status >= 500:
            problems.append(f"{what}: {r.status}")
        if expect_stream:
            if r.status != 200 or "text/event-stream" not in (r.getheader("Content-Type") or ""):
                problems.append(f"{what}: expected an event stream, got {r.status} {r.getheader('Content-Type')}")
            else:
                # A row posted now shows up as a `rows` event.
                post_ingest("row for the tail", b'{"a": 7, "b": "tail", "c": 0.5}')
                seen = b""
                try:
                    while b"event: rows" not in seen and len(seen) < 100_000:
                        line = r.fp.readline()
                        if not line:
                            break
                        seen += line
                except socket.timeout:
                    pass
                if b"event: rows" not in seen:
                    print(f"fuzz-api: warning: no rows event on the tail within 5 s ({seen[:200]!r})", file=sys.stderr)
        else:
            r.read()
    except Exception as e:  # noqa: BLE001
        problems.append(f"{what}: no answer ({e!r})")
    finally:
        c.close()

ops = [n["metrics_name"] for n in (detail.get("graph") or {}).get("nodes", [])]
tail("tail, bogus operator", urllib.parse.urlencode({"operator": "nope#99"}), False)
tail("tail, long operator", urllib.parse.urlencode({"operator": "x" * 20000}), False)
tail("tail, bad escapes", "operator=%zz%ff%00", False)
if ops:
    tail("tail of the source", urllib.parse.urlencode({"operator": ops[0]}), True)
for what, path in [("dead letters, bad limit", "/api/pipelines/fz/dead-letters?limit=-1"),
                   ("dead letters, huge limit", "/api/pipelines/fz/dead-letters?limit=99999999999999999999999"),
                   ("tail of a missing pipeline", "/api/pipelines/nope/tail")]:
    s, _, b = request("GET", path)
    judge(what, s, b, 0)

# -- afterwards: the server and the pipeline still work
if not healthy():
    problems.append("/healthz does not answer after the hostile requests")
else:
    d = json.loads(request("GET", "/api/pipelines/fz")[2])
    if d.get("status") != "running":
        problems.append(f"the fz pipeline is {d.get('status')} after the hostile requests: {d.get('error')}")
    s, b = post_ingest("valid row (after)", good)
    if s != 200:
        problems.append(f"a valid row is refused after the hostile requests: {s} {b[:300]!r}")
    s, _, b = request("GET", "/api/pipelines/fz/dead-letters?limit=1000")
    if s != 200:
        problems.append(f"dead letters: {s} {b[:300]!r}")
    elif d.get("dead_letters", 0) > 0 and json.loads(b).get("total", 0) == 0:
        print(f"fuzz-api: warning: {d.get('dead_letters')} dead letters counted, none readable from the API", file=sys.stderr)
    s, _, b = request("GET", "/metrics")
    if s != 200 or b'sluice_pipeline_failed{pipeline="fz"} 0' not in b:
        problems.append(f"/metrics: {s}, sluice_pipeline_failed{{pipeline=\"fz\"}} 0 not found")

for p in problems:
    print("fuzz-api: PROBLEM: " + p, file=sys.stderr)
counts = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)))
with open(summary_path, "w") as f:
    f.write(f"{sent} hostile requests ({counts}), {len(problems)} problems")
sys.exit(1 if problems else 0)
PY

hostile="$(cat "$TMP/hostile.txt" 2>/dev/null || echo "hostile requests did not finish (exit $py_rc)")"
server="up"
alive || server="DOWN"
if [ "$server" = DOWN ]; then tail -n 40 "$TMP/server.log" >&2; fi
# Panics are server errors even when the answer was not 5xx.
panics="$(grep -c 'panicked' "$TMP/server.log" || true)"

echo "fuzz-api: schemathesis $st_result; $hostile; $panics panics in the server log; server $server"
if [ "$st_result" != ok ] || [ "$py_rc" -ne 0 ] || [ "$server" != up ] || [ "$panics" != 0 ]; then
  [ "$panics" != 0 ] && grep -m 5 -A 3 'panicked' "$TMP/server.log" >&2
  exit 1
fi
