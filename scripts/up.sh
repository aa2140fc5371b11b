#!/usr/bin/env bash
# Command (a): set everything up and run the all-in-one cloud.
#   scripts/up.sh [--host 127.0.0.1] [--port 8080]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
setup_python "[clients]"
setup_docker
apt_install busybox-static debootstrap # the demo image; `dockyard image build docker-host`
exec "$VENV/bin/dockyard" up "$@"
