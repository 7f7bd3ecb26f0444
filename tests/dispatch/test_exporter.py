"""The exporter's unit file, run as systemd would run it, in the primed backup-manager charm.

systemd does not run this machine, so the charm does not install the service here (the
unit tests check the install and the systemctl calls with a fake). What this tier can
prove is the rest: the `ExecStart=` and `Environment=` the charm writes start the exporter
from the packed charm's own venv and `lib`/`src` (every import it needs is in the wheels),
with systemd's bare environment, and it reads a real catalog on RGW.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from backup_manager.exporter import service, state_file
from backup_manager.exporter.state_file import ClusterEntry, ExporterState
from backup_manager.locations import Location
from tests.infra.ceph import CephS3
from tests.infra.fixtures import unique_bucket_name

from .deployment import SYSTEM_PATH
from .packing import base_python

CLUSTER = "0b6c3f52-8a1e-4c55-9d0b-5f0a1e2d3c4b/mysql"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def command_of(unit: str) -> tuple[list[str], dict[str, str]]:
    """`ExecStart=` as argv and the `Environment=` lines of a unit file."""
    argv: list[str] = []
    env: dict[str, str] = {}
    for line in unit.splitlines():
        key, _, value = line.partition("=")
        if key == "ExecStart":
            argv = shlex.split(value)
        elif key == "Environment":
            name, _, setting = value.partition("=")
            env[name] = setting
    return argv, env


def scrape(port: int) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_unit_files_command_serves_metrics_from_the_primed_charm(
    primed: dict[str, Path], tmp_path: Path, ceph: CephS3
):
    charm = primed["backup-manager"]
    python = charm / "venv" / "bin" / "python"
    if not python.exists():  # what the dispatch script does at the first hook
        python.symlink_to(base_python())
    bucket = unique_bucket_name("exporter")
    ceph.create_bucket(bucket)
    s3 = ceph.s3_config(bucket)
    location = Location(
        name="default",
        bucket=bucket,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        endpoint=s3.endpoint,
    )
    config = tmp_path / "state" / "exporter.json"
    entry = ClusterEntry(CLUSTER, "mysql", binlog_max_lag=60, shipping_location="default")
    state_file.write(ExporterState(locations={"default": location}, clusters=(entry,)), config)
    port = free_port()
    argv, env = command_of(service.unit_file(charm, config, port=port))
    assert argv[:3] == [str(python), "-m", "backup_manager.exporter"]
    assert env["PYTHONPATH"] == f"{charm / 'lib'}:{charm / 'src'}"

    process = subprocess.Popen(
        argv,
        env={"PATH": SYSTEM_PATH, **env},  # systemd's environment, not the test's venv
        cwd="/",
        stderr=subprocess.PIPE,
    )
    try:
        found: dict[str, float] = {}
        deadline = time.monotonic() + 60
        while "database_backup_catalog_up" not in found and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.3)
            try:
                found = scrape(port)
            except OSError:
                continue
        assert found["database_backup_catalog_up"] == 1
        assert found["database_backup_complete_backups"] == 0
        assert found["database_backup_binlog_lag_limit_seconds"] == 60
    finally:
        process.terminate()
        code = process.wait(timeout=20)
        ceph.remove_bucket(bucket)
    assert code == 0
