#!/usr/bin/env bash
# Installs (Debian's postgresql package, when missing) and starts/stops a
# PostgreSQL server with its own data directory on 127.0.0.1:15432 for Floe's
# engines matrix (the postgres catalog). Database and user "floe", password
# "floe", trust on 127.0.0.1 only.
#   integration/engines/postgres.sh start   # idempotent; prints the env to export
#   integration/engines/postgres.sh stop    # stops the server this script started (pg_ctl on its own data dir)
#   integration/engines/postgres.sh env     # prints FLOE_PG_DSN
#   integration/engines/postgres.sh status  # exits 0 if the server this script started is running
#   integration/engines/postgres.sh install # only installs the server package
# PostgreSQL refuses to run as root: as root the server runs as the
# "postgres" user and its state lives under /var/tmp/floe-postgres (root's
# home is not readable by that user); otherwise under ~/.cache/floe/run.
# Only the export lines go to stdout; everything else goes to stderr.
set -euo pipefail
PORT=${FLOE_PG_PORT:-15432}
if [ "$(id -u)" = 0 ]; then
  STATE=${FLOE_PG_STATE:-/var/tmp/floe-postgres}
  AS=(runuser -u postgres --)
else
  STATE=${FLOE_PG_STATE:-${FLOE_CACHE:-$HOME/.cache/floe}/run/postgres}
  AS=()
fi
DATA=$STATE/data
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }

install() {
  if [ -n "$(bindir)" ] && [ -x "$(bindir)/pg_ctl" ]; then return 0; fi
  [ "$(id -u)" = 0 ] || { echo "postgres: PostgreSQL is not installed; run as root or: apt-get install postgresql" >&2; exit 1; }
  echo "postgres: installing Debian's postgresql package (once)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql </dev/null >&2
  # Debian's package starts its own cluster on 5432; ours is separate.
}

lock() { lock_state postgres 120; }

pid() { head -n1 "$DATA/postmaster.pid" 2>/dev/null || true; }

# running: the PID in our data dir's postmaster.pid is alive and is a postgres
# server on our data dir (not a recycled PID).
running() {
  local p
  p=$(pid)
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "$DATA"
}

env_() {
  echo "export FLOE_PG_DSN=postgres://floe:floe@127.0.0.1:$PORT/floe"
}

psql_() { "${AS[@]}" "$(bindir)/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }

start() {
  install
  lock
  local bin
  bin=$(bindir)
  if [ "$(id -u)" = 0 ]; then chown postgres: "$STATE"; fi
  if ! running; then
    if [ ! -f "$DATA/PG_VERSION" ]; then
      rm -rf "$DATA"
      "${AS[@]}" "$bin/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$STATE/initdb.log" 2>&1 ||
        { cat "$STATE/initdb.log" >&2; echo "postgres: initdb failed" >&2; exit 1; }
      printf 'host all all 127.0.0.1/32 trust\n' >"$DATA/pg_hba.conf"
      if [ "$(id -u)" = 0 ]; then chown postgres: "$DATA/pg_hba.conf"; fi
    fi
    "${AS[@]}" "$bin/pg_ctl" start -w -t 60 -D "$DATA" -l "$STATE/log" \
      -o "-p $PORT -c listen_addresses=127.0.0.1 -k $STATE -c max_connections=100 -c shared_buffers=64MB -c fsync=off" \
      </dev/null >/dev/null 9>&- ||
      { tail -n 30 "$STATE/log" >&2; echo "postgres: failed to start (port $PORT taken?)" >&2; exit 1; }
    echo "postgres: started on 127.0.0.1:$PORT (pid $(pid), data $DATA)" >&2
  fi
  if [ "$(psql_ -c "SELECT 1 FROM pg_roles WHERE rolname='floe'")" != 1 ]; then
    psql_ -c "CREATE ROLE floe LOGIN PASSWORD 'floe'" >&2
    psql_ -c "CREATE DATABASE floe OWNER floe" >&2
  fi
  env_
}

stop() {
  lock
  if running; then
    local p
    p=$(pid)
    "${AS[@]}" "$(bindir)/pg_ctl" stop -w -t 60 -m fast -D "$DATA" </dev/null >/dev/null 9>&- || kill "$p"
    echo "postgres: stopped (pid $p)" >&2
  fi
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  env) env_ ;;
  status) running ;;
  *) echo "usage: $0 install|start|stop|status|env" >&2; exit 2 ;;
esac
