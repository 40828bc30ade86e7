#!/usr/bin/env bash
# fetch.sh VERSION OUTDIR
#
# Pulls the runtime jars of an Apache Kafka 4.x broker (KRaft) plus its storage
# and command-line tools from Maven Central into OUTDIR/libs, writes
# OUTDIR/SHA256SUMS (one line per jar, `sha256sum -c` format, paths relative
# to OUTDIR) and OUTDIR/VERSION, copies log4j2.properties (broker) and
# tools-log4j2.properties (CLI tools) to OUTDIR/config/, and prints the jar
# count and total size.
#
# Maven runs in batch mode with its own local repository, OUTDIR/.m2 by
# default (set MAVEN_REPO_LOCAL=/path to share one between versions), so the
# result does not depend on ~/.m2. Re-running is idempotent: libs/ is rebuilt
# from scratch (no stale jars of another version), downloads are cached in the
# local repository. MAVEN_OFFLINE=1 adds -o (works once the repo is warm).
# -C (strict checksums): a download whose .sha1 from the registry does not
# match fails the fetch instead of a warning.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 VERSION OUTDIR   (e.g. $0 4.4.0 /tmp/kafka-4.4.0)" >&2
  exit 2
fi
VERSION=$1
OUTDIR=$2
case "$VERSION" in
  4.*) ;;
  *) echo "fetch.sh: only Kafka 4.x (KRaft) is supported, got '$VERSION'" >&2; exit 2 ;;
esac

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
REPO=${MAVEN_REPO_LOCAL:-$OUTDIR/.m2}
OFFLINE=()
[ "${MAVEN_OFFLINE:-0}" = 1 ] && OFFLINE=(-o)

STAGE=$OUTDIR/.libs.tmp
rm -rf "$STAGE"
start=$(date +%s)
mvn -B -q -C "${OFFLINE[@]}" -Dstyle.color=never \
  -f "$HERE/pom.xml" \
  -Dmaven.repo.local="$REPO" \
  -Dkafka.version="$VERSION" \
  dependency:copy-dependencies \
  -DincludeScope=runtime \
  -DoutputDirectory="$STAGE" 2>&1 | sed 's/\x1b\[[0-9;]*m//g'
# (Debian's Maven 3.8.7 prints bare ESC[0m resets even in -B -q mode: stripped.)
end=$(date +%s)

# Sanity: the broker jar of the requested version must be there.
if [ ! -f "$STAGE/kafka_2.13-$VERSION.jar" ] || [ ! -f "$STAGE/kafka-tools-$VERSION.jar" ]; then
  echo "fetch.sh: kafka_2.13-$VERSION.jar or kafka-tools-$VERSION.jar missing after Maven" >&2
  exit 1
fi

rm -rf "$OUTDIR/libs"
mv "$STAGE" "$OUTDIR/libs"
mkdir -p "$OUTDIR/config"
cp "$HERE/log4j2.properties" "$HERE/tools-log4j2.properties" "$OUTDIR/config/"
echo "$VERSION" > "$OUTDIR/VERSION"
(cd "$OUTDIR" && LC_ALL=C sha256sum libs/*.jar > SHA256SUMS)

count=$(ls "$OUTDIR"/libs/*.jar | wc -l)
bytes=$(cat "$OUTDIR"/libs/*.jar | wc -c)
echo "kafka $VERSION: $count jars, $bytes bytes ($(du -sh "$OUTDIR/libs" | cut -f1)) in $OUTDIR/libs; maven took $((end - start)) s"
