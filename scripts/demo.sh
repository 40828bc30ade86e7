#!/usr/bin/env bash
# The main job, from a fresh machine: install what is needed, build imctl, start
# a 3-host sandbox on this machine's container engine, install the reference
# cluster (PostgreSQL, Redis, ejabberd) onto it, and print its health report.
# Re-running it rebuilds the sandbox from scratch. Needs root (podman, apt).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/host-prereqs.sh
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent

imctl() { node bin/run.js "$@"; }
imctl sandbox destroy --name demo >/dev/null
imctl sandbox create --name demo --hosts 3
imctl install -c sandbox/demo/cluster.yaml
imctl health -c sandbox/demo/cluster.yaml
echo
echo "The sandbox stays up: try 'node bin/run.js plan -c sandbox/demo/cluster.yaml'."
echo "Remove it with 'node bin/run.js sandbox destroy --name demo'."
