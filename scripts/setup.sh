#!/usr/bin/env bash
# Shared setup for scripts/up.sh and scripts/test.sh: Python venv, dockyard, a Docker engine.
# Safe to run again: every step checks before it acts. Needs root on a fresh machine (apt).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DOCKYARD_VENV:-$ROOT/.venv}"
STATE="${DOCKYARD_RUN_DIR:-/var/lib/dockyard-run}"
mkdir -p "$STATE"

say() { echo "[setup] $*" >&2; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  if [ ! -f "$STATE/apt-updated" ]; then
    apt-get update -qq
    touch "$STATE/apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

find_python() {
  for py in python3.11 python3.12 python3.13 python3; do
    if command -v "$py" >/dev/null 2>&1 &&
      "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$py"
      return 0
    fi
  done
  return 1
}

setup_python() {
  local extras="$1"
  local py
  if ! py="$(find_python)"; then
    apt_install python3 python3-venv python3-pip
    py="$(find_python)" || { say "Python 3.11+ is required"; exit 1; }
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    if ! "$py" -m venv "$VENV" 2>/dev/null; then
      rm -rf "$VENV"
      apt_install python3-venv
      "$py" -m venv "$VENV"
    fi
  fi
  local stamp="$VENV/.dockyard-installed$extras"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    say "installing dockyard$extras into $VENV"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -e "$ROOT$extras"
    touch "$stamp"
  fi
}

docker_answers() { timeout 10 docker info >/dev/null 2>&1; }

setup_docker() {
  if docker_answers; then
    return 0
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    apt_install docker.io iptables
  fi
  command -v docker >/dev/null 2>&1 || apt_install docker.io
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    systemctl start docker || true
  fi
  if ! docker_answers; then
    say "starting dockerd (log: $STATE/dockerd.log)"
    # its own session: Ctrl-C on the cloud (or CI stopping a job) must not take dockerd down
    setsid nohup dockerd >"$STATE/dockerd.log" 2>&1 < /dev/null &
  fi
  for _ in $(seq 1 60); do
    docker_answers && return 0
    sleep 1
  done
  say "the Docker engine did not come up; see $STATE/dockerd.log"
  exit 1
}
