#!/bin/sh
# Healthy when the server accepts connections on its unix socket, at the port the config sets
# (conf.d overrides postgresql.conf; the last setting wins). Asks as postgres (peer), so the
# check does not log a failed login for "root" each time it runs.
port=$(cat /etc/postgresql/15/main/postgresql.conf /etc/postgresql/15/main/conf.d/*.conf 2>/dev/null \
  | sed -n "s/^[[:space:]]*port[[:space:]]*=[[:space:]]*'\{0,1\}\([0-9][0-9]*\).*/\1/p" | tail -n 1)
set -- pg_isready -q -h /var/run/postgresql -p "${port:-5432}" -U postgres -d postgres
if [ "$(id -u)" = 0 ]; then
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$@"
fi
exec "$@"
