#!/usr/bin/env bash
# Weft's local backends, without Docker: Jaeger v2 (Go module tag v1.75.0, built from the Go
# module proxy), OpenSearch 2.19.6 (an embedded single node built from Maven Central jars) and
# Kafka 4.1.1 (KRaft, one node, from Maven Central jars; see its block below).
#
#   scripts/services.sh install [jaeger|opensearch]   build/cache only (idempotent)
#   scripts/services.sh up                            install, start both in target/services/,
#                                                     wait until they answer, write target/services/env
#   scripts/services.sh down                          stop both, remove target/services/env
#   scripts/services.sh status [DIR]                  what runs in DIR (default target/services/)
#
# Private instances (tests that stop and restart a backend mid-stream): an instance is a
# directory DIR plus a kind; DIR holds <kind>.pid, <kind>.log, <kind>.env (its addresses) and
# <kind>/ (home, data). One DIR can hold one Jaeger and one OpenSearch.
#
#   scripts/services.sh start-opensearch DIR [--port HTTP_PORT] [--fresh]
#   scripts/services.sh start-jaeger DIR [--port OTLP_GRPC_PORT] [--persistent] [--fresh]
#   scripts/services.sh stop-opensearch DIR [--kill]
#   scripts/services.sh stop-jaeger DIR [--kill]
#
# start-* return once the instance answers and print its KEY=VALUE lines on stdout (the same as
# DIR/<kind>.env): OPENSEARCH_URL=http://127.0.0.1:P, or JAEGER_OTLP_GRPC=127.0.0.1:P,
# JAEGER_OTLP_HTTP=http://127.0.0.1:P, JAEGER_QUERY_URL=http://127.0.0.1:P, JAEGER_QUERY_GRPC=...
# A restart of the same DIR reuses the previous ports (when still free), so clients can
# reconnect to the same address. OpenSearch keeps its data across restarts unless --fresh;
# Jaeger keeps spans across restarts only with --persistent (Badger store instead of memory).
# stop-* sends SIGTERM and SIGKILL after a timeout; --kill sends SIGKILL at once (a crash).
# An instance already running and answering is left alone (start-* just prints its lines).
#
# Everything installed is cached under ${WEFT_CACHE:-~/.cache/weft}: bin/jaeger-<tag>, the Go
# module and build caches in go/, the Maven repository in m2/, opensearch-<version>-<hash>/.
# Progress goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd -P)"
cache="${WEFT_CACHE:-$HOME/.cache/weft}"
default_dir="$root/target/services"

JAEGER_VERSION=v1.75.0
OPENSEARCH_VERSION=2.19.6
jaeger_src="$root/services/jaeger"
jaeger_bin="$cache/bin/jaeger-$JAEGER_VERSION"
os_src="$root/services/opensearch"
# The OpenSearch build depends on the pom and the Java sources: a change rebuilds it.
os_hash="$(cat "$os_src/pom.xml" $(find "$os_src/src" -type f -name '*.java' | sort) | sha256sum | cut -c1-12)"
os_build="$cache/opensearch-$OPENSEARCH_VERSION-$os_hash"
# Heap of the OpenSearch JVM (min = max, as OpenSearch recommends).
os_heap="${WEFT_OPENSEARCH_HEAP:-1g}"
# Seconds to wait for an instance to answer, and for it to exit after SIGTERM.
start_timeout="${WEFT_SERVICES_START_TIMEOUT:-180}"
stop_timeout="${WEFT_SERVICES_STOP_TIMEOUT:-30}"

