#!/usr/bin/env bash
# Installs (once, cached) and starts/stops a MinIO server on 127.0.0.1 for Floe's tests.
#   integration/minio.sh start   # idempotent; prints the env to export: eval "$(integration/minio.sh start)"
#   integration/minio.sh stop    # stops the server this script started (by its recorded PID only)
#   integration/minio.sh env     # prints the FLOE_S3_* variables
#   integration/minio.sh status  # exits 0 if the server this script started is running
#   integration/minio.sh install # only builds the binary (cached)
# Only the export lines go to stdout; everything else goes to stderr.
set -euo pipefail
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
CACHE=${FLOE_CACHE:-$HOME/.cache/floe}
BIN=$CACHE/bin/minio-$MINIO_VERSION
STATE=${FLOE_STATE:-$CACHE/run/minio}
PORT=${FLOE_MINIO_PORT:-19000}
USER_=floeadmin
PASS=floeadmin-secret
URL=http://127.0.0.1:$PORT
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install() {
  [ -x "$BIN" ] && return 0
  echo "minio: building $MINIO_VERSION from its Go module (about 3 minutes, once; cached at $BIN)" >&2
  local tmp
  tmp=$(mktemp -d)
  GOBIN=$tmp GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION" >&2 </dev/null
  mkdir -p "$(dirname "$BIN")"
  mv "$tmp/minio" "$BIN"
  rm -rf "$tmp"
}

lock() { lock_state minio 120; }

pid() { cat "$STATE/pid" 2>/dev/null || true; }

# running: the recorded PID is alive and is our MinIO binary (not a recycled PID).
running() {
  local p
  p=$(pid)
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 1
  [ "$(readlink "/proc/$p/exe" 2>/dev/null || true)" = "$(readlink -f "$BIN")" ]
}

healthy() {
  if command -v curl >/dev/null 2>&1; then
    curl -sf -m 2 "$URL/minio/health/live" >/dev/null 2>&1
  else
    # No curl: a plain HTTP/1.1 request over bash's /dev/tcp (MinIO wants a Host header).
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT" &&
      printf 'GET /minio/health/live HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$PORT" >&3 &&
      timeout 2 head -n1 <&3 | grep -q ' 200 ') 2>/dev/null
  fi
}

env_() {
  echo "export FLOE_S3_ENDPOINT=$URL"
  echo "export FLOE_S3_ACCESS_KEY_ID=$USER_"
  echo "export FLOE_S3_SECRET_ACCESS_KEY=$PASS"
}

wait_healthy() { wait_up minio healthy running 150 0.2 "$STATE/log" "port $PORT taken?"; }

start() {
  install_locked minio install
  lock
  if running; then wait_healthy; env_; return 0; fi
  rm -f "$STATE/pid"
  mkdir -p "$STATE/data"
  # stdin/stdout/stderr and the lock fd are detached so that $(minio.sh start) returns.
  MINIO_ROOT_USER=$USER_ MINIO_ROOT_PASSWORD=$PASS MINIO_BROWSER=off MINIO_UPDATE=off \
    nohup "$BIN" server --quiet --address "127.0.0.1:$PORT" --console-address "127.0.0.1:$((PORT+1))" "$STATE/data" \
    </dev/null >"$STATE/log" 2>&1 9>&- &
  echo $! >"$STATE/pid"
  wait_healthy
  echo "minio: started on $URL (pid $(pid), data $STATE/data)" >&2
  env_
}

stop() {
  lock
  if running; then
    local p
    p=$(pid)
    kill_wait "$p" 100
    echo "minio: stopped (pid $p)" >&2
  fi
  rm -f "$STATE/pid"
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  env) env_ ;;
  status) running ;;
  *) echo "usage: $0 install|start|stop|status|env" >&2; exit 2 ;;
esac
