#!/usr/bin/env bash
# smoke.sh MINIO_BIN WORKDIR
#
# Proves a built minio binary works, on 127.0.0.1 only:
#   1. single node, single drive (`minio server DIR`), credentials from an env
#      file read by minio itself (MINIO_CONFIG_ENV_FILE): /minio/health/live,
#      console port answers, S3 bucket create / put / get (byte compare) /
#      delete / bucket remove with boto3;
#   2. single node, 4 drives (`minio server DIR{1...4}`, erasure coded EC:2):
#      the same S3 cycle, checks a 6 MiB object is striped as 4 shards (one
#      part.1 on each drive), /minio/health/cluster = 200;
#   3. 4 nodes x 1 drive on 127.0.0.1 (ports PORT_BASE+100..103): the same S3
#      cycle through one node, read back through another; then stops one node
#      (cluster health stays 200: write quorum 3 of 4) and a second one
#      (/minio/health/cluster = 503, /minio/health/cluster/read = 200, and both
#      the first object and one written while 3 nodes were up can still be read).
# Every wait is bounded; every minio started here is stopped by its PID on exit
# (also on failure), and every mount made here is unmounted.
#
# Env: PYTHON  a python3 with boto3 (default: python3)
#      PORT_BASE  (default 19000)
#      DRIVES  how to make the erasure drives: tmpfs (one tmpfs mount per drive,
#              needs root), dirs (plain directories + MINIO_CI_CD=1, see
#              README "root drive"), auto (default: tmpfs when root, else dirs)
#      SKIP_DISTRIBUTED=1  skip step 3
#      MC      an mc client binary (default: `mc` next to MINIO_BIN, if there):
#              also does the put/get/delete cycle with mc in step 1 and
#              `mc admin info` in steps 2 and 3 (config kept in WORKDIR/.mc)
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 MINIO_BIN WORKDIR" >&2
  exit 2
fi
MINIO=$(readlink -f "$1")
WORK=$2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-python3}
BASE=${PORT_BASE:-19000}
DRIVES=${DRIVES:-auto}
if [ "$DRIVES" = auto ]; then
  if [ "$(id -u)" = 0 ]; then DRIVES=tmpfs; else DRIVES=dirs; fi
fi

[ -x "$MINIO" ] || { echo "smoke.sh: $MINIO is not executable" >&2; exit 1; }
MC=${MC:-$(dirname "$MINIO")/mc}
[ -x "$MC" ] || MC=
"$PY" -c 'import boto3' || { echo "smoke.sh: $PY has no boto3 (python3 -m venv V && V/bin/pip install boto3)" >&2; exit 1; }

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
declare -A PIDS=()     # name -> pid of every minio started here
MOUNTS=()

stop_one() {  # stop_one NAME: SIGTERM, wait up to 15 s, then SIGKILL
  local name=$1 pid=${PIDS[$1]:-} i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "  $name (pid $pid) ignored SIGTERM for 15 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  unset "PIDS[$name]"
}
stop_all() {
  local n
  for n in "${!PIDS[@]}"; do stop_one "$n"; done
}
cleanup() {
  local rc=$? m
  stop_all
  for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  if [ $rc -ne 0 ]; then echo "smoke.sh: FAILED (logs in $WORK/*.log)" >&2; fi
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

fail() {
  echo "smoke.sh: $*" >&2
  local f
  for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "--- tail $f" >&2; tail -n 15 "$f" >&2; }; done
  exit 1
}

port_free() { ! ss -ltnH "sport = :$1" | grep -q .; }

# The env file: what /etc/default/minio would be on a host (systemd
# EnvironmentFile=), read here by minio itself through MINIO_CONFIG_ENV_FILE.
ENVFILE=$WORK/minio.env
if [ ! -f "$ENVFILE" ]; then
  umask 077
  cat > "$ENVFILE" <<EOF
# MinIO root credentials (user >= 3 chars, password >= 8 chars)
MINIO_ROOT_USER=imctl-admin
MINIO_ROOT_PASSWORD=$(openssl rand -hex 16)
# offline host: no update check / in-place update
MINIO_UPDATE=off
EOF
  umask 022
fi

start() {  # start NAME ARGS... : minio server ARGS in the background, log to WORK/NAME.log
  local name=$1; shift
  MINIO_CONFIG_ENV_FILE=$ENVFILE "$MINIO" server "$@" > "$WORK/$name.log" 2>&1 &
  PIDS[$name]=$!
  echo "  started $name (pid ${PIDS[$name]}): minio server $*"
}

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1" || true; }