log() { echo "services: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# ---------------------------------------------------------------------------------------------
# Installation

# Runs "$@" while holding the lock file $1 (so parallel callers build once).
with_lock() {
  local lock="$1"
  shift
  mkdir -p "$(dirname "$lock")"
  (
    flock 9
    "$@"
  ) 9>"$lock"
}

install_jaeger() {
  [ -x "$jaeger_bin" ] && return 0
  with_lock "$cache/locks/jaeger.lock" build_jaeger
}

build_jaeger() {
  [ -x "$jaeger_bin" ] && return 0
  command -v go >/dev/null || die "go is not installed; Jaeger is built from the Go module proxy (needs Go >= 1.24.6)"
  grep -q "github.com/jaegertracing/jaeger $JAEGER_VERSION" "$jaeger_src/go.mod" ||
    die "$jaeger_src/go.mod does not pin github.com/jaegertracing/jaeger $JAEGER_VERSION"
  mkdir -p "$cache/bin" "$cache/logs"
  local buildlog="$cache/logs/jaeger-build.log" t0=$SECONDS tmp="$jaeger_bin.tmp.$$"
  log "building Jaeger $JAEGER_VERSION (first time only, several minutes on 2 cores; log: $buildlog)"
  # go.mod/go.sum are committed and read-only here (-mod=readonly): the build is reproducible.
  # GOPATH (sumdb cache), the module and build caches live in the Weft cache; -modcacherw lets
  # `rm -rf` clean them.
  if ! (cd "$jaeger_src" &&
    GOPATH="$cache/go" GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOFLAGS="-mod=readonly -modcacherw -buildvcs=false" \
      GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 \
      go build -trimpath -o "$tmp" github.com/jaegertracing/jaeger/cmd/jaeger) >"$buildlog" 2>&1; then
    tail -n 20 "$buildlog" >&2
    rm -f "$tmp"
    die "building Jaeger failed (full log: $buildlog)"
  fi
  mv -f "$tmp" "$jaeger_bin"
  log "Jaeger built in $((SECONDS - t0))s: $jaeger_bin"
}

install_opensearch() {
  [ -f "$os_build/.complete" ] && return 0
  with_lock "$cache/locks/opensearch.lock" build_opensearch
}

build_opensearch() {
  [ -f "$os_build/.complete" ] && return 0
  command -v mvn >/dev/null || die "mvn is not installed; OpenSearch is assembled from Maven Central (apt-get install maven)"
  command -v java >/dev/null || die "java is not installed; OpenSearch $OPENSEARCH_VERSION needs Java 17 or newer"
  mkdir -p "$cache/logs"
  local buildlog="$cache/logs/opensearch-build.log" t0=$SECONDS
  log "assembling OpenSearch $OPENSEARCH_VERSION from Maven Central (first time only; log: $buildlog)"
  rm -rf "$os_build"
  if ! mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$cache/m2" -Dweft.build.dir="$os_build/build" \
    -f "$os_src/pom.xml" package >"$buildlog" 2>&1; then
    tail -n 30 "$buildlog" >&2
    die "building OpenSearch failed (full log: $buildlog)"
  fi
  [ -f "$os_build/build/weft-opensearch.jar" ] || die "maven produced no $os_build/build/weft-opensearch.jar"
  touch "$os_build/.complete"
  log "OpenSearch assembled in $((SECONDS - t0))s: $os_build"
}

# ---------------------------------------------------------------------------------------------
# Instances

# A port is taken when something accepts connections on it.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Prints the first of the candidate ports that is free and not in $taken; else a random free one.
pick_port() {
  local p
  for p in "$@"; do
    if [ -n "$p" ] && [[ "$taken" != *" $p "* ]] && port_free "$p"; then
      echo "$p"
      return
    fi
  done
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 12000)) # below the kernel's ephemeral range (32768+)
    if [[ "$taken" != *" $p "* ]] && port_free "$p"; then
      echo "$p"
      return
    fi
  done
  die "no free port found on 127.0.0.1"
}

# Value of KEY in an env file (empty when absent).
env_get() { [ -f "$1" ] && sed -n "s/^$2=//p" "$1" | tail -n 1 || true; }
port_of() { echo "${1##*:}"; }

