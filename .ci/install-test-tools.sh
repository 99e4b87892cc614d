#!/usr/bin/env bash
# Installs what the picture tests drive: Graphviz (`dot`) and headless Chromium, with a font.
# Idempotent: does nothing when both are already on PATH. Needs root and Debian's apt.
set -euo pipefail

if command -v dot >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1; then
    echo "graphviz and chromium are installed"
    exit 0
fi

apt-get update
apt-get install -y --no-install-recommends graphviz chromium fonts-dejavu-core
