#!/usr/bin/env bash
# Installs PostgreSQL from Debian's packages (when missing), starts it on loopback and
# prints the test database URL. Used by .ci/run for the feedback-store tests.
set -euo pipefail
if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
  echo "installing postgresql" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk '{print $1"/"$2}' | grep -qx "${version}/main"; then
  pg_createcluster "$version" main >&2
fi
# Loopback only (Debian's postgresql.conf includes conf.d/).
pg_conftool "$version" main remove listen_addresses >&2 || true
echo "listen_addresses = '127.0.0.1'" > "/etc/postgresql/${version}/main/conf.d/crs-cds-loopback.conf"
pg_ctlcluster "$version" main start >&2 || pg_ctlcluster "$version" main status >&2
port=$(pg_conftool -s "$version" main show port 2>/dev/null || echo 5432)
for _ in $(seq 1 30); do
  pg_isready -h 127.0.0.1 -p "$port" -q && break
  sleep 1
done
su postgres -c "psql -p $port -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='crs_cds'\"" | grep -q 1 ||
  su postgres -c "psql -p $port -qc \"CREATE ROLE crs_cds LOGIN PASSWORD 'crs_cds_ci'\"" >&2
su postgres -c "psql -p $port -qtAc \"SELECT 1 FROM pg_database WHERE datname='crs_cds_test'\"" | grep -q 1 ||
  su postgres -c "createdb -p $port -O crs_cds crs_cds_test" >&2
echo "postgres://crs_cds:crs_cds_ci@127.0.0.1:${port}/crs_cds_test"