# Pid of a live instance of $kind in $dir (empty when none). A process is the instance when it
# runs in the instance's home (its cwd), so a recycled pid is never mistaken for it; and an
# instance whose pid file is gone (say, `cargo clean` removed target/) is still found.
live_pid() {
  local kind="$1" dir="$2" pid cwd
  pid="$(cat "$dir/$kind.pid" 2>/dev/null || true)"
  if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$dir/$kind" ]; then
    echo "$pid"
    return 0
  fi
  for cwd in /proc/[0-9]*/cwd; do
    case "$(readlink "$cwd" 2>/dev/null)" in
      "$dir/$kind" | "$dir/$kind (deleted)")
        pid="${cwd#/proc/}"
        echo "${pid%/cwd}"
        return 0
        ;;
    esac
  done
  return 0
}

abs_dir() {
  [ -n "${1:-}" ] || die "a directory is required"
  mkdir -p "$1"
  (cd "$1" && pwd -P) # physical: compared with /proc/<pid>/cwd
}

# Waits until `$check` succeeds. Returns 1 if the process died (its pid file removed, the log's
# tail shown); fails outright if time runs out.
wait_ready() {
  local kind="$1" dir="$2" pid="$3" check="$4" deadline=$((SECONDS + start_timeout))
  until $check "$dir"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 15 "$dir/$kind.log" >&2
      rm -f "$dir/$kind.pid"
      log "$kind in $dir exited during start-up (log: $dir/$kind.log)"
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 30 "$dir/$kind.log" >&2
      die "$kind in $dir did not answer within ${start_timeout}s (log: $dir/$kind.log); stop it with: $0 stop-$kind $dir"
    fi
    sleep 0.25
  done
}

