#!/usr/bin/env bash
# Installs (once, cached) the external engines Floe's engines matrix reads
# its tables with: PyIceberg, DuckDB with its iceberg/httpfs/avro extensions
# and PySpark in a Python venv, and the jars Spark needs (Iceberg's Spark
# runtime, the AWS bundle for S3FileIO, the SQLite and PostgreSQL JDBC
# drivers), all at pinned versions.
#   integration/engines/setup.sh install  # idempotent; venv + Spark jars
#   integration/engines/setup.sh python   # only the venv
#   integration/engines/setup.sh spark    # only the Spark jars
#   integration/engines/setup.sh env      # prints the variables to export; fails if not installed
#   integration/engines/setup.sh versions # prints the pinned versions
# The venv lives at ~/.cache/floe/venv-engines-<hash of the pins>, the jars
# under ~/.cache/floe/jars. Only the export lines go to stdout.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${FLOE_CACHE:-$HOME/.cache/floe}

# Java side. Iceberg 1.11.0 is also the version of the REST fixture (rest.sh).
ICEBERG_JAVA_VERSION=1.11.0
SPARK_SERIES=4.1          # must match pyspark's in requirements.txt
SCALA=2.13
SQLITE_JDBC_VERSION=3.53.2.1
PG_JDBC_VERSION=42.7.14
JARS=$CACHE/jars/spark-$SPARK_SERIES-iceberg-$ICEBERG_JAVA_VERSION

hash_() { cat "$HERE/requirements.txt" "$HERE/constraints.txt" | sha256sum | cut -c1-12; }
VENV=$CACHE/venv-engines-$(hash_)
PYTHON=${FLOE_ENGINES_BASE_PYTHON:-python3}

python_() {
  [ -f "$VENV/.complete" ] && return 0
  command -v "$PYTHON" >/dev/null || { echo "engines: $PYTHON is needed (Python >= 3.10 with venv)" >&2; exit 1; }
  echo "engines: creating $VENV (PyIceberg, DuckDB, PySpark; about 1 GB and 2-3 minutes, once)" >&2
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt" -c "$HERE/constraints.txt" </dev/null >&2
  touch "$VENV/.complete"
  # Venvs of older pins are ~1 GB each: keep only this one.
  local old
  for old in "$CACHE"/venv-engines-*; do
    [ "$old" = "$VENV" ] || rm -rf "$old"
  done
}

spark_() {
  [ -f "$JARS/.complete" ] && return 0
  command -v mvn >/dev/null || { echo "engines: mvn is needed to fetch Spark's jars (apt-get install maven)" >&2; exit 1; }
  echo "engines: resolving Iceberg $ICEBERG_JAVA_VERSION Spark $SPARK_SERIES runtime and JDBC drivers from Maven Central (once; cached at $JARS)" >&2
  local pom=$CACHE/jars/spark-pom
  mkdir -p "$pom"
  cat >"$pom/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>floe</groupId>
  <artifactId>spark-engine-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.iceberg</groupId><artifactId>iceberg-spark-runtime-${SPARK_SERIES}_$SCALA</artifactId><version>$ICEBERG_JAVA_VERSION</version></dependency>
    <dependency><groupId>org.apache.iceberg</groupId><artifactId>iceberg-aws-bundle</artifactId><version>$ICEBERG_JAVA_VERSION</version></dependency>
    <dependency><groupId>org.xerial</groupId><artifactId>sqlite-jdbc</artifactId><version>$SQLITE_JDBC_VERSION</version></dependency>
    <dependency><groupId>org.postgresql</groupId><artifactId>postgresql</artifactId><version>$PG_JDBC_VERSION</version></dependency>
  </dependencies>
</project>
EOF
  rm -rf "$JARS.tmp"
  (cd "$pom" && mvn -q -B dependency:copy-dependencies -DexcludeTransitive=true -DoutputDirectory="$JARS.tmp" </dev/null >&2)
  rm -rf "$JARS"
  mv "$JARS.tmp" "$JARS"
  touch "$JARS/.complete"
}

env_() {
  local missing=()
  [ -f "$VENV/.complete" ] || missing+=("the Python venv $VENV")
  [ -f "$JARS/.complete" ] || missing+=("the Spark jars in $JARS")
  if [ ${#missing[@]} -gt 0 ]; then
    echo "engines: not installed: ${missing[*]}; run integration/engines/setup.sh install" >&2
    exit 1
  fi
  echo "export FLOE_ENGINES_PYTHON=$VENV/bin/python"
  echo "export FLOE_ENGINES_SPARK_JARS=$(ls "$JARS"/*.jar | paste -sd, -)"
}

versions() {
  grep -v '^#' "$HERE/requirements.txt"
  echo "iceberg-spark-runtime-${SPARK_SERIES}_$SCALA==$ICEBERG_JAVA_VERSION iceberg-aws-bundle==$ICEBERG_JAVA_VERSION"
  echo "sqlite-jdbc==$SQLITE_JDBC_VERSION postgresql-jdbc==$PG_JDBC_VERSION"
}

case "${1:-install}" in
  install) python_; spark_ ;;
  python) python_ ;;
  spark) spark_ ;;
  env) env_ ;;
  versions) versions ;;
  *) echo "usage: $0 install|python|spark|env|versions" >&2; exit 2 ;;
esac