wait_code() {  # wait_code URL CODE TIMEOUT_S
  local url=$1 want=$2 limit=$3 i code=
  for i in $(seq 1 $((limit * 2))); do
    code=$(http_code "$url")
    [ "$code" = "$want" ] && { echo "  $url -> $code (after ~$(( (i - 1) / 2 )) s)"; return 0; }
    local n
    for n in "${!PIDS[@]}"; do
      kill -0 "${PIDS[$n]}" 2>/dev/null || fail "$n exited early"
    done
    sleep 0.5
  done
  fail "$url: wanted $want, last got '${code:-none}' after ${limit} s"
}

s3() {  # s3 ENDPOINT ACTION ARGS...
  (set -a; . "$ENVFILE"; set +a; exec "$PY" "$HERE/s3check.py" "$@") || fail "s3check $*"
}

mcx() {  # mcx ENDPOINT ARGS...: mc with alias `t` pointing at ENDPOINT, config in WORK/.mc
  local ep=$1; shift
  (set -a; . "$ENVFILE"; set +a
   export MC_CONFIG_DIR=$WORK/.mc MC_HOST_t="${ep%%://*}://$MINIO_ROOT_USER:$MINIO_ROOT_PASSWORD@${ep#*://}"
   exec timeout 60 "$MC" --no-color "$@") || fail "mc $*"
}

OBJ=$WORK/object.bin
head -c $((6 * 1024 * 1024)) /dev/urandom > "$OBJ"

make_drives() {  # make_drives DIR N: DIR/d1..dN, each its own tmpfs or a plain dir
  local dir=$1 n=$2 i
  rm -rf "$dir"; mkdir -p "$dir"
  for i in $(seq 1 "$n"); do
    mkdir -p "$dir/d$i"
    if [ "$DRIVES" = tmpfs ]; then
      mount -t tmpfs -o size=256m "minio-smoke-d$i" "$dir/d$i"
      MOUNTS+=("$dir/d$i")
    fi
  done
}
unmount_all() {
  local m
  for m in "${MOUNTS[@]}"; do umount "$m"; done
  MOUNTS=()
}
ci_env=()
[ "$DRIVES" = dirs ] && ci_env=(env MINIO_CI_CD=1)

for p in $BASE $((BASE + 1)); do port_free "$p" || fail "port $p is in use"; done
"$MINIO" --version | head -1

echo "== 1. single node, single drive"
rm -rf "$WORK/single"; mkdir -p "$WORK/single/data"
start single "$WORK/single/data" --address "127.0.0.1:$BASE" --console-address "127.0.0.1:$((BASE + 1))"
EP=http://127.0.0.1:$BASE
wait_code "$EP/minio/health/live" 200 60
wait_code "$EP/minio/health/ready" 200 30
wait_code "http://127.0.0.1:$((BASE + 1))/" 200 30
s3 "$EP" mkbucket smoke
s3 "$EP" put smoke dir/object.bin "$OBJ"
s3 "$EP" get smoke dir/object.bin "$OBJ"
s3 "$EP" delete smoke dir/object.bin
s3 "$EP" rmbucket smoke
if [ -n "$MC" ]; then
  echo "  same cycle with $("$MC" --version | head -1)"
  mcx "$EP" mb t/smoke-mc
  mcx "$EP" cp -q "$OBJ" t/smoke-mc/dir/object.bin
  mcx "$EP" cp -q t/smoke-mc/dir/object.bin "$WORK/object.back"
  cmp "$OBJ" "$WORK/object.back" || fail "mc: object read back differs"
  echo "  mc cp up/down: identical"
  mcx "$EP" rm t/smoke-mc/dir/object.bin
  mcx "$EP" rb t/smoke-mc
  rm -f "$WORK/object.back"
fi
stop_all

echo "== 2. single node, 4 drives (erasure coded), drives: $DRIVES"
make_drives "$WORK/erasure" 4
# `{1...4}` (three dots) is MinIO's own expansion, not the shell's: quote it.
"${ci_env[@]}" env MINIO_CONFIG_ENV_FILE="$ENVFILE" "$MINIO" server "$WORK/erasure/d{1...4}" \
  --address "127.0.0.1:$BASE" --console-address "127.0.0.1:$((BASE + 1))" > "$WORK/erasure.log" 2>&1 &