opensearch_answers() {
  local url body
  url="$(env_get "$1/opensearch.env" OPENSEARCH_URL)"
  [ -n "$url" ] &&
    body="$(curl -fsS --max-time 5 "$url/_cluster/health?wait_for_status=yellow&timeout=2s" 2>/dev/null)" &&
    [[ "$body" =~ \"status\":\"(green|yellow)\" ]]
}

jaeger_answers() {
  local query grpc
  query="$(env_get "$1/jaeger.env" JAEGER_QUERY_URL)"
  grpc="$(env_get "$1/jaeger.env" JAEGER_OTLP_GRPC)"
  [ -n "$query" ] && [ -n "$grpc" ] &&
    curl -fsS --max-time 5 -o /dev/null "$query/api/services" 2>/dev/null &&
    ! port_free "$(port_of "$grpc")"
}

# Starts the process "$@" as the instance $kind in $dir (own session, cwd = its home).
launch() {
  local kind="$1" dir="$2"
  shift 2
  mkdir -p "$dir/$kind"
  echo "=== $(date -u +%FT%TZ) start: $*" >>"$dir/$kind.log"
  # Own session (not killed with the caller's terminal or make); the lock fds are not inherited.
  (cd "$dir/$kind" && exec setsid "$@" </dev/null >>"$dir/$kind.log" 2>&1 8>&- 9>&-) &
  echo $! >"$dir/$kind.pid"
}

# Ports for a new start, printed one per key. Arguments: the instance's env file, the port asked
# for the first key ("" = any), 1 if the instance is the default one, 1 on a retry, then pairs of
# KEY (in the env file) and the fixed port preferred for it by the default instance. The port of
# the previous run of this instance comes first (a restart keeps its addresses); on a retry only
# random free ports are taken (the earlier ones lost a race with another process).
choose_ports() {
  local envfile="$1" asked="$2" def="$3" retry="$4" key preferred prev p first=1
  shift 4
  taken=" "
  while [ $# -gt 0 ]; do
    key="$1" preferred="$2"
    shift 2
    prev="$(port_of "$(env_get "$envfile" "$key")")"
    [ "$def" = 1 ] || preferred=""
    [ "$retry" = 1 ] && prev="" preferred=""
    if [ "$first" = 1 ] && [ -n "$asked" ]; then
      port_free "$asked" || die "port $asked is taken"
      p="$asked"
    else
      p="$(pick_port "$prev" "$preferred")"
    fi
    first=0
    taken+="$p "
    echo "$p"
  done
}

start_opensearch() {
  local dir="" port="" fresh=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) port="${2:?--port needs a value}"; shift ;;
      --fresh) fresh=1 ;;
      -*) die "start-opensearch: unknown option $1" ;;
      *) [ -z "$dir" ] && dir="$1" || die "start-opensearch: unexpected argument $1" ;;
    esac
    shift
  done
  dir="$(abs_dir "$dir")"
  install_opensearch
  exec 8>"$dir/opensearch.lock"
  flock 8
  local pid env="$dir/opensearch.env" def=0 attempt ports http transport
  [ "$dir" = "$default_dir" ] && def=1
  pid="$(live_pid opensearch "$dir")"
  if [ -n "$pid" ]; then
    wait_ready opensearch "$dir" "$pid" opensearch_answers || die "OpenSearch in $dir died"
  else
    [ "$fresh" = 1 ] && rm -rf "$dir/opensearch/data"
    for attempt in 1 2 3; do
      ports="$(choose_ports "$env" "$port" "$def" "$([ "$attempt" -gt 1 ] && echo 1 || echo 0)" \
        OPENSEARCH_URL 19200 OPENSEARCH_TRANSPORT_PORT 19300)"
      http="$(sed -n 1p <<<"$ports")" transport="$(sed -n 2p <<<"$ports")"
      rm -f "$dir/opensearch/bound-ports"
      mkdir -p "$dir/opensearch/tmp"
      printf 'OPENSEARCH_URL=http://127.0.0.1:%s\nOPENSEARCH_TRANSPORT_PORT=%s\n' "$http" "$transport" >"$env"
      log "starting OpenSearch $OPENSEARCH_VERSION on 127.0.0.1:$http (dir $dir)"
      launch opensearch "$dir" java -Xms"$os_heap" -Xmx"$os_heap" -XX:+UseG1GC \
        -Djava.awt.headless=true -Dfile.encoding=UTF-8 -Djava.io.tmpdir="$dir/opensearch/tmp" \
        -Dlog4j2.configurationFile="$os_src/config/log4j2.properties" \
        -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true \
        -cp "$os_build/build/weft-opensearch.jar:$os_build/build/lib/*" weft.WeftOpenSearch \
        "path.home=$dir/opensearch" "path.data=$dir/opensearch/data" "path.logs=$dir/opensearch/logs" \
        "http.port=$http" "transport.port=$transport"
      pid="$(cat "$dir/opensearch.pid")"
      wait_ready opensearch "$dir" "$pid" opensearch_answers && break
      # Another process may have taken a port between the check and the bind: try other ports.
      [ -z "$port" ] && [ "$attempt" -lt 3 ] || die "OpenSearch did not start (log: $dir/opensearch.log)"
      log "retrying OpenSearch with other ports"
    done
  fi
  flock -u 8
  grep '^OPENSEARCH_URL=' "$env"
}

