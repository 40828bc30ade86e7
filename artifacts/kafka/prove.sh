#!/usr/bin/env bash
# prove.sh KAFKA_HOME [single|scram|cluster|all]
# prove.sh NEW_KAFKA_HOME upgrade OLD_KAFKA_HOME
#
# Proves that a libs/ folder made by fetch.sh is a working Kafka 4.x broker,
# using only `java -cp 'KAFKA_HOME/libs/*' CLASS` (no Kafka shell scripts):
#   single   one combined broker+controller (KRaft, dynamic quorum, --standalone)
#            on 127.0.0.1: format, start, describe quorum, create topic,
#            produce + consume one record, SIGTERM.
#   scram    the same with SASL_PLAINTEXT + SCRAM-SHA-512 on the client
#            listener; users created at format time (--add-scram) and at run
#            time (ConfigCommand); a wrong password is refused.
#   cluster  three combined nodes (QUORUM=dynamic: --initial-controllers, the
#            default; QUORUM=static: controller.quorum.voters), topic with
#            replication factor 3 and min.insync.replicas=2, one node stopped,
#            acks=all produce still succeeds, everything consumed.
#   upgrade  one node formatted and run with OLD_KAFKA_HOME's jars, a record
#            produced, stopped; restarted on NEW_KAFKA_HOME's jars over the same
#            data; the record consumed; metadata.version finalized to the new
#            release with FeatureCommand.
# Every wait is bounded; every JVM it starts is stopped by its pid on exit.
# Only 127.0.0.1 is used. Ports: PORT_BASE (default 19000) + 92/93, 192/193, ...
# Scratch goes to WORK (default: a fresh mktemp dir under /tmp).
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 KAFKA_HOME [single|scram|cluster|all] | $0 NEW_HOME upgrade OLD_HOME" >&2; exit 2; }
KH=$(cd "$1" && pwd)
MODE=${2:-all}
QUORUM=${QUORUM:-dynamic}
PORT_BASE=${PORT_BASE:-19000}
WORK=${WORK:-$(mktemp -d /tmp/kafka-prove.XXXXXX)}
HEAP=${HEAP:--Xmx512m}
VERSION=$(cat "$KH/VERSION")
mkdir -p "$WORK"
echo "prove: kafka $VERSION from $KH, work dir $WORK"

PIDS=()
now_ms() { date +%s%3N; }
log() { echo "[prove $(date +%T)] $*"; }

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 60); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$p" 2>/dev/null; then echo "prove: pid $p ignored SIGTERM for 30 s, SIGKILL" >&2; kill -KILL "$p" 2>/dev/null || true; fi
  done
  PIDS=()
}
trap cleanup EXIT

# A command-line tool from the same jars, logging WARN+ to stderr only.
tool() {
  timeout 120 java -Xmx256m -cp "$KH/libs/*" \
    -Dlog4j2.configurationFile="$KH/config/tools-log4j2.properties" "$@"
}
# ConfigCommand moved from kafka.admin (<= 4.3) to org.apache.kafka.tools (4.4).
config_command_class() {
  if grep -qa 'org/apache/kafka/tools/ConfigCommand.class' "$KH/libs/kafka-tools-$VERSION.jar"; then
    echo org.apache.kafka.tools.ConfigCommand
  else
    echo kafka.admin.ConfigCommand
  fi
}

# start_node NAME: runs kafka.Kafka on $WORK/NAME/server.properties in the background.
start_node() {
  local name=$1 dir=$WORK/$1
  mkdir -p "$dir/logs"
  java $HEAP -Xms256m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dkafka.logs.dir="$dir/logs" \
    -Dlog4j2.configurationFile="$KH/config/log4j2.properties" \
    -cp "$KH/libs/*" kafka.Kafka "$dir/server.properties" \
    > "$dir/logs/stdout.log" 2>&1 < /dev/null &
  local pid=$!
  echo "$pid" > "$dir/pid"
  echo "$(now_ms)" > "$dir/started_ms"
  PIDS+=("$pid")
  log "$name: started pid $pid"
}

# wait_started NAME [SECONDS]: until the broker logs that it started (bounded).
wait_started() {
  local name=$1 limit=${2:-90} dir=$WORK/$1 pid
  pid=$(cat "$dir/pid")
  for _ in $(seq 1 $((limit * 4))); do
    if grep -q 'Kafka Server started' "$dir/logs/stdout.log" 2>/dev/null; then
      log "$name: up in $(( $(now_ms) - $(cat "$dir/started_ms") )) ms"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "prove: $name (pid $pid) died during start:" >&2; tail -30 "$dir/logs/stdout.log" >&2; return 1
    fi
    sleep 0.25
  done
  echo "prove: $name not started after ${limit}s" >&2; tail -30 "$dir/logs/stdout.log" >&2; return 1
}

