#!/usr/bin/env bash
# Install the peers bench/backup_restore.py compares the product with: the aws CLI (PyPI
# `awscli`, into a private venv, not the project's lock) and rclone (Debian `rclone`).
# Idempotent. The bench writes the peers' config files (0600) itself, for the gateway it
# starts; nothing here holds a key.
#
#   bash bench/setup.sh          # or: make bench-deps
#
# BENCH_TOOLS_DIR (default ~/.cache/database-backup-bench) is where the awscli venv goes;
# the bench looks for $BENCH_TOOLS_DIR/awscli/bin/aws first, then `aws` on PATH.
set -euo pipefail

tools="${BENCH_TOOLS_DIR:-$HOME/.cache/database-backup-bench}"
export PATH="$HOME/.local/bin:$PATH"

if ! command -v rclone >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends rclone
fi

if [ ! -x "$tools/awscli/bin/aws" ]; then
    mkdir -p "$tools"
    uv venv --quiet --python 3 "$tools/awscli"
    uv pip install --quiet --python "$tools/awscli/bin/python" awscli
fi

echo "rclone: $(rclone version 2>/dev/null | head -n 1)"
echo "aws:    $("$tools/awscli/bin/aws" --version 2>&1)"
