#!/usr/bin/env bash
# Installs (once, cached) and starts/stops Apache Iceberg's REST catalog test
# fixture (iceberg-open-api test fixtures, Iceberg 1.11.0, from Maven Central)
# on 127.0.0.1 for Floe's engines matrix. Two instances, because the fixture
# has one warehouse each: "local" (a directory under the state dir, port
# 19181) and "s3" (s3://floe-rest/wh on the local MinIO, port 19182; started
# only when FLOE_S3_ENDPOINT and its keys are set, e.g. after
# `eval $(integration/minio.sh start)`). Each keeps its catalog in a SQLite
# file, so tables survive a restart; tests use fresh namespaces.
#   integration/engines/rest.sh start   # idempotent; prints the env to export
#   integration/engines/rest.sh stop    # stops the instances this script started (by recorded PID only)
#   integration/engines/rest.sh env     # prints FLOE_REST_URI, FLOE_REST_WAREHOUSE, FLOE_REST_S3_*
#   integration/engines/rest.sh status  # exits 0 if the local instance is running
#   integration/engines/rest.sh install # only resolves the jars (cached)
# Only the export lines go to stdout; everything else goes to stderr.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ICEBERG_VERSION=1.11.0
JETTY_VERSION=12.1.14
HADOOP_VERSION=3.4.2
SQLITE_JDBC_VERSION=3.53.2.1
CACHE=${FLOE_CACHE:-$HOME/.cache/floe}
LIBS=$CACHE/jars/iceberg-rest-fixture-$ICEBERG_VERSION
STATE=${FLOE_REST_STATE:-$CACHE/run/iceberg-rest}
. "$HERE/../lib.sh"
PORT=${FLOE_REST_PORT:-19181}
S3_PORT=${FLOE_REST_S3_PORT:-19182}
S3_WAREHOUSE=${FLOE_REST_S3_WAREHOUSE:-s3://floe-rest/wh}
HEAP=${FLOE_REST_HEAP:-384m}

install() {
  [ -f "$LIBS/.complete" ] && [ "$LIBS/classes/.src" -nt "$HERE/FloeRestFixture.java" ] && return 0
  command -v javac >/dev/null || { echo "rest: a JDK is needed (apt-get install openjdk-17-jdk-headless)" >&2; exit 1; }
  command -v mvn >/dev/null || { echo "rest: mvn is needed to fetch the fixture's jars (apt-get install maven)" >&2; exit 1; }
  if [ ! -f "$LIBS/.complete" ]; then
    echo "rest: resolving the Iceberg $ICEBERG_VERSION REST fixture and its runtime jars from Maven Central (once; cached at $LIBS)" >&2
    mkdir -p "$CACHE/jars/rest-pom"
    cat >"$CACHE/jars/rest-pom/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>floe</groupId>
  <artifactId>iceberg-rest-fixture-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.iceberg</groupId><artifactId>iceberg-open-api</artifactId><version>$ICEBERG_VERSION</version><type>jar</type><classifier>test-fixtures</classifier></dependency>
    <dependency><groupId>org.apache.iceberg</groupId><artifactId>iceberg-core</artifactId><version>$ICEBERG_VERSION</version></dependency>
    <dependency><groupId>org.apache.iceberg</groupId><artifactId>iceberg-core</artifactId><version>$ICEBERG_VERSION</version><classifier>tests</classifier></dependency>
    <dependency><groupId>org.apache.iceberg</groupId><artifactId>iceberg-aws</artifactId><version>$ICEBERG_VERSION</version></dependency>
    <dependency><groupId>org.apache.iceberg</groupId><artifactId>iceberg-aws-bundle</artifactId><version>$ICEBERG_VERSION</version></dependency>
    <dependency><groupId>org.eclipse.jetty.ee10</groupId><artifactId>jetty-ee10-servlet</artifactId><version>$JETTY_VERSION</version></dependency>
    <dependency><groupId>org.eclipse.jetty.compression</groupId><artifactId>jetty-compression-server</artifactId><version>$JETTY_VERSION</version></dependency>
    <dependency><groupId>org.eclipse.jetty.compression</groupId><artifactId>jetty-compression-gzip</artifactId><version>$JETTY_VERSION</version></dependency>
    <dependency><groupId>org.apache.hadoop</groupId><artifactId>hadoop-client-api</artifactId><version>$HADOOP_VERSION</version></dependency>
    <dependency><groupId>org.apache.hadoop</groupId><artifactId>hadoop-client-runtime</artifactId><version>$HADOOP_VERSION</version></dependency>
    <dependency><groupId>org.xerial</groupId><artifactId>sqlite-jdbc</artifactId><version>$SQLITE_JDBC_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>2.0.17</version></dependency>
  </dependencies>
</project>
EOF
    rm -rf "$LIBS.tmp"
    (cd "$CACHE/jars/rest-pom" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" </dev/null >&2)
    rm -rf "$LIBS"
    mv "$LIBS.tmp" "$LIBS"
    touch "$LIBS/.complete"
  fi
  rm -rf "$LIBS/classes"
  mkdir -p "$LIBS/classes"
  javac -nowarn -cp "$LIBS/*" -d "$LIBS/classes" "$HERE/FloeRestFixture.java" >&2
  touch "$LIBS/classes/.src"
}

lock() { lock_state rest 120; }

pid() { cat "$STATE/$1/pid" 2>/dev/null || true; }

# running NAME: the recorded PID is alive and is our fixture (a java process
# whose command line names our class and this instance's port).
running() {
  local p
  p=$(pid "$1")
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "FloeRestFixture $(port_of "$1")"
}

port_of() { if [ "$1" = s3 ]; then echo "$S3_PORT"; else echo "$PORT"; fi; }

ready() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1" &&
    printf 'GET /v1/config HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3 &&
    timeout 2 head -n1 <&3 | grep -q ' 200 ') 2>/dev/null
}

