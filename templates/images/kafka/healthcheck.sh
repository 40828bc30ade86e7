#!/bin/bash
# Healthy when the broker accepts connections on its client listener (the CLIENT port of
# `listeners=` in server.properties): a KRaft node opens it once it has joined the quorum.
port=$(sed -n 's/^listeners=.*CLIENT:\/\/[^,]*:\([0-9][0-9]*\).*/\1/p' /etc/kafka/server.properties | tail -n 1)
if timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "${port:-9092}" 2>/dev/null; then exit 0; fi
echo "nothing accepts connections on 127.0.0.1:${port:-9092}"
exit 1
