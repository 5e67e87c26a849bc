#!/usr/bin/env bash
# Runs a command with the engines matrix's servers and engines ready:
# installs the engines (setup.sh, cached), starts PostgreSQL (postgres.sh) and
# the Iceberg REST fixture (rest.sh; its s3 instance when MinIO's FLOE_S3_*
# variables are set), exports their variables, runs the command, and stops on
# exit only the servers this invocation started.
#   integration/engines/with-engines.sh go test -tags integration -run TestEngines ./integration/
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || { echo "usage: $0 command [args...]" >&2; exit 2; }

started=()
cleanup() {
  local s
  for s in "${started[@]}"; do "$HERE/$s.sh" stop || true; done
}
trap cleanup EXIT

"$HERE/setup.sh" install
vars=$("$HERE/setup.sh" env)
eval "$vars"
for s in postgres rest; do
  if ! "$HERE/$s.sh" status; then started+=("$s"); fi
  vars=$("$HERE/$s.sh" start) # a failed start stops here (set -e)
  eval "$vars"
done
echo "+ $*" >&2
"$@"
