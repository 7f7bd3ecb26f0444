"""The hooks' side of the exporter: its state file and its systemd service (Scenario).

systemd is faked at the boundary the charm uses (`charmlibs.systemd`), the unit file
directory is the test's, and the state file goes where the conftest puts copy state.
"""

from __future__ import annotations

import datetime
import json
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from backup_manager import copying
from backup_manager.exporter import service, state_file
from backup_manager.schedule import Schedule
from database_backup.interface import format_time

from .fakes import NOW
from .helpers import MODEL_UUID, cluster, context, db_relation, peer, s3_relation, state

SECRET = "SECRET-A"  # the test credentials of s3_relation()
ACCESS = "AKIA-A"
CHARM_DIR = Path("/var/lib/juju/agents/unit-backup-manager-0/charm")


class FakeSystemd:
    """Records what the charm asks systemctl; `running` is what is-active answers."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.running = False

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def record(verb: str, result: bool = True) -> Any:
            def call(*args: str) -> bool:
                self.calls.append((verb, *args))
                if verb in ("start", "restart"):
                    self.running = True
                if verb == "stop":
                    self.running = False
                return result

            return call

        systemd = service.systemd
        monkeypatch.setattr(systemd, "daemon_reload", record("daemon-reload"))
        monkeypatch.setattr(systemd, "service_enable", record("enable"))
        monkeypatch.setattr(systemd, "service_restart", record("restart"))
        monkeypatch.setattr(systemd, "service_start", record("start"))
        monkeypatch.setattr(systemd, "service_stop", record("stop"))
        monkeypatch.setattr(systemd, "service_disable", record("disable"))

        def running(name: str) -> bool:
            self.calls.append(("is-active", name))
            return self.running

        monkeypatch.setattr(systemd, "service_running", running)


@pytest.fixture
def systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSystemd:
    """A machine run by systemd, faked."""
    units = tmp_path / "systemd"
    units.mkdir()
    monkeypatch.setattr(service, "UNIT_DIR", units)
    monkeypatch.setattr(service, "available", lambda: True)
    ensure = service.ensure  # Scenario gives each run a new charm dir; Juju keeps one
    monkeypatch.setattr(service, "ensure", lambda _charm_dir, config: ensure(CHARM_DIR, config))
    fake = FakeSystemd()
    fake.install(monkeypatch)
    return fake


def related(**config: Any) -> testing.State:
    relation, secret = s3_relation()
    return state(relation, db_relation("mysql"), secrets=[secret], config=config)


def test_config_changed_writes_a_0600_state_file_and_logs_no_secret(systemd: FakeSystemd):
    ctx = context()

    ctx.run(ctx.on.config_changed(), related(**{"binlog-max-lag": 30}))

    path = state_file.path()
    assert path.parent == Path(copying.STATE_DIR)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["locations"]["s3-a"]["secret_key"] == SECRET  # the exporter needs it
    [entry] = document["clusters"]
    assert entry["cluster"] == cluster("mysql")
    assert entry["binlog-max-lag"] == 30
    assert entry["shipping-location"] == "s3-a"
    assert entry["schedule-max-interval"] == 86400  # the default "0 2 * * *"
    assert set(entry["jobs"]) == {"backup", "restore", "drill", "copy"}
    logged = "\n".join(line.message for line in ctx.juju_log)
    assert SECRET not in logged
    assert ACCESS not in logged
    assert SECRET not in service.unit_path().read_text()


def test_install_writes_the_unit_file_then_enables_and_starts_it(systemd: FakeSystemd):
    ctx = context()

    ctx.run(ctx.on.install(), related())

    unit = service.unit_path().read_text()
    assert service.unit_path().name == "backup-manager-exporter.service"
    assert "Restart=on-failure\n" in unit
    assert "RestartSec=5\n" in unit
    assert (
        f"ExecStart={CHARM_DIR}/venv/bin/python -m backup_manager.exporter "
        f"--config {state_file.path()} --port 9582\n"
    ) in unit
    assert f"Environment=PYTHONPATH={CHARM_DIR}/lib:{CHARM_DIR}/src\n" in unit
    assert "WantedBy=multi-user.target" in unit
    assert systemd.calls == [
        ("daemon-reload",),
        ("enable", service.SERVICE),
        ("restart", service.SERVICE),
    ]


@pytest.mark.usefixtures("s3")
def test_an_unchanged_unit_is_only_started_when_down(systemd: FakeSystemd):
    ctx = context()
    ctx.run(ctx.on.install(), related())
    systemd.calls.clear()

    ctx.run(ctx.on.update_status(), related())
    assert systemd.calls == [("is-active", service.SERVICE)]  # running: left alone

    systemd.running = False  # it died and systemd gave up
    systemd.calls.clear()
    ctx.run(ctx.on.update_status(), related())
    assert systemd.calls == [("is-active", service.SERVICE), ("start", service.SERVICE)]


def test_new_code_rewrites_the_unit_and_restarts_it(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
):
    ctx = context()
    ctx.run(ctx.on.install(), related())
    systemd.calls.clear()
    monkeypatch.setattr(service, "code_digest", lambda: "0123456789abcdef")

    ctx.run(ctx.on.upgrade_charm(), related())

    assert "# code 0123456789abcdef\n" in service.unit_path().read_text()
    assert ("restart", service.SERVICE) in systemd.calls


def test_remove_stops_disables_and_deletes_the_service(systemd: FakeSystemd):
    ctx = context()
    ctx.run(ctx.on.install(), related())
    systemd.calls.clear()

    ctx.run(ctx.on.remove(), related())

    assert not service.unit_path().exists()
    assert not state_file.path().exists()
    assert ("stop", service.SERVICE) in systemd.calls
    assert ("disable", service.SERVICE) in systemd.calls


def test_a_failed_job_is_in_the_file_when_it_finishes(systemd: FakeSystemd):
    finished = format_time(NOW - timedelta(minutes=3))
    history = [
        {
            "job-id": "j1",
            "type": "backup",
            "app": "mysql",
            "status": "success",
            "finished-at": format_time(NOW - timedelta(hours=30)),
        },
        {
            "job-id": "j2",
            "type": "backup",
            "app": "mysql",
            "status": "error",
            "finished-at": format_time(NOW - timedelta(hours=25)),
        },  # older than a day
        {
            "job-id": "j3",
            "type": "backup",
            "app": "mysql",
            "status": "error",
            "finished-at": finished,
        },
        {
            "job-id": "j4",
            "type": "backup",
            "app": "mysql",
            "status": "success",
            "drill-of": "20261122T071500Z-3fa9",
            "finished-at": finished,
        },
        {
            "job-id": "j5",
            "type": "restore",
            "app": "other",
            "status": "error",
            "finished-at": finished,
        },  # another application's
        {
            "job-id": "copy-1",
            "type": "copy",
            "app": "mysql",
            "status": "failed",
            "finished-at": finished,
        },  # a cross-region copy of mysql's backup that failed: the DR copy is missing
    ]
    relation, secret = s3_relation()
    ctx = context()

    ctx.run(
        ctx.on.config_changed(),
        state(
            relation,
            db_relation("mysql"),
            peer({"history": json.dumps(history)}),
            secrets=[secret],
        ),
    )

    [entry] = json.loads(state_file.path().read_text())["clusters"]
    assert entry["jobs"]["backup"] == {
        "failed-at": [finished],
        "last-finished-at": finished,
        "last-failed": True,
    }
    assert entry["jobs"]["drill"]["last-failed"] is False
    assert entry["jobs"]["restore"] == {
        "failed-at": [],
        "last-finished-at": None,
        "last-failed": None,
    }
    assert entry["jobs"]["copy"] == {
        "failed-at": [finished],
        "last-finished-at": finished,
        "last-failed": True,
    }


def test_a_non_leader_exports_no_cluster_and_no_credentials(systemd: FakeSystemd):
    relation, secret = s3_relation()
    ctx = context()

    ctx.run(
        ctx.on.config_changed(),
        state(relation, db_relation("mysql"), secrets=[secret], leader=False),
    )

    document = json.loads(state_file.path().read_text())
    assert document["clusters"] == []
    assert document["locations"] == {}


def test_binlog_shipping_off_means_no_lag_limit(systemd: FakeSystemd):
    ctx = context()

    ctx.run(ctx.on.config_changed(), related(**{"binlog-shipping": False}))

    [entry] = json.loads(state_file.path().read_text())["clusters"]
    assert entry["binlog-max-lag"] is None
    assert entry["shipping-location"] is None


def test_without_systemd_nothing_is_installed_or_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(service, "UNIT_DIR", tmp_path / "systemd")
    monkeypatch.setattr(service, "available", lambda: False)
    ctx = context()

    ctx.run(ctx.on.install(), related())

    assert not state_file.path().exists()
    assert not (tmp_path / "systemd").exists()


def test_the_model_uuid_is_the_clusters_prefix(systemd: FakeSystemd):
    ctx = context()

    ctx.run(ctx.on.config_changed(), related())

    [entry] = json.loads(state_file.path().read_text())["clusters"]
    assert entry["cluster"].startswith(MODEL_UUID + "/")


@pytest.mark.usefixtures("s3")
def test_the_schedules_longest_gap_is_computed_once_per_schedule(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
):
    """The croniter walk takes ~0.2 s for a year of fire times: not in every hook."""
    computed: list[str] = []
    original = state_file.max_interval

    def counting(schedule: Schedule, start: datetime.datetime) -> float | None:
        computed.append(schedule.main)
        return original(schedule, start)

    monkeypatch.setattr(state_file, "max_interval", counting)
    relation, secret = s3_relation()  # no database related yet: no cluster to carry it
    ctx = context()

    ctx.run(ctx.on.config_changed(), state(relation, secrets=[secret]))
    ctx.run(ctx.on.update_status(), state(relation, secrets=[secret]))
    assert computed == ["0 2 * * *"]

    ctx.run(
        ctx.on.config_changed(),
        state(relation, secrets=[secret], config={"backup-schedule": "0 3 * * 1"}),
    )
    assert computed == ["0 2 * * *", "0 3 * * 1"]
    assert json.loads(state_file.path().read_text())["schedule-max-interval"] == 7 * 86400


def test_a_drill_cancelled_or_refused_for_a_restore_is_no_failure(systemd: FakeSystemd):
    """A restore cancels a running drill (C1): that says nothing about the backups."""
    passed = format_time(NOW - timedelta(hours=2))
    later = format_time(NOW - timedelta(minutes=1))
    history = [
        {
            "job-id": "d1",
            "type": "drill",
            "drill-of": "b1",
            "app": "mysql",
            "status": "success",
            "finished-at": passed,
        },
        {
            "job-id": "d2",
            "type": "drill",
            "drill-of": "b1",
            "app": "mysql",
            "status": "error",
            "finished-at": later,
            "message": "cancelled: restore job r1 was requested",
        },
        {
            "job-id": "d3",
            "type": "drill",
            "drill-of": "b1",
            "app": "mysql",
            "status": "error",
            "finished-at": later,
            "message": "the database is being restored (job r1); try again when it has finished",
        },
    ]
    relation, secret = s3_relation()
    ctx = context()

    ctx.run(
        ctx.on.config_changed(),
        state(
            relation,
            db_relation("mysql"),
            peer({"history": json.dumps(history)}),
            secrets=[secret],
        ),
    )

    [entry] = json.loads(state_file.path().read_text())["clusters"]
    assert entry["jobs"]["drill"] == {
        "failed-at": [],
        "last-finished-at": passed,
        "last-failed": False,
    }


def test_a_backup_refused_while_a_restore_ran_is_no_failure(systemd: FakeSystemd):
    """The scheduled backup a restore refused is retried after it (history.backups_to_retry)."""
    history = [
        {
            "job-id": "b1",
            "type": "backup",
            "app": "mysql",
            "status": "error",
            "scheduled": True,
            "finished-at": format_time(NOW - timedelta(minutes=1)),
            "message": "the database is being restored (job r1); try again when it has finished",
        },
    ]
    relation, secret = s3_relation()
    ctx = context()

    ctx.run(
        ctx.on.config_changed(),
        state(
            relation,
            db_relation("mysql"),
            peer({"history": json.dumps(history)}),
            secrets=[secret],
        ),
    )

    [entry] = json.loads(state_file.path().read_text())["clusters"]
    assert entry["jobs"]["backup"] == {
        "failed-at": [],
        "last-finished-at": None,
        "last-failed": None,
    }
