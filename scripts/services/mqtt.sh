#!/usr/bin/env bash
# Makes sure Debian's Mosquitto is installed: the mqtt connector's tests start brokers
# of their own (on free loopback ports, with temporary configurations), so they do not
# depend on the settings of a broker that may run on 1883.
#
#   scripts/services/mqtt.sh
set -euo pipefail
# mosquitto-clients: mosquitto_sub and mosquitto_passwd, used by the TLS/login test.
if ! command -v mosquitto >/dev/null || ! command -v mosquitto_sub >/dev/null || ! command -v mosquitto_passwd >/dev/null; then
  echo "# installing mosquitto and mosquitto-clients (for the mqtt connector tests)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q mosquitto mosquitto-clients >&2 || { apt-get update -q >&2 && apt-get install -y -q mosquitto mosquitto-clients >&2; }
fi
# Debian's package may start a broker of its own; the tests do not need it.
command -v mosquitto >/dev/null
