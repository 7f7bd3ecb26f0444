"""The mysql-server charm's handlers, run through Scenario, drive the REAL engine.

Each job is started by the charm's `relation-changed` handler as a real detached worker
(its own session, clean environment) running the engine's command line against the real
MariaDB and RGW fixtures; the worker's hand-back command (in production `juju-exec ...
job-finished`) here appends to a file, and the test then runs the charm's `job-finished`
handler, which publishes the final status. Only the server's host plumbing is swapped
(`FixtureServer`: no apt, no systemd; the server is the fixture's `mariadbd`, stopped and
started by commands); the backup user is created with the charm's real grants.

Run with `-s` to see the transcript: unit databag before/after and each hook's duration.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from mysql_provider.shipping import Shipper
from mysql_provider.workload import BACKUP_USER, Server, backup_user_sql
from ops import testing
from scenario.state import _Event

from database_backup.catalog import Catalog
from database_backup.interface import JobRequest, JobType, StorageConfig
from database_backup.interface.locking import RESTORING_MESSAGE
from database_backup.interface.testing import requests_databag
from database_backup.jobs import JobStore
from database_backup.storage import S3Config, S3Storage
from tests.charms import mysql_charm_module
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import change, databases, fill

MYSQL = Path(__file__).resolve().parents[2] / "mysql"
HOOK_BUDGET = 2.0  # seconds: every hook returns quickly, whatever the job


def _stop_command(db: MariaDBServer) -> list[str]:
    pid_file = shlex.quote(str(db.pid_file))
    wait = f"while [ -e {pid_file} ]; do sleep 0.1; done"
    return ["sh", "-c", f'kill -TERM "$(cat {pid_file})" && {wait}']


def _start_command(db: MariaDBServer) -> list[str]:
    server = shlex.join(db.server_args())
    ping = f"mariadb-admin --defaults-file={shlex.quote(str(db.defaults_file))} ping"
    return ["sh", "-c",
            f"setsid {server} >/dev/null 2>&1 < /dev/null & i=0; until {ping} >/dev/null 2>&1;"
            ' do i=$((i+1)); [ "$i" -gt 300 ] && exit 1; sleep 0.1; done']  # fmt: skip


class FixtureServer(Server):
    """The charm's server, pointed at a fixture `mariadbd` (the test seam)."""

    def __init__(self, db: MariaDBServer, root: Path) -> None:
        super().__init__("mariadb", root=root)
        self.db = db
        #: while this file exists, the next start hangs 30 s then fails (and removes it)
        self.slow_start_flag = root / "slow-start"

    @property
    def binlog_dir(self) -> Path:
        return self.db.binlog_dir

    def shipper(self) -> Shipper:
        def no_systemd(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
            return subprocess.CompletedProcess(argv, 3, "", "")

        return Shipper(self.state_dir / "shipping", systemd_dir=self.state_dir, run=no_systemd)

    def backup_connection(self, password: str) -> dict[str, Any]:
        return {"host": self.db.host, "port": self.db.port, "user": BACKUP_USER,
                "password": password}  # fmt: skip

    def admin_connection(self) -> dict[str, Any]:
        return {"host": self.db.host, "port": self.db.port, "user": "root",
                "password": self.db.password}  # fmt: skip

    def server_section(self) -> dict[str, Any]:
        status = ["mariadb-admin", f"--defaults-file={self.db.defaults_file}", "ping"]
        return {"type": "command", "datadir": str(self.db.datadir),
                "start": self._start(), "stop": _stop_command(self.db),
                "status": status}  # fmt: skip

    def _start(self) -> list[str]:
        flag = shlex.quote(str(self.slow_start_flag))
        real = _start_command(self.db)[2]
        return ["sh", "-c", f"if [ -e {flag} ]; then rm {flag}; sleep 30; exit 1; fi; {real}"]

    def install(self) -> None:
        """Nothing to install: the fixture's binaries are there."""

    def is_installed(self) -> bool:
        return True

    def restart(self) -> None:
        """The fixture runs already; its options come from its command line."""

    def is_running(self) -> bool:
        ping = ["mariadb-admin", f"--defaults-file={self.db.defaults_file}", "ping"]
        return subprocess.run(ping, capture_output=True, check=False).returncode == 0

    def ensure_backup_user(self, password: str) -> None:
        # the charm's own grants, for TCP from 127.0.0.1 (the fixture skips name resolution)
        self.db.execute(backup_user_sql("mariadb", password, host="127.0.0.1"))


@pytest.fixture(scope="module")
def db(make_mariadb: Callable[..., MariaDBServer]) -> Iterator[MariaDBServer]:
    server = make_mariadb("provider-charm")
    yield server
    if not server.is_running() and server.pid_file.exists():
        subprocess.run(_stop_command(server), check=False, timeout=60)  # restarted by a restore
    server.stop()


class Unit:
    """One provider unit driven through Scenario, keeping its state between hooks."""

    def __init__(self, db: MariaDBServer, s3: S3Config, root: Path) -> None:
        self.root = root
        self.marker = root / "job-finished.log"
        self.server = FixtureServer(db, root / "host")
        server = self.server
        notify = [sys.executable, "-c",
                  f"open({str(self.marker)!r}, 'a').write('job-finished\\n')"]  # fmt: skip

        class Charm(mysql_charm_module().MySQLServerCharm):
            server_factory = staticmethod(lambda flavour: server)
            notify_command = staticmethod(lambda unit, charm_dir: notify)

        self.ctx = testing.Context(
            Charm,
            meta=yaml.safe_load((MYSQL / "metadata.yaml").read_text()),
            actions=yaml.safe_load((MYSQL / "actions.yaml").read_text()),
            config={**yaml.safe_load((MYSQL / "config.yaml").read_text())},
        )
        self.credentials = testing.Secret(
            {"access-key": s3.access_key, "secret-key": s3.secret_key}
        )
        self.storage = StorageConfig(
            bucket=s3.bucket, endpoint=s3.endpoint, path="charm-tests",
            credentials_secret_id=self.credentials.id,
        )  # fmt: skip
        self.relation = testing.Relation(
            "database-backup", interface="database_backup", remote_app_name="backup-manager",
            remote_app_data=requests_databag([]),
        )  # fmt: skip
        self.state = testing.State(
            leader=True,
            config={"flavour": "mariadb"},
            relations=[self.relation, testing.PeerRelation("mysql-peers")],
            secrets=[self.credentials],
        )
        self.timings: list[tuple[str, float]] = []

    def run(self, name: str, event: Any) -> testing.State:
        started = time.perf_counter()
        self.state = self.ctx.run(event, self.state)
        elapsed = time.perf_counter() - started
        self.timings.append((name, elapsed))
        print(f"  hook {name}: {elapsed:.3f} s -> unit status {self.state.unit_status}")
        assert elapsed < HOOK_BUDGET, f"{name} took {elapsed:.2f} s"
        return self.state

    def request(self, *jobs: JobRequest) -> testing.State:
        current = self.state.get_relation(self.relation.id)
        updated = dataclasses.replace(current, remote_app_data=requests_databag(jobs))
        others = [r for r in self.state.relations if r.id != current.id]
        self.state = dataclasses.replace(self.state, relations=[updated, *others])
        event = self.ctx.on.relation_changed(updated, remote_unit=0)
        return self.run("database-backup-relation-changed", event)

    def databag(self) -> dict[str, str]:
        return dict(self.state.get_relation(self.relation.id).local_unit_data)

    def statuses(self) -> dict[str, dict[str, Any]]:
        return {s["job-id"]: s for s in json.loads(self.databag().get("jobs", "[]"))}

    def wait_for_hand_back(self, count: int, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.marker.exists() and len(self.marker.read_text().splitlines()) >= count:
                return
            time.sleep(0.1)
        logs = [p.read_text()[-2000:] for p in (self.root / "host").rglob("worker.log")]
        raise AssertionError(f"no job-finished hand-back within {timeout} s: {logs}")

    def job_finished(self) -> testing.State:
        return self.run("job-finished", _Event("job_finished"))


def catalog(s3: S3Config, cluster: str) -> Catalog:
    """The catalog the charm's jobs write to (the jobs' storage path is `charm-tests`)."""
    return Catalog(S3Storage(dataclasses.replace(s3, path="charm-tests")), cluster)


def show(title: str, data: dict[str, str]) -> None:
    print(f"  {title}:")
    for key, value in sorted(data.items()):
        with contextlib.suppress(ValueError):
            value = json.dumps(json.loads(value), indent=2)
        print("    " + f"{key}: {value}".replace("\n", "\n    "))


def test_backup_and_restore_jobs_through_the_charm(
    db: MariaDBServer, s3_config: S3Config, tmp_path: Path
) -> None:
    unit = Unit(db, s3_config, tmp_path)
    print("\n== install (the charm's real backup user grants on the fixture server)")
    unit.run("install", unit.ctx.on.install())
    password = next(s for s in unit.state.secrets if s.label == "backup-user").tracked_content
    assert db.query("SELECT user FROM mysql.user WHERE user = 'charm-backup'") == [(BACKUP_USER,)]
    fill(db, "shop", rows=3_000)
    before = db.checksum_tables("shop")

    print("== backup job")
    show("unit databag before", unit.databag())
    backup = JobRequest("backup-1", JobType.BACKUP, unit.storage, description="workload test")
    unit.request(backup)
    show("unit databag after relation-changed", unit.databag())
    assert unit.statuses()["backup-1"]["status"] == "running"
    unit.wait_for_hand_back(1)
    unit.job_finished()
    show("unit databag after job-finished", unit.databag())
    done = unit.statuses()["backup-1"]
    assert done["status"] == "success", done.get("message")
    cluster = f"{unit.state.model.uuid}/mysql-server"
    meta = catalog(s3_config, cluster).read_metadata(done["backup-id"])
    assert (meta.sha256, meta.stored_size) == (done["sha256"], done["size-bytes"])
    assert meta.job_id == "backup-1"
    assert done["artefact-path"] == f"charm-tests/{cluster}/backups/{done['backup-id']}"

    print("== restore job (and a backup asked for while it runs)")
    change(db, "shop")
    restore = JobRequest(
        "restore-1", JobType.RESTORE, unit.storage, artefact_path=done["artefact-path"],
        backup_id=done["backup-id"], requested_at="2026-11-22T08:00:00Z",
    )  # fmt: skip
    unit.request(backup, restore)
    show("unit databag after relation-changed", unit.databag())
    assert unit.statuses()["restore-1"]["status"] == "running"
    (restoring,) = JobStore(unit.server.state_dir / "jobs").running()
    deadline = time.monotonic() + 30
    while restoring.state().get("phase") in (None, "starting") and time.monotonic() < deadline:
        time.sleep(0.02)  # let the engine report a phase, so update-status has progress
    unit.run("update-status", unit.ctx.on.update_status())
    show(
        "unit databag after update-status (restore status only)",
        {"jobs": json.dumps([s for s in unit.statuses().values() if s["job-id"] == "restore-1"])},
    )
    if restoring.is_locked():  # still restoring after the hook: the unit says so
        assert isinstance(unit.state.unit_status, testing.MaintenanceStatus)
        assert str(unit.state.unit_status.message).startswith(
            f"restoring backup {done['backup-id']}"
        )
    late = JobRequest(
        "backup-2", JobType.BACKUP, unit.storage, requested_at="2026-11-22T08:00:01Z"
    )
    unit.request(backup, restore, late)
    refused = unit.statuses()["backup-2"]
    if restoring.is_locked():
        assert refused["message"] == RESTORING_MESSAGE.format(job="restore-1")
    unit.wait_for_hand_back(2)
    unit.job_finished()
    show("unit databag after job-finished", unit.databag())
    restored = unit.statuses()["restore-1"]
    assert restored["status"] == "success", restored.get("message")
    assert restored["recovered-from-backup"] == done["backup-id"]
    assert db.checksum_tables("shop") == before
    assert "after_backup" not in databases(db)
    assert unit.state.unit_status == testing.ActiveStatus("")

    # no secret in anything the jobs left behind or published
    secrets = (s3_config.secret_key, password["password"], db.password)
    leftovers = "".join(p.read_text() for p in (tmp_path / "host").rglob("*") if p.is_file())
    published = json.dumps(unit.databag())
    for secret in secrets:
        assert secret not in leftovers
        assert secret not in published
    assert not list((tmp_path / "host").rglob("spec.json"))
    print("== hook timings: " + ", ".join(f"{name} {t:.3f} s" for name, t in unit.timings))


def test_killed_worker_becomes_an_error_on_update_status(
    db: MariaDBServer, s3_config: S3Config, tmp_path: Path
) -> None:
    unit = Unit(db, s3_config, tmp_path)
    unit.run("install", unit.ctx.on.install())
    fill(db, "big", rows=150_000)
    unit.request(JobRequest("backup-k", JobType.BACKUP, unit.storage))
    (local,) = JobStore(unit.server.state_dir / "jobs").running()
    pid = int((local.dir / "worker.pid").read_text())
    deadline = time.monotonic() + 60
    while local.state().get("phase") in (None, "starting") and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(pid, signal.SIGKILL)  # the worker and the engine, at once
    while local.is_locked() and time.monotonic() < deadline:
        time.sleep(0.05)

    unit.run("update-status", unit.ctx.on.update_status())

    status = unit.statuses()["backup-k"]
    assert status["status"] == "error"
    assert "stopped unexpectedly" in status["message"]
    assert JobStore(unit.server.state_dir / "jobs").running() == []
    assert not local.spec_path.exists()
    assert catalog(s3_config, f"{unit.state.model.uuid}/mysql-server").list_backups() == []
    db.execute("DROP DATABASE big")


def test_cancel_job_action_stops_a_backup_cleanly(
    db: MariaDBServer, s3_config: S3Config, tmp_path: Path
) -> None:
    unit = Unit(db, s3_config, tmp_path)
    unit.run("install", unit.ctx.on.install())
    fill(db, "big", rows=300_000)
    unit.request(JobRequest("backup-c", JobType.BACKUP, unit.storage))
    (local,) = JobStore(unit.server.state_dir / "jobs").running()
    deadline = time.monotonic() + 60
    while not local.state().get("bytes-done") and time.monotonic() < deadline:
        time.sleep(0.02)  # streaming (a SIGTERM during the S3 set-up calls is swallowed)

    # freeze the job so the cancel surely lands mid-backup (SIGTERM stays pending)
    pgid = int((local.dir / "worker.pid").read_text())
    os.killpg(pgid, signal.SIGSTOP)
    try:
        unit.run("cancel-job", unit.ctx.on.action("cancel-job", params={"job-id": "backup-c"}))
    finally:
        os.killpg(pgid, signal.SIGCONT)
    unit.wait_for_hand_back(1)
    unit.job_finished()

    status = unit.statuses()["backup-c"]
    assert status["status"] == "error"
    assert "SIGTERM" in status["message"]
    cluster = f"{unit.state.model.uuid}/mysql-server"
    assert catalog(s3_config, cluster).list_backups(include_incomplete=True) == []
    db.execute("DROP DATABASE big")


def test_killed_restore_is_reported_and_recovered(
    db: MariaDBServer, s3_config: S3Config, tmp_path: Path
) -> None:
    unit = Unit(db, s3_config, tmp_path)
    unit.run("install", unit.ctx.on.install())
    fill(db, "shop", rows=2_000)
    backup = JobRequest("backup-r", JobType.BACKUP, unit.storage)
    unit.request(backup)
    unit.wait_for_hand_back(1)
    unit.job_finished()
    backup_id = unit.statuses()["backup-r"]["backup-id"]
    change(db, "shop")
    current = db.checksum_tables("shop")
    journal = db.datadir.parent / f"{db.datadir.name}.restore-journal.json"

    # the restore swaps the data in, then the server hangs on start: kill every process
    unit.server.slow_start_flag.touch()
    restore = JobRequest("restore-k", JobType.RESTORE, unit.storage, backup_id=backup_id)
    unit.request(backup, restore)
    (local,) = JobStore(unit.server.state_dir / "jobs").running()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if journal.exists() and json.loads(journal.read_text()).get("state") == "swapped":
            break
        time.sleep(0.05)
    else:
        pytest.fail("the restore never swapped the data in")
    os.killpg(int((local.dir / "worker.pid").read_text()), signal.SIGKILL)
    while local.is_locked() and time.monotonic() < deadline:
        time.sleep(0.05)

    unit.run("update-status", unit.ctx.on.update_status())

    status = unit.statuses()["restore-k"]
    assert status["status"] == "error", local.log_path.read_text()
    assert status["message"].endswith("the previous data is being put back (see show-jobs)")
    assert isinstance(unit.state.unit_status, testing.MaintenanceStatus)  # recovery holds the lock
    unit.wait_for_hand_back(2)  # the recovery hands back too
    unit.job_finished()
    assert unit.state.unit_status == testing.ActiveStatus("")
    assert db.checksum_tables("shop") == current
    assert "after_backup" in databases(db)
    assert not journal.exists()
    recovery = JobStore(unit.server.state_dir / "jobs").get(f"{local.record.key}-recover")
    assert recovery is not None
    assert recovery.outcome().status == "success"
