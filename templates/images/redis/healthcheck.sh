#!/bin/sh
# Healthy when the server answers PING on loopback at the configured port. With requirepass set
# and no password given, the answer is NOAUTH: that too proves the server is up and serving.
port=$(sed -n 's/^[[:space:]]*port[[:space:]]\{1,\}\([0-9][0-9]*\).*/\1/p' /etc/redis/redis.conf | tail -n 1)
out=$(redis-cli -h 127.0.0.1 -p "${port:-6379}" ping 2>&1) || true
case "$out" in
  PONG|NOAUTH*) exit 0 ;;
  *) echo "$out"; exit 1 ;;
esac