start_jaeger() {
  local dir="" port="" fresh=0 persistent=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) port="${2:?--port needs a value}"; shift ;;
      --fresh) fresh=1 ;;
      --persistent) persistent=1 ;;
      -*) die "start-jaeger: unknown option $1" ;;
      *) [ -z "$dir" ] && dir="$1" || die "start-jaeger: unexpected argument $1" ;;
    esac
    shift
  done
  dir="$(abs_dir "$dir")"
  install_jaeger
  exec 8>"$dir/jaeger.lock"
  flock 8
  local pid env="$dir/jaeger.env" def=0 attempt ports grpc http query qgrpc config="$jaeger_src/config.yaml"
  [ "$dir" = "$default_dir" ] && def=1
  pid="$(live_pid jaeger "$dir")"
  if [ -n "$pid" ]; then
    wait_ready jaeger "$dir" "$pid" jaeger_answers || die "Jaeger in $dir died"
  else
    if [ "$persistent" = 1 ]; then
      config="$jaeger_src/config-badger.yaml"
      [ "$fresh" = 1 ] && rm -rf "$dir/jaeger/data"
      mkdir -p "$dir/jaeger/data"
    fi
    for attempt in 1 2 3; do
      ports="$(choose_ports "$env" "$port" "$def" "$([ "$attempt" -gt 1 ] && echo 1 || echo 0)" \
        JAEGER_OTLP_GRPC 14317 JAEGER_OTLP_HTTP 14318 JAEGER_QUERY_URL 16686 JAEGER_QUERY_GRPC 16685)"
      grpc="$(sed -n 1p <<<"$ports")" http="$(sed -n 2p <<<"$ports")"
      query="$(sed -n 3p <<<"$ports")" qgrpc="$(sed -n 4p <<<"$ports")"
      printf 'JAEGER_OTLP_GRPC=127.0.0.1:%s\nJAEGER_OTLP_HTTP=http://127.0.0.1:%s\nJAEGER_QUERY_URL=http://127.0.0.1:%s\nJAEGER_QUERY_GRPC=127.0.0.1:%s\n' \
        "$grpc" "$http" "$query" "$qgrpc" >"$env"
      log "starting Jaeger $JAEGER_VERSION: OTLP gRPC 127.0.0.1:$grpc, HTTP :$http, query http://127.0.0.1:$query (dir $dir)"
      launch jaeger "$dir" env WEFT_JAEGER_OTLP_GRPC="127.0.0.1:$grpc" WEFT_JAEGER_OTLP_HTTP="127.0.0.1:$http" \
        WEFT_JAEGER_QUERY_HTTP="127.0.0.1:$query" WEFT_JAEGER_QUERY_GRPC="127.0.0.1:$qgrpc" \
        WEFT_JAEGER_DATA="$dir/jaeger/data" "$jaeger_bin" --config="$config"
      pid="$(cat "$dir/jaeger.pid")"
      wait_ready jaeger "$dir" "$pid" jaeger_answers && break
      [ -z "$port" ] && [ "$attempt" -lt 3 ] || die "Jaeger did not start (log: $dir/jaeger.log)"
      log "retrying Jaeger with other ports"
    done
  fi
  flock -u 8
  cat "$env"
}

stop_instance() {
  local kind="$1" dir="" signal=TERM
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
      --kill) signal=KILL ;;
      -*) die "stop-$kind: unknown option $1" ;;
      *) [ -z "$dir" ] && dir="$1" || die "stop-$kind: unexpected argument $1" ;;
    esac
    shift
  done
  dir="$(abs_dir "$dir")"
  local pid deadline=$((SECONDS + stop_timeout))
  pid="$(live_pid "$kind" "$dir")"
  if [ -n "$pid" ]; then
    log "stopping $kind (pid $pid, dir $dir) with SIG$signal"
    kill -"$signal" "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        log "$kind (pid $pid) still runs after ${stop_timeout}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.1
    done
  fi
  rm -f "$dir/$kind.pid"
}

status_of() {
  local dir="$1" kind pid rc=0
  for kind in jaeger opensearch; do
    pid="$(live_pid "$kind" "$dir")"
    if [ -z "$pid" ]; then
      echo "$kind: stopped"
      rc=3
    elif "${kind}_answers" "$dir"; then
      echo "$kind: running (pid $pid) $(grep -E '^(JAEGER_QUERY_URL|OPENSEARCH_URL)=' "$dir/$kind.env" | cut -d= -f2-)"
    else
      echo "$kind: running (pid $pid) but not answering (log: $dir/$kind.log)"
      rc=3
    fi
  done
  kafka_status "$dir" || rc=3
  return $rc
}

# ---------------------------------------------------------------------------------------------
# Kafka: Apache Kafka 4.1.1 (KRaft, one node acting as broker and controller) run from its Maven
# Central jars (services/kafka/pom.xml), with a generated server.properties on loopback ports.
#
#   scripts/services.sh start-kafka DIR [--port BROKER_PORT] [--fresh]   prints KAFKA_BROKERS=127.0.0.1:P
#   scripts/services.sh stop-kafka DIR [--kill]
#
# The storage of an instance (DIR/kafka/data) is formatted once, on its first start (or with
# --fresh); a restart keeps its topics, offsets and consumer groups.