wait_ready() {
  local port
  port=$(port_of "$1")
  wait_up "rest ($1 instance)" "ready $port" "running $1" 300 0.2 "$STATE/$1/log" "port $port taken?"
}

have_s3() { [ -n "${FLOE_S3_ENDPOINT:-}" ] && [ -n "${FLOE_S3_ACCESS_KEY_ID:-}" ] && [ -n "${FLOE_S3_SECRET_ACCESS_KEY:-}" ]; }

start_one() {
  local name=$1 port dir
  port=$(port_of "$name")
  dir=$STATE/$name
  if running "$name"; then wait_ready "$name"; return 0; fi
  mkdir -p "$dir"
  rm -f "$dir/pid"
  local -a envs=(
    "CATALOG_URI=jdbc:sqlite:$dir/catalog.db"
    "CATALOG_JDBC_SCHEMA__VERSION=V1"
  )
  if [ "$name" = s3 ]; then
    envs+=(
      "CATALOG_WAREHOUSE=$S3_WAREHOUSE"
      "CATALOG_IO__IMPL=org.apache.iceberg.aws.s3.S3FileIO"
      "CATALOG_S3_ENDPOINT=$FLOE_S3_ENDPOINT"
      "CATALOG_S3_PATH__STYLE__ACCESS=true"
      "CATALOG_S3_ACCESS__KEY__ID=$FLOE_S3_ACCESS_KEY_ID"
      "CATALOG_S3_SECRET__ACCESS__KEY=$FLOE_S3_SECRET_ACCESS_KEY"
      "CATALOG_CLIENT_REGION=us-east-1"
      "AWS_REGION=us-east-1"
    )
  else
    mkdir -p "$dir/warehouse"
    envs+=("CATALOG_WAREHOUSE=file://$dir/warehouse")
  fi
  # stdin/stdout/stderr and the lock fd are detached so that $(rest.sh start) returns.
  env "${envs[@]}" nohup java -Xmx"$HEAP" -Xms64m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$LIBS/classes:$LIBS/*" org.apache.iceberg.rest.FloeRestFixture "$port" \
    </dev/null >"$dir/log" 2>&1 9>&- &
  echo $! >"$dir/pid"
  wait_ready "$name"
  echo "rest: $name instance started on http://127.0.0.1:$port (pid $(pid "$name"), state $dir)" >&2
}

env_() {
  echo "export FLOE_REST_URI=http://127.0.0.1:$PORT"
  echo "export FLOE_REST_WAREHOUSE=file://$STATE/local/warehouse"
  if running s3 || { have_s3 && [ "${1:-}" = starting ]; }; then
    echo "export FLOE_REST_S3_URI=http://127.0.0.1:$S3_PORT"
    echo "export FLOE_REST_S3_WAREHOUSE=$S3_WAREHOUSE"
  fi
}

start() {
  install
  lock
  start_one local
  if have_s3; then
    start_one s3
  else
    echo "rest: FLOE_S3_* not set: the s3 instance is not started" >&2
  fi
  env_
}

stop() {
  lock
  local name p
  for name in local s3; do
    if running "$name"; then
      p=$(pid "$name")
      kill_wait "$p" 100
      echo "rest: $name instance stopped (pid $p)" >&2
    fi
    rm -f "$STATE/$name/pid"
  done
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  env) env_ ;;
  status) running local ;;
  *) echo "usage: $0 install|start|stop|status|env" >&2; exit 2 ;;
esac