# stop_node NAME...: SIGTERM to all the named nodes AT ONCE, bounded wait (60 s,
# then SIGKILL) for a clean exit of each.
# Why at once: a combined broker+controller does a controlled shutdown that
# must be committed by the controller quorum. Stopping the nodes of a 3-node
# quorum one by one leaves the last one without a majority, and it then waits
# forever in "Beginning controlled shutdown" (seen here: SIGKILL after 60 s).
stop_node() {
  local name pid t0 rc bad=0 p keep
  t0=$(now_ms)
  for name in "$@"; do kill -TERM "$(cat "$WORK/$name/pid")"; done
  for name in "$@"; do
    pid=$(cat "$WORK/$name/pid"); rc=0
    for _ in $(seq 1 240); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "prove: $name ignored SIGTERM for 60 s, SIGKILL" >&2; kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" || rc=$?
    keep=()
    for p in "${PIDS[@]}"; do [ "$p" != "$pid" ] && keep+=("$p"); done
    PIDS=("${keep[@]+"${keep[@]}"}")
    log "$name: pid $pid exited with $rc, $(( $(now_ms) - t0 )) ms after SIGTERM"
    grep -q 'shut down completed' "$WORK/$name/logs/stdout.log" || { echo "prove: $name did not log a clean shutdown" >&2; bad=1; }
    # 143 = 128+SIGTERM: the JVM ran its shutdown hooks and exited by the signal.
    [ "$rc" = 0 ] || [ "$rc" = 143 ] || { echo "prove: $name exit code $rc" >&2; bad=1; }
  done
  return $bad
}

# quorum_ok BOOTSTRAP [CLIENT_CONFIG]: describe --status shows a leader.
quorum_ok() {
  local out extra=()
  [ -n "${2:-}" ] && extra=(--command-config "$2")
  out=$(tool org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-server "$1" "${extra[@]}" describe --status)
  echo "$out" | sed 's/^/    /'
  echo "$out" | grep -Eq '^LeaderId:[[:space:]]+[0-9]+' || { echo "prove: no quorum leader" >&2; return 1; }
}

# The console producer/consumer took --command-property/--command-config in
# 4.2 (KIP-1147); 4.0 and 4.1 only know --producer-property/--producer.config
# (--consumer-property/--consumer.config), which 4.2+ still accept but
# call deprecated.
new_console_opts() { local mm=${VERSION%.*}; [ "${mm%%.*}" -gt 4 ] || [ "${mm#*.}" -ge 2 ]; }
opt_property() { if new_console_opts; then echo --command-property; else echo "--$1-property"; fi; }
opt_config() { if new_console_opts; then echo --command-config; else echo "--$1.config"; fi; }

# produce BOOTSTRAP TOPIC VALUE [CLIENT_CONFIG]: one record, acks=all, bounded.
produce() {
  local extra=()
  [ -n "${4:-}" ] && extra=("$(opt_config producer)" "$4")
  echo "$3" | tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$1" --topic "$2" \
    "${extra[@]}" "$(opt_property producer)" acks=all "$(opt_property producer)" delivery.timeout.ms=30000 \
    "$(opt_property producer)" request.timeout.ms=10000 --sync
}

# consume BOOTSTRAP TOPIC N [CLIENT_CONFIG]: prints N records from the beginning.
consume() {
  local extra=()
  [ -n "${4:-}" ] && extra=("$(opt_config consumer)" "$4")
  tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$1" --topic "$2" \
    "${extra[@]}" --from-beginning --max-messages "$3" --timeout-ms 30000 2>/dev/null
}

common_props() { # NODE_ID DIR
  cat <<EOF
process.roles=broker,controller
node.id=$1
log.dirs=$2/data
controller.listener.names=CONTROLLER
num.partitions=1
group.initial.rebalance.delay.ms=0
EOF
}

single_props() { # DIR CLIENT_PORT CONTROLLER_PORT
  common_props 1 "$1"
  cat <<EOF
controller.quorum.bootstrap.servers=127.0.0.1:$3
listeners=PLAINTEXT://127.0.0.1:$2,CONTROLLER://127.0.0.1:$3
advertised.listeners=PLAINTEXT://127.0.0.1:$2
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
EOF
}

