#!/usr/bin/env bash
# Make sure an S3-compatible server answers on 127.0.0.1:7070 with the
# credentials internal/testenv expects (updraft / updraft-secret). Idempotent:
# when something already listens there it is left alone. Otherwise Versity
# Gateway (posix backend) is built from the Go module proxy if its binary is
# missing, and started in the background.
set -euo pipefail

VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"
BIN_DIR="${UPDRAFT_CI_BIN:-$HOME/.cache/updraft-ci/bin}"
CI_DIR="${UPDRAFT_CI_DIR:-/tmp/updraft-ci}"
HOST=127.0.0.1
PORT=7070
ACCESS_KEY=updraft
SECRET_KEY=updraft-secret

log() { printf '[s3] %s\n' "$*"; }
listening() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

if listening; then
  log "an S3 server already listens on $HOST:$PORT; leaving it alone"
  exit 0
fi

GW="$BIN_DIR/versitygw"
if [[ ! -x "$GW" ]]; then
  log "building versitygw $VERSITYGW_VERSION into $BIN_DIR (takes a few minutes)"
  mkdir -p "$BIN_DIR"
  # pkg@version installs outside any module; cd / keeps a surrounding go.mod
  # or go.work from interfering.
  (cd / && GOBIN="$BIN_DIR" go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION")
fi

DATA_DIR="$CI_DIR/s3-data"
LOG_FILE="$CI_DIR/versitygw.log"
mkdir -p "$DATA_DIR"
# --sidecar keeps object metadata in files, so the data dir need not support
# extended attributes (tmpfs, overlay and some container filesystems do not).
mkdir -p "$CI_DIR/s3-meta"
nohup "$GW" --access "$ACCESS_KEY" --secret "$SECRET_KEY" --port "$HOST:$PORT" --quiet \
  posix --sidecar "$CI_DIR/s3-meta" "$DATA_DIR" </dev/null >"$LOG_FILE" 2>&1 &
GW_PID=$!

for _ in $(seq 1 100); do
  if listening; then
    log "started $GW (pid $GW_PID) on $HOST:$PORT, data in $DATA_DIR, log in $LOG_FILE"
    exit 0
  fi
  if ! kill -0 "$GW_PID" 2>/dev/null; then
    log "versitygw exited before listening; its log ($LOG_FILE):"
    cat "$LOG_FILE" >&2
    exit 1
  fi
  sleep 0.2
done
log "versitygw (pid $GW_PID) did not listen on $HOST:$PORT within 20s; its log ($LOG_FILE):"
cat "$LOG_FILE" >&2
exit 1
