#!/usr/bin/env bash
# Command (b): set everything up and run the whole test suite (lint included).
#   scripts/test.sh [pytest args...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
setup_python "[test]"
setup_docker
apt_install busybox-static postgresql docker-registry iproute2 debootstrap

# PostgreSQL: start the Debian cluster and make a role the tests may create databases with.
if ! pg_lsclusters -h 2>/dev/null | grep -q online; then
  cluster="$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')"
  if [ -z "$cluster" ]; then
    version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
    pg_createcluster "$version" main >/dev/null
    cluster="$version main"
  fi
  say "starting PostgreSQL cluster $cluster"
  # shellcheck disable=SC2086
  pg_ctlcluster $cluster start
fi
port="$(pg_lsclusters -h | awk '$4 == "online" {print $3; exit}')"
su postgres -c "psql -q -p $port -tAc \"SELECT 1 FROM pg_roles WHERE rolname='dockyard'\"" | grep -q 1 ||
  su postgres -c "psql -q -p $port -c \"CREATE ROLE dockyard LOGIN CREATEDB PASSWORD 'dockyard'\""
export DOCKYARD_TEST_PG_URL="postgresql://dockyard:dockyard@127.0.0.1:$port/postgres"
export DOCKYARD_TEST_REQUIRE_PG=1
export DOCKYARD_TEST_REQUIRE_DOCKER=1

cd "$ROOT"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
exec "$VENV/bin/pytest" -q "$@"
