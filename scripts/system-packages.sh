#!/usr/bin/env bash
# The Debian packages the tests drive for real: Mosquitto (the sensor network's MQTT broker) and
# Chromium (the dashboard's browser tests). Installs whichever is missing; nothing is started here,
# each test starts its own. `npm test` runs this first, so a fresh machine needs no other step.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
[ "${#need[@]}" -eq 0 ] && exit 0
echo "installing ${need[*]} from Debian (needed by the tests)"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || {
    echo "error: the tests need the Debian packages ${need[*]}; install them as root: apt-get install ${need[*]}" >&2
    exit 1
  }
  SUDO="sudo"
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
