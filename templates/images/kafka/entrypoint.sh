#!/bin/sh
# imctl Kafka entrypoint: one KRaft node (broker and controller) in the foreground as PID 1.
#   - as root: give imctl's config files to kafka (server.properties and the format argument
#     file hold passwords), give the data volume to kafka, re-run as kafka;
#   - as kafka: format the storage once, only when the volume has no meta.properties (a
#     formatted node is never formatted again: that would erase its data), then exec the broker.
# The SCRAM passwords for the format are in a Java argument file (0600) that imctl puts into the
# container: `java @FILE` reads them, so they are never in argv or the environment.
# Arguments starting with "-" go to the JVM; any other argument is run as a command instead.
set -eu

HOME_DIR=/opt/imctl/kafka
CONF=/etc/kafka/server.properties
FORMAT_ARGS=/etc/kafka/imctl-format.args
DATA=/var/lib/kafka/data

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
  if [ ! -f "$CONF" ]; then
    echo "imctl-entrypoint: $CONF is missing: put the config into the container before starting it" >&2
    exit 1
  fi
  # Files put in by `docker cp`/putArchive arrive owned by root.
  chown root:kafka /etc/kafka
  chmod 0750 /etc/kafka
  for f in /etc/kafka/*.properties; do chown root:kafka "$f"; chmod 0640 "$f"; done
  if [ -f "$FORMAT_ARGS" ]; then chown kafka:kafka "$FORMAT_ARGS"; chmod 0600 "$FORMAT_ARGS"; fi
  mkdir -p "$DATA"
  if [ "$(stat -c %u:%g "$DATA")" != "$(id -u kafka):$(id -g kafka)" ]; then
    chown -R kafka:kafka "$DATA"
  fi
  chmod 0750 "$DATA"
  exec setpriv --reuid=kafka --regid=kafka --init-groups \
    env HOME=/var/lib/kafka USER=kafka LOGNAME=kafka "$0" "$@"
fi

if [ ! -f "$DATA/meta.properties" ]; then
  if [ ! -f "$FORMAT_ARGS" ]; then
    echo "imctl-entrypoint: $DATA is not formatted and $FORMAT_ARGS is missing: put it into the container before starting it" >&2
    exit 1
  fi
  echo "imctl-entrypoint: formatting the storage in $DATA (no meta.properties yet)" >&2
  # Its stdout lists the bootstrap records, the SCRAM users' salted keys among them: not for the log.
  /usr/bin/java @"$FORMAT_ARGS" >/dev/null
  echo "imctl-entrypoint: formatted: $DATA/meta.properties written" >&2
fi

exec /usr/bin/java -Xms256m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
  -Dlog4j2.configurationFile=/etc/kafka/log4j2.properties "$@" \
  -cp "$HOME_DIR/libs/*" kafka.Kafka "$CONF"