prove_single() {
  local name=single dir=$WORK/single cp=$((PORT_BASE + 92)) ctl=$((PORT_BASE + 93)) cid t0
  local bs=127.0.0.1:$cp
  rm -rf "$dir"; mkdir -p "$dir"
  single_props "$dir" "$cp" "$ctl" > "$dir/server.properties"
  cid=$(tool kafka.tools.StorageTool random-uuid)
  log "$name: cluster id $cid"
  tool kafka.tools.StorageTool format --cluster-id "$cid" --config "$dir/server.properties" --standalone | tail -1
  start_node $name; wait_started $name
  quorum_ok "$bs"
  tool org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-controller 127.0.0.1:$ctl describe --replication | sed 's/^/    /'
  tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --create --topic demo --partitions 1 --replication-factor 1
  t0=$(now_ms); produce "$bs" demo "hello-$VERSION-single"; log "$name: produced in $(( $(now_ms) - t0 )) ms"
  local got; got=$(consume "$bs" demo 1)
  log "$name: consumed '$got'"
  [ "$got" = "hello-$VERSION-single" ] || { echo "prove: consumed '$got'" >&2; return 1; }
  stop_node $name
  log "$name: OK"
}

prove_scram() {
  local name=scram dir=$WORK/scram cp=$((PORT_BASE + 492)) ctl=$((PORT_BASE + 493)) cid
  local bs=127.0.0.1:$cp
  rm -rf "$dir"; mkdir -p "$dir"
  {
    common_props 1 "$dir"
    cat <<EOF
controller.quorum.bootstrap.servers=127.0.0.1:$ctl
listeners=SASL_PLAINTEXT://127.0.0.1:$cp,CONTROLLER://127.0.0.1:$ctl
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:$cp
listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="admin-secret";
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
EOF
  } > "$dir/server.properties"
  client_cfg() { # USER PASSWORD
    cat <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$1" password="$2";
EOF
  }
  client_cfg admin admin-secret > "$dir/admin.properties"
  client_cfg imctl imctl-secret > "$dir/imctl.properties"
  client_cfg bob bob-secret > "$dir/bob.properties"
  client_cfg imctl wrong-password > "$dir/wrong.properties"
  cid=$(tool kafka.tools.StorageTool random-uuid)
  # SCRAM users exist before the broker starts: they go into the bootstrap
  # metadata. The inter-broker user (admin) must be one of them.
  tool kafka.tools.StorageTool format --cluster-id "$cid" --config "$dir/server.properties" --standalone \
    --add-scram 'SCRAM-SHA-512=[name=admin,password=admin-secret]' \
    --add-scram 'SCRAM-SHA-512=[name=imctl,password=imctl-secret]' | tail -1
  start_node $name; wait_started $name
  quorum_ok "$bs" "$dir/admin.properties"
  tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --command-config "$dir/admin.properties" \
    --create --topic secure --partitions 1 --replication-factor 1
  produce "$bs" secure "hello-scram-imctl" "$dir/imctl.properties"
  # A user added at run time (KRaft: through the brokers, ConfigCommand --bootstrap-server).
  tool "$(config_command_class)" --bootstrap-server "$bs" --command-config "$dir/admin.properties" \
    --alter --entity-type users --entity-name bob --add-config 'SCRAM-SHA-512=[iterations=8192,password=bob-secret]'
  tool "$(config_command_class)" --bootstrap-server "$bs" --command-config "$dir/admin.properties" \
    --describe --entity-type users | sed 's/^/    /'
  local got; got=$(consume "$bs" secure 1 "$dir/bob.properties")
  log "$name: bob consumed '$got'"
  [ "$got" = "hello-scram-imctl" ] || { echo "prove: scram consume got '$got'" >&2; return 1; }
  # A wrong password must be refused (bounded: the admin client gives up fast).
  if tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --command-config "$dir/wrong.properties" \
       --list > "$dir/wrong.out" 2>&1; then
    echo "prove: wrong password was accepted" >&2; cat "$dir/wrong.out" >&2; return 1
  fi
  grep -m1 -o 'Authentication failed[^.]*' "$dir/wrong.out" | sed 's/^/    refused: /' || true
  stop_node $name
  log "$name: OK"
}