PIDS[erasure]=$!
echo "  started erasure (pid ${PIDS[erasure]}): minio server '$WORK/erasure/d{1...4}'"
wait_code "$EP/minio/health/live" 200 60
wait_code "$EP/minio/health/cluster" 200 60
wait_code "$EP/minio/health/cluster/read" 200 30
s3 "$EP" mkbucket smoke
s3 "$EP" put smoke dir/object.bin "$OBJ"
shards=$(find "$WORK"/erasure/d{1,2,3,4}/smoke/dir/object.bin -name part.1 | wc -l)
[ "$shards" = 4 ] || fail "expected 4 shards (part.1 on each drive), found $shards"
echo "  object striped over 4 drives: $(find "$WORK"/erasure/d{1,2,3,4}/smoke/dir/object.bin -name part.1 -printf '%s ' ) bytes per shard"
s3 "$EP" get smoke dir/object.bin "$OBJ"
s3 "$EP" delete smoke dir/object.bin
s3 "$EP" rmbucket smoke
[ -n "$MC" ] && mcx "$EP" admin info t | sed 's/^/  | /'
stop_all
unmount_all

if [ "${SKIP_DISTRIBUTED:-0}" != 1 ]; then
  echo "== 3. 4 nodes x 1 drive on 127.0.0.1, drives: $DRIVES"
  make_drives "$WORK/dist" 4
  urls=()
  for i in 1 2 3 4; do
    port_free $((BASE + 99 + i)) || fail "port $((BASE + 99 + i)) is in use"
    port_free $((BASE + 199 + i)) || fail "port $((BASE + 199 + i)) is in use"
    urls+=("http://127.0.0.1:$((BASE + 99 + i))$WORK/dist/d$i")
  done
  # Inside a container (/.dockerenv, /run/.containerenv or Kubernetes) MinIO
  # refuses endpoints that resolve to a loopback address and waits forever
  # ("127.0.0.1 resolves to localhost in a containerized deployment"); the
  # undocumented _MINIO_SERVER_LOCAL=HOST:PORT tells each node which endpoint
  # is its own. Not needed (and not set) on a plain host.
  in_container=0
  if [ -e /.dockerenv ] || [ -e /run/.containerenv ] || [ -n "${KUBERNETES_SERVICE_HOST:-}" ]; then
    in_container=1
    echo "  container detected: each node gets _MINIO_SERVER_LOCAL=127.0.0.1:PORT"
  fi
  # Every node gets the same endpoint list; each recognises its own by port.
  for i in 1 2 3 4; do
    local_env=()
    [ $in_container = 1 ] && local_env=(_MINIO_SERVER_LOCAL=127.0.0.1:$((BASE + 99 + i)))
    "${ci_env[@]}" env "${local_env[@]}" MINIO_CONFIG_ENV_FILE="$ENVFILE" "$MINIO" server "${urls[@]}" \
      --address "127.0.0.1:$((BASE + 99 + i))" --console-address "127.0.0.1:$((BASE + 199 + i))" \
      > "$WORK/node$i.log" 2>&1 &
    PIDS[node$i]=$!
    echo "  started node$i (pid ${PIDS[node$i]}) on 127.0.0.1:$((BASE + 99 + i))"
  done
  E1=http://127.0.0.1:$((BASE + 100))
  E2=http://127.0.0.1:$((BASE + 101))
  for i in 1 2 3 4; do wait_code "http://127.0.0.1:$((BASE + 99 + i))/minio/health/live" 200 60; done
  wait_code "$E1/minio/health/cluster" 200 90
  s3 "$E1" mkbucket smoke
  s3 "$E1" put smoke dir/object.bin "$OBJ"
  s3 "$E2" get smoke dir/object.bin "$OBJ"
  [ -n "$MC" ] && mcx "$E1" admin info t | sed 's/^/  | /'
  echo "  stopping node4: write quorum (3 of 4) still holds"
  stop_one node4
  sleep 2
  wait_code "$E1/minio/health/cluster" 200 30
  s3 "$E2" get smoke dir/object.bin "$OBJ"
  s3 "$E2" put smoke dir/written-with-3-nodes.bin "$OBJ"
  echo "  stopping node3: 2 of 4 drives left, read quorum only"
  stop_one node3
  wait_code "$E1/minio/health/cluster" 503 60
  wait_code "$E1/minio/health/cluster/read" 200 30
  s3 "$E1" get smoke dir/object.bin "$OBJ"
  s3 "$E1" get smoke dir/written-with-3-nodes.bin "$OBJ"
  stop_all
  unmount_all
fi

left=$(pgrep -x minio -u "$(id -u)" | wc -l || true)
echo "smoke.sh: all checks passed; minio processes left by this user: $left"
