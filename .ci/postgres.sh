#!/usr/bin/env bash
# Start a local PostgreSQL server for the backend tests and print the URI to use (or nothing).
# Installs Debian's postgresql when missing. Loopback/unix socket only.
set -u
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null 2>&1 || exit 0
fi
cluster=$(pg_lsclusters -h 2>/dev/null | head -n 1)
if [ -z "$cluster" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  pg_createcluster "$version" main >/dev/null 2>&1 || exit 0
  cluster=$(pg_lsclusters -h | head -n 1)
fi
set -- $cluster
pg_ctlcluster "$1" "$2" start >/dev/null 2>&1 || true
su postgres -c "psql -qc 'CREATE ROLE root SUPERUSER LOGIN'" >/dev/null 2>&1 || true
su postgres -c "createdb -O root epochline_test" >/dev/null 2>&1 || true
uri="postgresql://root@/epochline_test?host=/var/run/postgresql&port=$3"
psql "postgresql://root@/epochline_test?host=/var/run/postgresql&port=$3" -qc "select 1" >/dev/null 2>&1 && echo "$uri"
exit 0
