#!/usr/bin/env bash
# Makes sure a Redis answers on 127.0.0.1:6379, starting a throwaway one if none does.
set -euo pipefail
if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  echo "redis already answers on 127.0.0.1:6379"
  exit 0
fi
if ! command -v redis-server >/dev/null; then
  apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
fi
dir="$(mktemp -d)"
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
  --dir "$dir" --logfile "$dir/redis.log"
for _ in $(seq 1 50); do
  if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
    echo "started redis on 127.0.0.1:6379"
    exit 0
  fi
  sleep 0.1
done
echo "redis did not start; log:" >&2
cat "$dir/redis.log" >&2
exit 1
