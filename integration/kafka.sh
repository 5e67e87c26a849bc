#!/usr/bin/env bash
# Installs (once, cached) and starts/stops a single-node Apache Kafka broker in
# KRaft mode on 127.0.0.1 for Floe's tests. Kafka's jars come from Maven
# Central at a pinned version, resolved with Maven into the cache.
#   integration/kafka.sh start   # idempotent; prints the env to export: eval "$(integration/kafka.sh start)"
#   integration/kafka.sh stop    # stops the broker this script started (by its recorded PID only)
#   integration/kafka.sh restart # stop, then start on the same data (tests of a broker restart use it)
#   integration/kafka.sh env     # prints FLOE_KAFKA_BROKERS
#   integration/kafka.sh status  # exits 0 if the broker this script started is running
#   integration/kafka.sh install # only resolves the jars (cached)
# Only the export lines go to stdout; everything else goes to stderr.
set -euo pipefail
KAFKA_VERSION=3.9.1
CACHE=${FLOE_CACHE:-$HOME/.cache/floe}
HOME_DIR=$CACHE/kafka-$KAFKA_VERSION
LIBS=$HOME_DIR/libs
STATE=${FLOE_KAFKA_STATE:-$CACHE/run/kafka}
PORT=${FLOE_KAFKA_PORT:-19092}
CONTROLLER_PORT=${FLOE_KAFKA_CONTROLLER_PORT:-19093}
HEAP=${FLOE_KAFKA_HEAP:-512m}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install() {
  [ -f "$LIBS/.complete" ] && return 0
  command -v java >/dev/null || { echo "kafka: java is needed (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
  command -v mvn >/dev/null || { echo "kafka: mvn is needed to fetch Kafka's jars (apt-get install maven)" >&2; exit 1; }
  echo "kafka: resolving Apache Kafka $KAFKA_VERSION and its runtime jars from Maven Central (once; cached at $LIBS)" >&2
  mkdir -p "$HOME_DIR"
  cat >"$HOME_DIR/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>floe</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-storage</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
EOF
  rm -rf "$LIBS.tmp"
  (cd "$HOME_DIR" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" </dev/null >&2)
  rm -rf "$LIBS"
  mv "$LIBS.tmp" "$LIBS"
  touch "$LIBS/.complete"
}

lock() { lock_state kafka 180; }

pid() { cat "$STATE/pid" 2>/dev/null || true; }

# running: the recorded PID is alive and is our broker (a java process whose
# command line names our config; not a recycled PID).
running() {
  local p
  p=$(pid)
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "$STATE/server.properties"
}

# ready: the broker accepts connections on its client port.
ready() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

env_() {
  echo "export FLOE_KAFKA_BROKERS=127.0.0.1:$PORT"
}

started() { ready && grep -q "Kafka Server started" "$STATE/log" 2>/dev/null; }

wait_ready() { wait_up kafka started running 300 0.2 "$STATE/log" "port $PORT or $CONTROLLER_PORT taken?"; }

write_config() {
  mkdir -p "$STATE/data"
  cat >"$STATE/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$STATE/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
auto.create.topics.enable=false
log.retention.hours=24
log.segment.bytes=134217728
EOF
  cat >"$STATE/log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
EOF
}

java_() {
  java -Xmx"$HEAP" -Xms128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$STATE/log4j.properties" -cp "$LIBS/*" "$@"
}

start() {
  install_locked kafka install
  lock
  if running; then wait_ready; env_; return 0; fi
  rm -f "$STATE/pid"
  write_config
  if [ ! -f "$STATE/data/meta.properties" ]; then
    java_ kafka.tools.StorageTool format -t floe-test-cluster-0000001 -c "$STATE/server.properties" --ignore-formatted >"$STATE/format.log" 2>&1 ||
      { cat "$STATE/format.log" >&2; echo "kafka: formatting $STATE/data failed" >&2; exit 1; }
  fi
  # stdin/stdout/stderr and the lock fd are detached so that $(kafka.sh start) returns.
  nohup java -Xmx"$HEAP" -Xms128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$STATE/log4j.properties" -cp "$LIBS/*" \
    kafka.Kafka "$STATE/server.properties" </dev/null >"$STATE/log" 2>&1 9>&- &
  echo $! >"$STATE/pid"
  wait_ready
  echo "kafka: started on 127.0.0.1:$PORT (pid $(pid), data $STATE/data)" >&2
  env_
}

stop() {
  lock
  if running; then
    local p
    p=$(pid)
    kill_wait "$p" 300
    echo "kafka: stopped (pid $p)" >&2
  fi
  rm -f "$STATE/pid"
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  restart) stop; exec 9>&-; start ;;
  env) env_ ;;
  status) running ;;
  *) echo "usage: $0 install|start|stop|restart|status|env" >&2; exit 2 ;;
esac