prove_cluster() {
  local i cid voters="" bootstrap="" initial="" bs
  rm -rf "$WORK"/node1 "$WORK"/node2 "$WORK"/node3
  for i in 1 2 3; do
    voters+="${voters:+,}$i@127.0.0.1:$((PORT_BASE + i * 100 + 93))"
    bootstrap+="${bootstrap:+,}127.0.0.1:$((PORT_BASE + i * 100 + 93))"
  done
  bs="127.0.0.1:$((PORT_BASE + 192)),127.0.0.1:$((PORT_BASE + 292)),127.0.0.1:$((PORT_BASE + 392))"
  cid=$(tool kafka.tools.StorageTool random-uuid)
  log "cluster: id $cid, quorum $QUORUM"
  if [ "$QUORUM" = dynamic ]; then
    # KIP-853: every controller's log directory gets a directory id chosen up
    # front; the same --initial-controllers string formats every node.
    for i in 1 2 3; do
      initial+="${initial:+,}$i@127.0.0.1:$((PORT_BASE + i * 100 + 93)):$(tool kafka.tools.StorageTool random-uuid)"
    done
  fi
  for i in 1 2 3; do
    local dir=$WORK/node$i cp=$((PORT_BASE + i * 100 + 92)) ctl=$((PORT_BASE + i * 100 + 93))
    mkdir -p "$dir"
    {
      common_props $i "$dir"
      if [ "$QUORUM" = dynamic ]; then
        echo "controller.quorum.bootstrap.servers=$bootstrap"
      else
        echo "controller.quorum.voters=$voters"
      fi
      cat <<EOF
listeners=PLAINTEXT://127.0.0.1:$cp,CONTROLLER://127.0.0.1:$ctl
advertised.listeners=PLAINTEXT://127.0.0.1:$cp
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
EOF
    } > "$dir/server.properties"
    if [ "$QUORUM" = dynamic ]; then
      tool kafka.tools.StorageTool format --cluster-id "$cid" --config "$dir/server.properties" \
        --initial-controllers "$initial" | tail -1
    else
      tool kafka.tools.StorageTool format --cluster-id "$cid" --config "$dir/server.properties" | tail -1
    fi
  done
  for i in 1 2 3; do start_node node$i; done
  for i in 1 2 3; do wait_started node$i; done
  quorum_ok "$bs"
  tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --create --topic replicated \
    --partitions 3 --replication-factor 3 --config min.insync.replicas=2
  tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --describe --topic replicated | sed 's/^/    /'
  produce "$bs" replicated "before-stop"
  stop_node node3
  quorum_ok "127.0.0.1:$((PORT_BASE + 192)),127.0.0.1:$((PORT_BASE + 292))"
  local t0; t0=$(now_ms)
  produce "127.0.0.1:$((PORT_BASE + 192)),127.0.0.1:$((PORT_BASE + 292))" replicated "after-stop"
  log "cluster: acks=all produce with node3 down took $(( $(now_ms) - t0 )) ms"
  tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$((PORT_BASE + 192))" --describe --topic replicated | sed 's/^/    /'
  local got; got=$(consume "127.0.0.1:$((PORT_BASE + 192)),127.0.0.1:$((PORT_BASE + 292))" replicated 2 | sort | tr '\n' ' ')
  log "cluster: consumed: $got"
  [ "$got" = "after-stop before-stop " ] || { echo "prove: cluster consume got '$got'" >&2; return 1; }
  stop_node node1 node2   # together: see stop_node
  log "cluster: OK"
}

prove_upgrade() {
  local old new=$KH name=upgrade dir=$WORK/upgrade cp=$((PORT_BASE + 592)) ctl=$((PORT_BASE + 593)) cid
  local bs=127.0.0.1:$cp old_v new_v=$VERSION
  old=$(cd "$1" && pwd); old_v=$(cat "$old/VERSION")
  rm -rf "$dir"; mkdir -p "$dir"
  single_props "$dir" "$cp" "$ctl" > "$dir/server.properties"
  KH=$old VERSION=$old_v
  cid=$(tool kafka.tools.StorageTool random-uuid)
  tool kafka.tools.StorageTool format --cluster-id "$cid" --config "$dir/server.properties" --standalone | tail -1
  start_node $name; wait_started $name
  tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --create --topic up --partitions 1 --replication-factor 1
  produce "$bs" up "written-by-$old_v"
  stop_node $name
  log "$name: $old_v stopped; restarting the same data dir on $new_v"
  KH=$new VERSION=$new_v
  start_node $name; wait_started $name
  produce "$bs" up "written-by-$new_v"
  local got; got=$(consume "$bs" up 2 | tr '\n' ' ')
  log "$name: consumed after upgrade: $got"
  [ "$got" = "written-by-$old_v written-by-$new_v " ] || { echo "prove: upgrade consume got '$got'" >&2; return 1; }
  tool org.apache.kafka.tools.FeatureCommand --bootstrap-server "$bs" describe | grep metadata.version | sed 's/^/    before: /'
  tool org.apache.kafka.tools.FeatureCommand --bootstrap-server "$bs" upgrade --release-version "${new_v%.*}"
  tool org.apache.kafka.tools.FeatureCommand --bootstrap-server "$bs" describe | grep metadata.version | sed 's/^/    after:  /'
  stop_node $name
  log "$name: OK ($old_v -> $new_v)"
}

case "$MODE" in
  single) prove_single ;;
  scram) prove_scram ;;
  cluster) prove_cluster ;;
  all) prove_single; prove_scram; prove_cluster ;;
  upgrade) [ $# -ge 3 ] || { echo "upgrade needs OLD_KAFKA_HOME" >&2; exit 2; }; prove_upgrade "$3" ;;
  *) echo "unknown mode $MODE" >&2; exit 2 ;;
esac
log "all done (kafka $VERSION); no JVM left: ${PIDS[*]:-none}"
