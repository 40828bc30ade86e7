#!/bin/sh
# imctl MinIO entrypoint: `minio server` in the foreground as PID 1, as minio-user.
#   - as root: give imctl's env file (root credentials) to minio-user (0600), give every drive
#     of MINIO_VOLUMES (each a volume of its own) to minio-user, re-run as minio-user;
#   - as minio-user: exec `minio server` with the S3 API on :9000 and the console on :9001 (as
#     flags: MinIO ignores addresses in its env file) and the drives; MinIO reads the
#     credentials from the file itself (MINIO_CONFIG_ENV_FILE), so they are never in argv.
# Arguments starting with "-" go to `minio server`; any other argument is run as a command instead.
set -eu

ENV_FILE=/etc/default/imctl-minio
MINIO=/opt/imctl/minio/minio

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi

if [ ! -f "$ENV_FILE" ]; then
  echo "imctl-entrypoint: $ENV_FILE is missing: put it into the container before starting it" >&2
  exit 1
fi
# The drives (the file is read, not run: it holds the credentials, which stay out of this shell).
volumes=$(sed -n 's/^MINIO_VOLUMES="\{0,1\}\([^"]*\)"\{0,1\}[[:space:]]*$/\1/p' "$ENV_FILE" | tail -n 1)
if [ -z "$volumes" ]; then
  echo "imctl-entrypoint: $ENV_FILE sets no MINIO_VOLUMES" >&2
  exit 1
fi

if [ "$(id -u)" = 0 ]; then
  chown minio-user:minio-user "$ENV_FILE"
  chmod 0600 "$ENV_FILE"
  for d in $volumes; do
    mkdir -p "$d"
    if [ "$(stat -c %u:%g "$d")" != "$(id -u minio-user):$(id -g minio-user)" ]; then
      chown -R minio-user:minio-user "$d"
    fi
    chmod 0750 "$d"
  done
  exec setpriv --reuid=minio-user --regid=minio-user --init-groups \
    env HOME=/var/lib/minio USER=minio-user LOGNAME=minio-user "$0" "$@"
fi

# shellcheck disable=SC2086 # one word per drive
exec env MINIO_CONFIG_ENV_FILE="$ENV_FILE" "$MINIO" server --address :9000 --console-address :9001 "$@" $volumes
