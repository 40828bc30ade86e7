#!/bin/sh
# Healthy when MinIO answers /minio/health/cluster on :9000: the server is up and has write
# quorum on its drives (/minio/health/live answers even when no drive is usable). mc asks
# anonymously, with a throwaway config dir.
d=$(mktemp -d) || exit 1
MC_HOST_node=http://127.0.0.1:9000 timeout 8 /opt/imctl/minio/mc --config-dir "$d" ready --json node >/dev/null 2>&1
rc=$?
rm -rf "$d"
[ "$rc" = 0 ] && exit 0
echo "MinIO on 127.0.0.1:9000 does not answer /minio/health/cluster with 200"
exit 1
