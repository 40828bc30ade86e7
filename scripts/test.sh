#!/usr/bin/env bash
# Every test, from a fresh machine: installs what the tests need (podman from
# Debian, npm packages), then runs the unit tests and the end-to-end tests on
# real sandbox hosts. Needs root.
#
# The Kafka jars and the MinIO build (about 5 minutes cold) go into imctl's
# artifact cache in the background, at low priority, while the tests that do
# not need them run; the tests that install Kafka or MinIO run once it is done.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/host-prereqs.sh
npm ci --no-audit --no-fund --loglevel=error
npm run build

fetch_log=$(mktemp)
# (Kafka 4.3.1 too: the Kafka upgrade test starts from it.)
{ nice -n 15 node bin/run.js artifacts fetch --release ejabberd-23.01-debian12 \
    && nice -n 15 node bin/run.js artifacts fetch --release ejabberd-23.01-debian12-kafka43; } >"$fetch_log" 2>&1 &
fetch_pid=$!

npm run test:unit
# Three e2e files at a time: each has its own sandbox hosts, names and ports, and most
# of their time is spent waiting on hosts (apt, JVM and service starts), not on CPU.
e2e=(node --import tsx --test --test-reporter=spec --test-concurrency=3)
# Tests that install Kafka or MinIO need the artifacts: every other e2e file runs first.
# Each list is longest first, so that the last file to start is a short one.
late=(test/e2e/backup.test.ts test/e2e/backup-deep.test.ts test/e2e/archive.test.ts test/e2e/offline.test.ts test/e2e/engine.test.ts test/e2e/backup-engine.test.ts test/e2e/minio.test.ts)
# The Kafka rolling upgrade with a producer and a consumer running throughout takes
# about 9 minutes on its own; it runs with IMCTL_E2E_LONG=1 (CI's 30 minutes would not hold it).
long=(test/e2e/upgrade-kafka.test.ts)
[ "${IMCTL_E2E_LONG:-0}" = 1 ] && late+=("${long[@]}")
early=(test/e2e/patroni.test.ts test/e2e/upgrade.test.ts test/e2e/mixed.test.ts)
for f in test/e2e/*.test.ts; do [[ " ${late[*]} ${long[*]} ${early[*]} " == *" $f "* ]] || early+=("$f"); done
"${e2e[@]}" "${early[@]}"

if ! wait "$fetch_pid"; then
  echo "test.sh: imctl artifacts fetch failed:" >&2
  tail -n 50 "$fetch_log" >&2
  exit 1
fi
tail -n 5 "$fetch_log"
"${e2e[@]}" "${late[@]}"