KAFKA_VERSION=4.1.1
kafka_src="$root/services/kafka"
kafka_hash="$(cat "$kafka_src/pom.xml" | sha256sum | cut -c1-12)"
kafka_build="$cache/kafka-$KAFKA_VERSION-$kafka_hash"
kafka_heap="${WEFT_KAFKA_HEAP:-512m}"

install_kafka() {
  [ -f "$kafka_build/.complete" ] && return 0
  with_lock "$cache/locks/kafka.lock" build_kafka
}

build_kafka() {
  [ -f "$kafka_build/.complete" ] && return 0
  command -v mvn >/dev/null || die "mvn is not installed; Kafka is fetched from Maven Central (apt-get install maven)"
  command -v java >/dev/null || die "java is not installed; Kafka $KAFKA_VERSION needs Java 17 or newer"
  mkdir -p "$cache/logs"
  local buildlog="$cache/logs/kafka-build.log" t0=$SECONDS
  log "fetching Kafka $KAFKA_VERSION from Maven Central (first time only; log: $buildlog)"
  rm -rf "$kafka_build"
  if ! mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$cache/m2" -Dweft.build.dir="$kafka_build/build" \
    -f "$kafka_src/pom.xml" package >"$buildlog" 2>&1; then
    tail -n 30 "$buildlog" >&2
    die "fetching Kafka failed (full log: $buildlog)"
  fi
  ls "$kafka_build/build/lib/"kafka_2.13-*.jar >/dev/null 2>&1 || die "maven produced no $kafka_build/build/lib/kafka_2.13-*.jar"
  touch "$kafka_build/.complete"
  log "Kafka fetched in $((SECONDS - t0))s: $kafka_build"
}

kafka_answers() {
  local brokers
  brokers="$(env_get "$1/kafka.env" KAFKA_BROKERS)"
  [ -n "$brokers" ] && ! port_free "$(port_of "$brokers")" &&
    grep -q "Kafka Server started" "$1/kafka.log" 2>/dev/null &&
    [ "$(grep -c "Kafka Server started" "$1/kafka.log")" -ge "$(grep -c '^=== .* start: ' "$1/kafka.log")" ]
}

