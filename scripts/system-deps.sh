#!/usr/bin/env bash
# Debian packages the tests use: PostgreSQL (throwaway servers started by the test session),
# Chromium for the dashboard's browser tests, nginx, Redis and openssl for the deployment tests
# (each started by the tests themselves on free loopback ports). Node.js 20+ comes with the machine (Debian 12's
# nodejs is 18, too old for Vite 7), so it is checked, not installed, by scripts/dashboard.sh.
# Installs only what is missing; needs root (CI runs as root).
set -euo pipefail
need=()
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || need+=(postgresql)
command -v runuser >/dev/null || need+=(util-linux)
command -v chromium >/dev/null || need+=(chromium fonts-dejavu-core)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v redis-server >/dev/null || need+=(redis-server)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${need[*]} (run: sudo apt-get install ${need[*]})" >&2
    exit 2
  fi
  # The tests start their own PostgreSQL, Redis and nginx on free ports: keep the packages'
  # services from starting at install (they would hold ports 80, 5432 and 6379, and a failed
  # start in a container without init would fail the install).
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  trap '[ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "system packages ready"
