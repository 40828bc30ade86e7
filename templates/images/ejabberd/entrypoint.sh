#!/bin/sh
# imctl ejabberd 23.01 entrypoint.
#   - as root: make /run/ejabberd, give imctl's ejabberd.yml to ejabberd (0600), make sure a
#     certificate is at /etc/ejabberd/ejabberd.pem (imctl's own if it put one there; otherwise a
#     self-signed one kept in the volume, made once), give the volume to ejabberd, re-run as ejabberd;
#   - as ejabberd: start epmd (Debian's unit gets it from epmd.socket), run
#     `ejabberdctl foreground` and stay as PID 1 to turn SIGTERM/SIGINT into a clean stop of
#     the Erlang node (ejabberdctl is a shell script: it would not pass signals on).
# An argument that does not start with "-" is run as a command instead (e.g. `bash`).
set -eu

CONF=/etc/ejabberd/ejabberd.yml
PEM=/etc/ejabberd/ejabberd.pem
SPOOL=/var/lib/ejabberd
SELFSIGNED=$SPOOL/imctl-selfsigned.pem

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
  install -d -o ejabberd -g ejabberd -m 0755 /run/ejabberd
  install -d -o ejabberd -g adm -m 2750 /var/log/ejabberd
  if [ ! -f "$CONF" ]; then
    echo "imctl-entrypoint: $CONF is missing: put the config into the container before starting it" >&2
    exit 1
  fi
  # Files put in by `docker cp`/putArchive arrive owned by root; the config holds passwords.
  chown ejabberd:ejabberd "$CONF"
  chmod 0600 "$CONF"
  mkdir -p "$SPOOL"
  if [ "$(stat -c %u:%g "$SPOOL")" != "$(id -u ejabberd):$(id -g ejabberd)" ]; then
    chown -R ejabberd:ejabberd "$SPOOL"
  fi
  chmod 0700 "$SPOOL"
  if [ ! -s "$PEM" ]; then
    if [ ! -s "$SELFSIGNED" ]; then
      # For the first domain in the config (and its subdomains: conference., pubsub., ...).
      domain=$(awk '/^hosts:/ {h = 1; next}
                    h && /^[[:space:]]*-/ {sub(/^[[:space:]]*-[[:space:]]*/, ""); gsub(/["\047[:space:]]/, ""); print; exit}
                    h && /^[^[:space:]#]/ {exit}' "$CONF")
      domain=${domain:-localhost}
      echo "imctl-entrypoint: no $PEM: making a self-signed certificate for $domain (kept in the volume)" >&2
      umask 077
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$domain" \
        -addext "subjectAltName=DNS:$domain,DNS:*.$domain" \
        -keyout "$SELFSIGNED.tmp" -out "$SELFSIGNED.crt.tmp" 2>/dev/null
      cat "$SELFSIGNED.crt.tmp" >> "$SELFSIGNED.tmp"
      rm -f "$SELFSIGNED.crt.tmp"
      chown ejabberd:ejabberd "$SELFSIGNED.tmp"
      mv "$SELFSIGNED.tmp" "$SELFSIGNED"
      umask 022
    fi
    cp "$SELFSIGNED" "$PEM"
  fi
  # As Debian's preinst/postinst leave it: readable by ejabberd, not by the world.
  chown root:ejabberd "$PEM"
  chmod 0640 "$PEM"
  exec setpriv --reuid=ejabberd --regid=ejabberd --init-groups \
    env HOME="$SPOOL" USER=ejabberd LOGNAME=ejabberd "$0" "$@"
fi

cd "$SPOOL"
# The same settings ejabberdctl reads (ERL_EPMD_ADDRESS keeps epmd on loopback).
# shellcheck disable=SC1091
. /etc/default/ejabberd
export ERL_EPMD_ADDRESS
/usr/bin/epmd -daemon

/usr/sbin/ejabberdctl foreground "$@" &
child=$!

# ejabberdctl's child is the Erlang VM (erl execs beam.smp); on SIGTERM the VM runs
# init:stop(), which stops ejabberd and mnesia cleanly.
stop() {
  vm=$(pgrep -P "$child" || true)
  if [ -n "$vm" ]; then kill -TERM $vm 2>/dev/null || true; else kill -TERM "$child" 2>/dev/null || true; fi
}
trap stop TERM INT

rc=0
while :; do
  wait "$child" && rc=0 || rc=$?
  kill -0 "$child" 2>/dev/null || break
done
exit "$rc"
