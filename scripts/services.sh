#!/usr/bin/env bash
# Starts the machine's PostgreSQL and Redis if they are down (the commands are this machine's own;
# see README "Tests"), and installs Debian's Chromium for the browser test when it is missing.
# Idempotent; prints what it did.
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
# Chromium for the browser test (tests/e2e/test_sandbox_browser.py): Debian's package, which
# Playwright drives at /usr/bin/chromium (never `playwright install`, a download of its own), and
# an emoji font so the bot's ✅ ⏱ 🛠 show in its screenshots. Without it the test fails, naming it.
if [ ! -x /usr/bin/chromium ]; then
  echo "services: installing Chromium (Debian's chromium, for the browser test)"
  as_root=()
  if [ "$(id -u)" != 0 ]; then as_root=(sudo -n); fi
  apt_install() {
    DEBIAN_FRONTEND=noninteractive ${as_root[@]+"${as_root[@]}"} apt-get install -y -q \
      --no-install-recommends chromium fonts-noto-color-emoji >/dev/null
  }
  # A fresh machine may have no package lists yet.
  apt_install || { ${as_root[@]+"${as_root[@]}"} apt-get update -q >/dev/null && apt_install; } ||
    echo "services: could not install chromium (apt-get install chromium, as root)" >&2
fi

for _ in $(seq 1 30); do
  if up 5432 && up 6379; then exit 0; fi
  sleep 1
done
echo "services: PostgreSQL or Redis did not come up" >&2
exit 1
