#!/bin/sh
# imctl PostgreSQL 15 entrypoint (Debian layout, server in the foreground as PID 1).
#   - as root: make /var/run/postgresql, give imctl's config files and the data volume to
#     postgres, make a snakeoil TLS pair if the container has none, then re-run as postgres;
#   - as postgres: initdb an empty data directory (configuration stays in /etc), exec postgres.
# Arguments are passed to postgres (e.g. `-c log_min_messages=debug1`); an argument that
# does not start with "-" is run as a command instead (e.g. `bash` for debugging).
set -eu

PGBIN=/usr/lib/postgresql/15/bin
PGDATA=/var/lib/postgresql/15/main
PGCONF=/etc/postgresql/15/main

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  # Files put in by `docker cp`/putArchive arrive owned by root; postgres must read them.
  chown -R postgres:postgres "$PGCONF"
  chmod 0640 "$PGCONF/pg_hba.conf" "$PGCONF/pg_ident.conf"
  mkdir -p "$PGDATA"
  if [ "$(stat -c %u:%g "$PGDATA")" != "$(id -u postgres):$(id -g postgres)" ]; then
    chown -R postgres:postgres "$PGDATA"
  fi
  chmod 0700 "$PGDATA"
  if [ ! -s /etc/ssl/private/ssl-cert-snakeoil.key ] || [ ! -s /etc/ssl/certs/ssl-cert-snakeoil.pem ]; then
    DEBIAN_FRONTEND=noninteractive make-ssl-cert generate-default-snakeoil --force-overwrite
  fi
  exec setpriv --reuid=postgres --regid=postgres --init-groups \
    env HOME=/var/lib/postgresql USER=postgres LOGNAME=postgres "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -n "$(ls -A "$PGDATA")" ]; then
    echo "imctl-entrypoint: $PGDATA is not empty but holds no cluster (no PG_VERSION); refusing to initialise over it" >&2
    exit 1
  fi
  echo "imctl-entrypoint: initialising an empty data directory $PGDATA" >&2
  "$PGBIN/initdb" -D "$PGDATA" --auth-local=peer --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8
  # Debian layout: the configuration lives in $PGCONF (put there by imctl), not in the data directory.
  rm -f "$PGDATA/postgresql.conf" "$PGDATA/pg_hba.conf" "$PGDATA/pg_ident.conf"
fi

exec "$PGBIN/postgres" -D "$PGDATA" -c config_file="$PGCONF/postgresql.conf" "$@"
