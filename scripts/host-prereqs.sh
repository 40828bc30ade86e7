#!/usr/bin/env bash
# Installs what this machine needs to run imctl's sandbox: podman (Debian's),
# runc, debootstrap, and a podman configuration that works on VMs without
# cgroup v2 / CAP_SYS_RESOURCE. Idempotent; needs root.
set -euo pipefail

# command -> Debian package that provides it
declare -A pkg=([podman]=podman [runc]=runc [debootstrap]=debootstrap [curl]=curl [ssh-keygen]=openssh-client [ssh-agent]=openssh-client [tar]=tar [socat]=socat [openssl]=openssl)
need=()
for bin in "${!pkg[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || need+=("${pkg[$bin]}")
done
if [ "${#need[@]}" -gt 0 ]; then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  echo "host-prereqs: installing ${need[*]} from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

conf=/etc/containers/containers.conf
if ! grep -q 'imctl' "$conf" 2>/dev/null; then
  mkdir -p /etc/containers
  # crun fails on hybrid cgroups here and the default ulimits need CAP_SYS_RESOURCE.
  cat >"$conf" <<'CONF'
# written by imctl scripts/host-prereqs.sh
[containers]
default_ulimits = []
[engine]
runtime = "runc"
CONF
fi

# The Docker-compatible API that imctl's sandbox talks to (dockerode).
sock=/run/podman/podman.sock
if ! curl -sf --unix-socket "$sock" http://d/v1.41/version >/dev/null 2>&1; then
  mkdir -p /run/podman
  nohup podman system service --time=0 "unix://$sock" >/var/log/imctl-podman-service.log 2>&1 &
  for _ in $(seq 1 50); do
    curl -sf --unix-socket "$sock" http://d/v1.41/version >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -sf --unix-socket "$sock" http://d/v1.41/version >/dev/null
fi
echo "host-prereqs: podman API ready at $sock"
