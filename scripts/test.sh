#!/usr/bin/env bash
# Installs everything the test suite needs (venv, Python packages, Debian's chromium,
# prometheus, prometheus-alertmanager and etcd-server for the browser and real-tool tests), runs ruff and
# mypy, then the whole suite. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'

MISSING=""
command -v chromium >/dev/null 2>&1 || MISSING="$MISSING chromium"
# prometheus + promtool for the rule and real-Prometheus tests; Debian names the Alertmanager
# binary prometheus-alertmanager (amtool keeps its name)
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || MISSING="$MISSING prometheus"
{ { command -v alertmanager || command -v prometheus-alertmanager; } && command -v amtool; } >/dev/null 2>&1 \
    || MISSING="$MISSING prometheus-alertmanager"
# etcd (server) for the real-etcd source tests; etcdctl is not needed
command -v etcd >/dev/null 2>&1 || MISSING="$MISSING etcd-server"
if [ -n "$MISSING" ]; then
    echo "installing Debian's$MISSING for the browser and real-tool (Prometheus, Alertmanager, etcd) tests..." >&2
    if [ "$(id -u)" = "0" ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086 # MISSING is a list of package names
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $MISSING >/dev/null
fi

# lint and types first (configured in pyproject.toml; mypy is strict on raftctl/core)
.venv/bin/ruff check .
.venv/bin/mypy

exec .venv/bin/python -m pytest -n 2 "$@"
