# Shell functions shared by the scripts that install, start and stop
# Floe's test servers (integration/*.sh, integration/engines/*.sh).
# Source it after setting STATE, the server's state directory.

# lock_state NAME [SECONDS]: serializes start/stop of concurrent callers
# (e.g. two `make test`) on $STATE/lock, held on fd 9 until the script
# exits; the server is started with 9>&- so that it does not inherit it.
lock_state() {
  mkdir -p "$STATE"
  exec 9>"$STATE/lock"
  flock -w "${2:-120}" 9 || { echo "$1: could not lock $STATE/lock" >&2; exit 1; }
}

# kill_wait PID TENTHS: SIGTERM, then up to TENTHS tenths of a second for
# the process to exit, then SIGKILL.
kill_wait() {
  local p=$1
  kill "$p"
  for _ in $(seq 1 "$2"); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null || true
}

# wait_up NAME CHECK ALIVE TRIES INTERVAL LOG HINT: runs the command CHECK
# (words split) every INTERVAL seconds until it succeeds. If the command
# ALIVE fails meanwhile (the server died) it prints LOG's tail and
# "NAME: failed to start (HINT)"; after TRIES tries, that it is not ready.
# Either way the script exits 1.
wait_up() {
  local name=$1 check=$2 alive=$3 tries=$4 interval=$5 log=$6 hint=$7
  for _ in $(seq 1 "$tries"); do
    if $check; then return 0; fi
    $alive || { tail -n 40 "$log" >&2 || true; echo "$name: failed to start ($hint)" >&2; exit 1; }
    sleep "$interval"
  done
  echo "$name: not ready after $(awk "BEGIN { print $tries * $interval }")s; see $log" >&2
  exit 1
}

# install_locked NAME FN: runs the install function FN under $STATE/install.lock
# (fd 8, waiting up to 15 minutes), so that concurrent first starts build or
# download the server once instead of once each; FN returns at once when
# the server is already installed. The lock is released before the server
# starts, so the server does not inherit it.
install_locked() {
  mkdir -p "$STATE"
  exec 8>"$STATE/install.lock"
  flock -w 900 8 || { echo "$1: could not lock $STATE/install.lock" >&2; exit 1; }
  "$2"
  exec 8>&-
}