kafka_java() {
  java -Xms"$kafka_heap" -Xmx"$kafka_heap" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$kafka_src/log4j2.properties" -Dlog4j2.disable.jmx=true \
    -cp "$kafka_build/build/lib/*" "$@"
}

start_kafka() {
  local dir="" port="" fresh=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) port="${2:?--port needs a value}"; shift ;;
      --fresh) fresh=1 ;;
      -*) die "start-kafka: unknown option $1" ;;
      *) [ -z "$dir" ] && dir="$1" || die "start-kafka: unexpected argument $1" ;;
    esac
    shift
  done
  dir="$(abs_dir "$dir")"
  install_kafka
  exec 8>"$dir/kafka.lock"
  flock 8
  local pid env="$dir/kafka.env" def=0 attempt ports broker controller home="$dir/kafka"
  [ "$dir" = "$default_dir" ] && def=1
  pid="$(live_pid kafka "$dir")"
  if [ -n "$pid" ]; then
    wait_ready kafka "$dir" "$pid" kafka_answers || die "Kafka in $dir died"
  else
    [ "$fresh" = 1 ] && rm -rf "$home/data"
    for attempt in 1 2 3; do
      ports="$(choose_ports "$env" "$port" "$def" "$([ "$attempt" -gt 1 ] && echo 1 || echo 0)" \
        KAFKA_BROKERS 19092 KAFKA_CONTROLLER_PORT 19093)"
      broker="$(sed -n 1p <<<"$ports")" controller="$(sed -n 2p <<<"$ports")"
      mkdir -p "$home"
      cat >"$home/server.properties" <<PROPS
# Generated by scripts/services.sh: one KRaft node, loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
listeners=PLAINTEXT://127.0.0.1:$broker,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$broker
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$home/data
num.partitions=6
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=2000
PROPS
      if [ ! -f "$home/data/meta.properties" ]; then
        log "formatting Kafka storage in $home/data"
        kafka_java kafka.tools.StorageTool format -t "$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)" \
          -c "$home/server.properties" >>"$dir/kafka.log" 2>&1 || die "formatting Kafka storage failed (log: $dir/kafka.log)"
      fi
      printf 'KAFKA_BROKERS=127.0.0.1:%s\nKAFKA_CONTROLLER_PORT=%s\n' "$broker" "$controller" >"$env"
      log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$broker (dir $dir)"
      launch kafka "$dir" env -u KAFKA_HEAP_OPTS java -Xms"$kafka_heap" -Xmx"$kafka_heap" -XX:+UseG1GC \
        -Djava.awt.headless=true -Dlog4j2.configurationFile="$kafka_src/log4j2.properties" \
        -Dlog4j2.disable.jmx=true -cp "$kafka_build/build/lib/*" kafka.Kafka "$home/server.properties"
      pid="$(cat "$dir/kafka.pid")"
      wait_ready kafka "$dir" "$pid" kafka_answers && break
      [ -z "$port" ] && [ "$attempt" -lt 3 ] || die "Kafka did not start (log: $dir/kafka.log)"
      log "retrying Kafka with other ports"
    done
  fi
  flock -u 8
  grep '^KAFKA_BROKERS=' "$env"
}

kafka_status() {
  local dir="$1" pid
  pid="$(live_pid kafka "$dir")"
  if [ -z "$pid" ]; then
    echo "kafka: stopped"
    return 3
  elif kafka_answers "$dir"; then
    echo "kafka: running (pid $pid) $(env_get "$dir/kafka.env" KAFKA_BROKERS)"
  else
    echo "kafka: running (pid $pid) but not answering (log: $dir/kafka.log)"
    return 3
  fi
}

# Runs "$@" for both kinds at once; fails if either failed.
both() {
  local a b
  "$1" jaeger & a=$!
  "$1" opensearch & b=$!
  wait "$a" || { wait "$b" || true; return 1; }
  wait "$b"
}
install_kind() { "install_$1"; }
up_kind() { "start_$1" "$default_dir" --fresh >/dev/null; }

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  install)
    case "${1:-all}" in
      jaeger) install_jaeger ;;
      opensearch) install_opensearch ;;
      kafka) install_kafka ;;
      all) both install_kind ;;
      *) die "install: expected jaeger, opensearch or nothing" ;;
    esac
    ;;
  up)
    t0=$SECONDS
    both install_kind
    both up_kind
    start_kafka "$default_dir" --fresh >/dev/null
    cat "$default_dir/jaeger.env" "$default_dir/opensearch.env" "$default_dir/kafka.env" |
      grep -v -e '^OPENSEARCH_TRANSPORT_PORT=' -e '^KAFKA_CONTROLLER_PORT=' >"$default_dir/env.tmp.$$"
    mv -f "$default_dir/env.tmp.$$" "$default_dir/env"
    log "up in $((SECONDS - t0))s; addresses in $default_dir/env:"
    sed 's/^/  /' "$default_dir/env" >&2
    ;;
  down)
    mkdir -p "$default_dir"
    # The default instances forget their ports: the next `up` tries the fixed ones again.
    rm -f "$default_dir/env" "$default_dir/jaeger.env" "$default_dir/opensearch.env" "$default_dir/kafka.env"
    stop_instance jaeger "$default_dir" & a=$!
    stop_instance opensearch "$default_dir" & b=$!
    stop_instance kafka "$default_dir" & c=$!
    wait "$a" "$b" "$c"
    ;;
  status) status_of "$(abs_dir "${1:-$default_dir}")" ;;
  start-opensearch) start_opensearch "$@" ;;
  start-jaeger) start_jaeger "$@" ;;
  stop-opensearch) stop_instance opensearch "$@" ;;
  stop-jaeger) stop_instance jaeger "$@" ;;
  start-kafka) start_kafka "$@" ;;
  stop-kafka) stop_instance kafka "$@" ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
