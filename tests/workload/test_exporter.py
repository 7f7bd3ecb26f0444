"""The metrics exporter as a process, over real backups in a real RGW.

Real backups (full and logical) and shipped binlogs of a real MariaDB go to the catalog;
the exporter runs as `python -m backup_manager.exporter` on a free port with the state
file the hooks write; its `/metrics` is scraped over HTTP and parsed with
prometheus_client's parser. Wrong credentials make `catalog_up` 0 and it keeps serving;
a fatal start error exits non-zero (the unit file's `Restart=on-failure` then restarts
it: systemd itself does not run here).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from backup_manager.exporter import service, state_file
from backup_manager.exporter.state_file import ClusterEntry, ExporterState, JobOutcomes
from backup_manager.locations import Location
from database_backup.catalog import BackupMetadata, Catalog, new_backup_id
from database_backup.catalog.binlogs import BinlogCatalog
from database_backup.interface import format_time
from database_backup.mysql import backup_full, backup_logical
from database_backup.mysql.binlog.shipping import ship_binlogs
from database_backup.storage import S3Config, S3Storage
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import connection, fill

CLUSTER = "model-0123/exporter"
ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def location_of(config: S3Config, name: str = "default", secret: str | None = None) -> Location:
    return Location(
        name=name,
        bucket=config.bucket,
        access_key=config.access_key,
        secret_key=secret or config.secret_key,
        endpoint=config.endpoint,
        region=config.region,
        path=config.path,
        uri_style=config.uri_style,
    )


def write_state(path: Path, location: Location, failed_at: datetime) -> None:
    entry = ClusterEntry(
        cluster=CLUSTER,
        app="exporter",
        binlog_max_lag=60,
        shipping_location=location.name,
        schedule_max_interval=86400,
        jobs={
            "backup": JobOutcomes(
                failed_at=(format_time(failed_at),),
                last_finished_at=format_time(failed_at),
                last_failed=True,
            )
        },
    )
    state_file.write(ExporterState(locations={location.name: location}, clusters=(entry,)), path)


@dataclass
class Exporter:
    process: subprocess.Popen[bytes]
    port: int
    stderr: Path

    def scrape(self) -> Samples:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        found: Samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return found

    def wait_for(self, done: Callable[[Samples], bool], timeout: float = 60) -> Samples:
        deadline = time.monotonic() + timeout
        samples: Samples = {}
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                samples = self.scrape()
            except OSError:
                samples = {}
            if done(samples):
                return samples
            time.sleep(0.2)
        raise AssertionError(f"timed out; last scrape {samples}\n{self.log()}")

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")


def exporter_argv(config: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "backup_manager.exporter",
        "--config",
        str(config),
        "--port",
        str(port),
        "--address",
        "127.0.0.1",
        "--refresh-seconds",
        "2",
        "--poll-seconds",
        "0.2",
    ]


def exporter_env() -> dict[str, str]:
    """The unit file's environment: PYTHONPATH to the charm's lib and src."""
    return {**os.environ, "PYTHONPATH": f"{ROOT / 'lib'}:{ROOT / 'src'}"}


@pytest.fixture
def start_exporter(tmp_path: Path) -> Iterator[Callable[[Path], Exporter]]:
    started: list[Exporter] = []

    def start(config: Path) -> Exporter:
        port = free_port()
        stderr = tmp_path / f"exporter-{port}.log"
        with stderr.open("wb") as sink:
            process = subprocess.Popen(
                exporter_argv(config, port), env=exporter_env(), stderr=sink, cwd=tmp_path
            )
        exporter = Exporter(process, port, stderr)
        started.append(exporter)
        return exporter

    yield start
    for exporter in started:
        if exporter.process.poll() is None:
            exporter.process.kill()
            exporter.process.wait(timeout=10)


def loc(**extra: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"cluster": CLUSTER, "location": "", **extra}.items()))


def make_backups(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
) -> tuple[BackupMetadata, BackupMetadata]:
    fill(server, "shop", rows=2_000)
    full = backup_full(
        connection(server),
        catalog,
        backup_id=new_backup_id(datetime.now(timezone.utc)),
        job_id="job-full",
        workdir=tmp_path / "full",
    )
    time.sleep(1.1)  # ids and finish times in order
    logical = backup_logical(
        connection(server),
        catalog,
        backup_id=new_backup_id(datetime.now(timezone.utc)),
        databases=["shop"],
        job_id="job-logical",
        workdir=tmp_path / "logical",
    )
    return full, logical


def test_the_exporter_serves_the_health_of_real_backups_and_survives_bad_credentials(
    server: MariaDBServer,
    catalog: Catalog,
    storage: S3Storage,
    s3_config: S3Config,
    tmp_path: Path,
    start_exporter: Callable[[Path], Exporter],
):
    full, logical = make_backups(server, catalog, tmp_path)
    server.execute("FLUSH BINARY LOGS")
    shipped = ship_binlogs(connection(server), catalog, workdir=tmp_path / "ship")
    assert shipped.shipped, "no binlog shipped"
    index = BinlogCatalog(catalog)
    timeline = index.timelines()[-1]
    last_event = max(e.last_event_at for e in index.entries(timeline.timeline_id))
    drilled_at = datetime.now(timezone.utc).replace(microsecond=0)
    catalog.write_verification(
        full.backup_id,
        {
            "backup-id": full.backup_id,
            "result": "pass",
            "checked-at": format_time(drilled_at),
            "job-id": "job-drill",
            "unit": "mysql/0",
        },
    )
    stored = sum(info.size for info in storage.list(catalog.prefix))
    failed_at = datetime.now(timezone.utc) - timedelta(minutes=5)
    config = tmp_path / "state" / "exporter.json"
    write_state(config, location_of(s3_config), failed_at)

    exporter = start_exporter(config)
    found = exporter.wait_for(lambda s: ("database_backup_catalog_up", loc()) in s)
    scraped_at = time.time()

    prefix = "database_backup_"
    assert found[(prefix + "catalog_up", loc())] == 1
    assert found[(prefix + "complete_backups", loc())] == 2
    newest = max((full, logical), key=lambda b: b.finished_at)
    assert newest is logical
    assert found[(prefix + "last_complete_timestamp_seconds", loc())] == pytest.approx(
        logical.finished_at.timestamp()
    )
    age = found[(prefix + "last_complete_age_seconds", loc())]
    assert age == pytest.approx(scraped_at - logical.finished_at.timestamp(), abs=5)
    assert found[(prefix + "last_size_bytes", loc())] == logical.stored_size
    assert found[(prefix + "last_duration_seconds", loc())] == pytest.approx(
        (logical.finished_at - logical.started_at).total_seconds()
    )
    # storage: every object of the cluster (backups, shipped binlogs, catalog files)
    assert found[(prefix + "storage_bytes", loc())] >= stored
    assert found[(prefix + "storage_bytes", loc())] - stored < 4096  # the index, if healed
    lag = found[(prefix + "binlog_lag_seconds", loc())]
    assert lag == pytest.approx(scraped_at - last_event.timestamp(), abs=5)
    assert found[(prefix + "drill_last_success", loc())] == 1
    assert found[(prefix + "drill_last_timestamp_seconds", loc())] == drilled_at.timestamp()
    job = tuple(sorted({"cluster": CLUSTER, "job_type": "backup"}.items()))
    assert found[(prefix + "failed_jobs_last_day", job)] == 1
    assert found[(prefix + "last_job_failed", job)] == 1
    assert found[(prefix + "binlog_lag_limit_seconds", (("cluster", CLUSTER),))] == 60

    # wrong credentials: the catalog is down, the service still serves its last readings
    wrong = "wrong-" + s3_config.secret_key[:6]
    write_state(config, location_of(s3_config, secret=wrong), failed_at)
    down = exporter.wait_for(lambda s: s.get((prefix + "catalog_up", loc())) == 0)
    assert down[(prefix + "complete_backups", loc())] == 2
    assert exporter.process.poll() is None
    log = exporter.log()
    assert "reading the catalog of model-0123/exporter" in log
    assert s3_config.secret_key not in log
    assert wrong not in log

    # the credentials fixed: up again at once (the file changed), not after a minute
    write_state(config, location_of(s3_config), failed_at)
    exporter.wait_for(lambda s: s.get((prefix + "catalog_up", loc())) == 1, timeout=20)

    exporter.process.send_signal(signal.SIGTERM)
    assert exporter.process.wait(timeout=20) == 0


def test_a_fatal_start_error_exits_non_zero_for_systemd_to_restart(
    tmp_path: Path, start_exporter: Callable[[Path], Exporter]
):
    unreadable = tmp_path / "missing" / "exporter.json"

    exporter = start_exporter(unreadable)

    assert exporter.process.wait(timeout=30) == 1
    assert "cannot start: cannot read" in exporter.log()
    unit = service.unit_file(Path("/charm"), unreadable)
    assert "Restart=on-failure\n" in unit  # a non-zero exit (or a SIGKILL) is restarted
    assert f"RestartSec={service.RESTART_SECONDS}\n" in unit


def test_a_killed_exporter_dies_by_the_signal_and_a_taken_port_is_fatal(
    tmp_path: Path, start_exporter: Callable[[Path], Exporter], s3_config: S3Config
):
    config = tmp_path / "exporter.json"
    write_state(config, location_of(s3_config), datetime.now(timezone.utc))
    first = start_exporter(config)
    first.wait_for(lambda s: ("database_backup_catalog_up", loc()) in s)

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        second = subprocess.run(
            exporter_argv(config, port), env=exporter_env(), capture_output=True, timeout=60
        )
    assert second.returncode == 1
    assert b"cannot listen on 127.0.0.1" in second.stderr

    first.process.kill()  # kill -9: what systemd's Restart=on-failure also restarts
    assert first.process.wait(timeout=10) == -signal.SIGKILL
