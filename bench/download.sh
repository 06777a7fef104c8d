#!/usr/bin/env bash
# P1 of issue 13: download through the signed URL vs nginx, driven by wrk.
# Installs nginx-light and wrk from Debian when they are missing, then runs
# bench/download with any arguments given (see its -help).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null || { ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; }; then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q nginx-light wrk
fi
exec go run ./bench/download "$@"
