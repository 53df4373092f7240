#!/usr/bin/env bash
# Starts the machine's PostgreSQL and Redis if they are down (the commands are this machine's own;
# see README "Tests"). Idempotent; prints what it did.
set -euo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! up 5432; then
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
fi
if ! up 6379; then
  echo "services: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
for _ in $(seq 1 30); do
  if up 5432 && up 6379; then exit 0; fi
  sleep 1
done
echo "services: PostgreSQL or Redis did not come up" >&2
exit 1
