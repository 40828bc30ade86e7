#!/bin/sh
# imctl Redis 7 entrypoint: redis-server in the foreground as PID 1, as user redis.
#   - as root: make the directories Debian's unit makes (/run/redis) or the package made
#     (/var/log/redis), give the config file and the data volume to redis, re-run as redis;
#   - as redis: exec redis-server on imctl's /etc/redis/redis.conf, overriding the three
#     settings that only make sense under systemd, so that logs go to stdout.
# Arguments are passed to redis-server (e.g. `--loglevel debug`); an argument that does not
# start with "-" is run as a command instead (e.g. `bash` for debugging).
set -eu

CONF=/etc/redis/redis.conf
DATA=/var/lib/redis

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
  install -d -o redis -g redis -m 2755 /run/redis
  install -d -o redis -g adm -m 2750 /var/log/redis
  if [ ! -f "$CONF" ]; then
    echo "imctl-entrypoint: $CONF is missing: put the config into the container before starting it" >&2
    exit 1
  fi
  # Files put in by `docker cp`/putArchive arrive owned by root; the config holds the password.
  chown redis:redis "$CONF"
  chmod 0640 "$CONF"
  mkdir -p "$DATA"
  if [ "$(stat -c %u:%g "$DATA")" != "$(id -u redis):$(id -g redis)" ]; then
    chown -R redis:redis "$DATA"
  fi
  chmod 0750 "$DATA"
  exec setpriv --reuid=redis --regid=redis --init-groups \
    env HOME="$DATA" USER=redis LOGNAME=redis "$0" "$@"
fi

# As Debian's unit (UMask=007): no file of the server's is world-readable.
umask 007
exec /usr/bin/redis-server "$CONF" --supervised no --daemonize no --logfile "" "$@"
