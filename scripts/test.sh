#!/usr/bin/env bash
# Every test, from a fresh machine: installs what the tests need (podman from
# Debian, npm packages), then runs the unit tests and the end-to-end tests on
# real sandbox hosts. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/host-prereqs.sh
npm ci --no-audit --no-fund --loglevel=error
npm test
