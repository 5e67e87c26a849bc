#!/usr/bin/env bash
# Starts/stops a MariaDB server from Debian's packages on 127.0.0.1 for Floe's
# CDC tests: its own data directory and --defaults-file under ~/.cache/floe,
# ROW binlog with full row images and full table-map metadata (what
# source/mysql needs), root without a password over TCP.
#   integration/mariadb.sh start   # idempotent; prints the env to export: eval "$(integration/mariadb.sh start)"
#   integration/mariadb.sh stop    # stops the server this script started (by its recorded PID only)
#   integration/mariadb.sh env     # prints FLOE_MYSQL_DSN
#   integration/mariadb.sh status  # exits 0 if the server this script started is running
#   integration/mariadb.sh install # only checks (or, as root with apt-get, installs) the packages
#   integration/mariadb.sh reset   # stop, delete the data directory (a fresh server on the next start)
# Only the export lines go to stdout; everything else goes to stderr. The
# system's own MariaDB service is never started or touched.
set -euo pipefail
CACHE=${FLOE_CACHE:-$HOME/.cache/floe}
STATE=${FLOE_MARIADB_STATE:-$CACHE/run/mariadb}
PORT=${FLOE_MARIADB_PORT:-13306}
CNF=$STATE/my.cnf
DATA=$STATE/data
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MARIADBD=${FLOE_MARIADBD:-/usr/sbin/mariadbd}

install() {
  if [ -x "$MARIADBD" ] && command -v mariadb-install-db >/dev/null && command -v mariadb >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "mariadb: installing Debian's mariadb-server and mariadb-client (the system service is not started)" >&2
    # policy-rc.d keeps the package scripts from starting the system service.
    local policy=/usr/sbin/policy-rc.d created=
    if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server mariadb-client </dev/null >&2 || {
      [ -n "$created" ] && rm -f "$policy"
      echo "mariadb: apt-get install failed (run apt-get update first?)" >&2; exit 1; }
    [ -n "$created" ] && rm -f "$policy"
    return 0
  fi
  echo "mariadb: $MARIADBD not found: install Debian's packages: sudo apt-get install mariadb-server mariadb-client" >&2
  exit 1
}

lock() { lock_state mariadb 120; }

pid() { cat "$STATE/pid" 2>/dev/null || true; }

# running: the recorded PID is alive and is our mariadbd (not a recycled PID).
running() {
  local p
  p=$(pid)
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 1
  [ "$(readlink "/proc/$p/exe" 2>/dev/null || true)" = "$(readlink -f "$MARIADBD")" ] || return 1
  tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "--defaults-file=$CNF"
}

client() { mariadb --defaults-file="$CNF" --protocol=tcp -h 127.0.0.1 -P "$PORT" -u root "$@"; }

healthy() { client -N -e 'SELECT 1' >/dev/null 2>&1; }

env_() { echo "export FLOE_MYSQL_DSN='root@tcp(127.0.0.1:$PORT)/'"; }

write_cnf() {
  mkdir -p "$STATE/binlog" "$STATE/tmp"
  cat >"$CNF" <<EOF
# Written by integration/mariadb.sh; for tests only (durability relaxed).
[client]
socket=$STATE/mysqld.sock
[mariadb]
user=$(id -un)
datadir=$DATA
socket=$STATE/mysqld.sock
pid-file=$STATE/mysqld.pid
tmpdir=$STATE/tmp
log-error=$STATE/log
port=$PORT
bind-address=127.0.0.1
skip-name-resolve
server-id=1
log-bin=$STATE/binlog/mariadb-bin
binlog-format=ROW
binlog-row-image=FULL
binlog-row-metadata=FULL
max-binlog-size=64M
expire-logs-days=2
sync-binlog=0
innodb-flush-log-at-trx-commit=2
innodb-buffer-pool-size=128M
innodb-log-file-size=64M
character-set-server=utf8mb4
collation-server=utf8mb4_general_ci
max-connections=200
EOF
}

wait_healthy() { wait_up mariadb healthy running 300 0.1 "$STATE/log" "port $PORT taken?"; }

start() {
  install_locked mariadb install
  lock
  if running; then wait_healthy; env_; return 0; fi
  rm -f "$STATE/pid"
  write_cnf
  if [ ! -d "$DATA/mysql" ]; then
    echo "mariadb: initialising $DATA" >&2
    rm -rf "$DATA"
    mariadb-install-db --defaults-file="$CNF" --auth-root-authentication-method=normal \
      --skip-test-db >"$STATE/install.log" 2>&1 </dev/null ||
      { cat "$STATE/install.log" >&2; echo "mariadb: mariadb-install-db failed" >&2; exit 1; }
  fi
  # stdin/stdout/stderr and the lock fd are detached so that $(mariadb.sh start) returns.
  nohup "$MARIADBD" --defaults-file="$CNF" </dev/null >>"$STATE/log" 2>&1 9>&- &
  echo $! >"$STATE/pid"
  wait_healthy
  echo "mariadb: started on 127.0.0.1:$PORT (pid $(pid), data $DATA)" >&2
  env_
}

stop() {
  lock
  if running; then
    local p
    p=$(pid)
    kill_wait "$p" 300
    echo "mariadb: stopped (pid $p)" >&2
  fi
  rm -f "$STATE/pid"
}

reset() {
  stop
  rm -rf "$DATA" "$STATE/binlog"
  echo "mariadb: data directory removed" >&2
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  reset) reset ;;
  env) env_ ;;
  status) running ;;
  *) echo "usage: $0 install|start|stop|status|env|reset" >&2; exit 2 ;;
esac
