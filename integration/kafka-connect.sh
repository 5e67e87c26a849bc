#!/usr/bin/env bash
# Installs (once, cached) the jars of a Kafka Connect standalone worker with
# Apache Iceberg's Kafka Connect sink, for the side-by-side benchmark
# (`make bench-anchors`, bench/anchors). Everything comes from Maven Central,
# resolved with Maven into ~/.cache/floe: connect-runtime and connect-json at
# the broker's Kafka version (integration/kafka.sh), and Iceberg's
# iceberg-kafka-connect, -kafka-connect-events, -parquet, -orc, -aws and
# -aws-bundle (ICEBERG_VERSION, or the newest of the fallbacks that
# resolves), hadoop-common and sqlite-jdbc (the JDBC catalog on SQLite).
# There is no server to start: the benchmark runs the worker itself.
#   integration/kafka-connect.sh install # idempotent; resolves the jars (cached)
#   integration/kafka-connect.sh env     # prints FLOE_CONNECT_LIBS and FLOE_CONNECT_ICEBERG_VERSION
# Only the export lines go to stdout; everything else goes to stderr.
set -euo pipefail
KAFKA_VERSION=3.9.1
ICEBERG_VERSIONS=${FLOE_CONNECT_ICEBERG_VERSIONS:-"1.12.0 1.11.0 1.10.1"}
HADOOP_VERSION=3.4.2
SQLITE_JDBC_VERSION=3.53.2.1
CACHE=${FLOE_CACHE:-$HOME/.cache/floe}
ROOT=$CACHE/jars/kafka-connect-$KAFKA_VERSION
STATE=$ROOT
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pom() {
  cat <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>floe</groupId>
  <artifactId>kafka-connect-iceberg-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>connect-json</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.iceberg</groupId><artifactId>iceberg-kafka-connect</artifactId><version>$1</version></dependency>
    <dependency><groupId>org.apache.iceberg</groupId><artifactId>iceberg-kafka-connect-events</artifactId><version>$1</version></dependency>
    <dependency><groupId>org.apache.iceberg</groupId><artifactId>iceberg-parquet</artifactId><version>$1</version></dependency>
    <dependency><groupId>org.apache.iceberg</groupId><artifactId>iceberg-orc</artifactId><version>$1</version></dependency>
    <dependency><groupId>org.apache.iceberg</groupId><artifactId>iceberg-aws</artifactId><version>$1</version></dependency>
    <dependency><groupId>org.apache.iceberg</groupId><artifactId>iceberg-aws-bundle</artifactId><version>$1</version></dependency>
    <dependency><groupId>org.apache.hadoop</groupId><artifactId>hadoop-common</artifactId><version>$HADOOP_VERSION</version></dependency>
    <dependency><groupId>org.xerial</groupId><artifactId>sqlite-jdbc</artifactId><version>$SQLITE_JDBC_VERSION</version></dependency>
  </dependencies>
</project>
EOF
}

install() {
  [ -f "$ROOT/libs/.complete" ] && return 0
  command -v java >/dev/null || { echo "kafka-connect: java is needed (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
  command -v mvn >/dev/null || { echo "kafka-connect: mvn is needed to fetch the jars (apt-get install maven)" >&2; exit 1; }
  local v
  for v in $ICEBERG_VERSIONS; do
    echo "kafka-connect: resolving Kafka Connect $KAFKA_VERSION with the Iceberg $v sink from Maven Central (once; cached at $ROOT/libs)" >&2
    mkdir -p "$ROOT/pom-$v"
    pom "$v" >"$ROOT/pom-$v/pom.xml"
    rm -rf "$ROOT/libs.tmp"
    if (cd "$ROOT/pom-$v" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$ROOT/libs.tmp" </dev/null >&2); then
      echo "$v" >"$ROOT/libs.tmp/.iceberg-version"
      rm -rf "$ROOT/libs"
      mv "$ROOT/libs.tmp" "$ROOT/libs"
      touch "$ROOT/libs/.complete"
      return 0
    fi
    echo "kafka-connect: Iceberg $v did not resolve; trying the next version" >&2
  done
  echo "kafka-connect: none of Iceberg $ICEBERG_VERSIONS resolved" >&2
  exit 1
}

env_() {
  echo "export FLOE_CONNECT_LIBS=$ROOT/libs"
  echo "export FLOE_CONNECT_ICEBERG_VERSION=$(cat "$ROOT/libs/.iceberg-version")"
}

case "${1:-}" in
install) install_locked kafka-connect install ;;
env)
  install_locked kafka-connect install
  env_
  ;;
*)
  echo "usage: $0 install|env" >&2
  exit 2
  ;;
esac
