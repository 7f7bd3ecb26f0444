#!/usr/bin/env bash
# Install what the tests and the demo need on a fresh Debian/Ubuntu machine:
# uv (Python env manager), a real MariaDB server with its backup tools, Ceph's RADOS
# Gateway (a real S3 endpoint on loopback), zstd, promtool (checks the alert rules) and
# procps (the tests find and stop their servers with pgrep/pkill).
# Idempotent: does nothing when all of it is present.
set -euo pipefail

need_apt=()
for cmd in mariadbd:mariadb-server mariadb-backup:mariadb-backup mariadb:mariadb-client \
    radosgw:radosgw ceph-mon:ceph-mon ceph-osd:ceph-osd zstd:zstd \
    promtool:prometheus pgrep:procps; do
    bin=${cmd%%:*}
    pkg=${cmd##*:}
    if ! command -v "$bin" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$bin" ]; then
        need_apt+=("$pkg")
    fi
done

if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "installing system packages: ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${need_apt[@]}" >/dev/null
fi

if ! command -v uv >/dev/null 2>&1; then
    echo "installing uv"
    python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
fi
