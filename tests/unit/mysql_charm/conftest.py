"""Scenario fixtures for the mysql-server charm: a fake server and a fake worker launcher.

The workload module (`mysql_provider.workload.Server`) is swapped for `FakeServer`, which
keeps every file under a temporary directory and answers `systemctl` and `--version` from
memory. The apt layer (`mysql_provider.packages.apt`, charmlibs-apt) is swapped for
`FakeApt`, which fails the way charmlibs-apt fails when a test asks it to (a dpkg lock).
The launcher is swapped for `FakeLauncher`, which holds each job's lock in the test process,
so a test decides when a job finishes (`finish`) or dies (`die`) - no process, no network.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from charmlibs import apt as charmlibs_apt
from mysql_provider import packages, runner
from mysql_provider.workload import Server
from ops import testing

from database_backup.interface import JobRequest, JobType, StorageConfig
from database_backup.interface.testing import requests_databag
from database_backup.jobs import LocalJob
from tests.charms import mysql_charm_module

MYSQL = Path(__file__).resolve().parents[3] / "mysql"
CREDENTIALS = testing.Secret({"access-key": "AKIAUNITTEST", "secret-key": "unit-secret-key-value"})
PASSWORD = testing.Secret({"password": "backup-pw-123"}, label="backup-user", owner="unit")


class FakeServer(Server):
    """The server API over a temporary root; systemctl answered from memory."""

    def __init__(self, flavour: str, root: Path) -> None:
        super().__init__(flavour, run=self._fake_run, root=root)
        self.installed = True
        self.running = True
        self.active_units: set[str] = set()
        self.calls: list[list[str]] = []
        self.users: list[str] = []
        #: what `<binary> --version` prints (stdout for servers, stderr for backup tools)
        self.versions = dict(VERSIONS)

    def _fake_run(self, argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        code = 0
        if argv[1:] == ["--version"]:
            if argv[0] not in self.versions:
                raise FileNotFoundError(argv[0])
            output = self.versions[argv[0]]
            if "backup" in argv[0]:
                return subprocess.CompletedProcess(argv, 0, "", output)
            return subprocess.CompletedProcess(argv, 0, output, "")
        if argv[:2] == ["systemctl", "is-active"]:
            code = 0 if argv[-1] in self.active_units else 3
        elif argv[:3] == ["systemctl", "enable", "--now"]:
            self.active_units.add(argv[-1])
        elif argv[:3] == ["systemctl", "disable", "--now"]:
            self.active_units.discard(argv[-1])
        elif argv[:2] == ["systemctl", "restart"] and argv[-1] == self.flavour.service:
            self.running = True
        return subprocess.CompletedProcess(argv, code, "", "")

    def is_installed(self) -> bool:
        return self.installed or set(self.flavour.packages) <= FAKE_APT.installed

    def is_running(self) -> bool:
        return self.running

    def ensure_backup_user(self, password: str) -> None:
        self.users.append(password)


VERSIONS = {
    "xtrabackup": "xtrabackup version 8.0.35-30 based on MySQL server 8.0.35 Linux (x86_64)",
    "mysqld": "/usr/sbin/mysqld  Ver 8.0.40-0ubuntu0.24.04.1 for Linux on x86_64 ((Ubuntu))",
    "mariabackup": "mariabackup based on MariaDB server 10.11.8-MariaDB debian-linux-gnu (x86_64)",
    "mariadbd": "mariadbd  Ver 10.11.8-MariaDB-0ubuntu0.24.04.1 for debian-linux-gnu on x86_64",
}


class FakeApt:
    """Stands in for the charmlibs-apt module: records installs, fails when told to."""

    PackageError = charmlibs_apt.PackageError
    PackageNotFoundError = charmlibs_apt.PackageNotFoundError

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.installed: set[str] = set()
        self.update_failures: list[Exception] = []
        self.install_failures: list[Exception] = []

    def update(self) -> None:
        self.calls.append(["update"])
        if self.update_failures:
            raise self.update_failures.pop(0)

    def add_package(self, package_names: list[str], **_: Any) -> list[Any]:
        self.calls.append(["add", *package_names])
        if self.install_failures:
            raise self.install_failures.pop(0)
        self.installed |= set(package_names)
        return []

    def reset(self) -> None:
        self.__init__()


FAKE_APT = FakeApt()


def dpkg_lock_error(package: str = "mysql-server") -> charmlibs_apt.PackageError:
    """What charmlibs-apt raises when apt-get install meets a held dpkg lock."""
    return charmlibs_apt.PackageError(
        f"Could not install package(s) ['{package}=8.0.40-0ubuntu0.24.04.1']: "
        "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1234 "
        "(unattended-upgr)\nE: Unable to acquire the dpkg frontend lock "
        "(/var/lib/dpkg/lock-frontend), is another process using it?\n"
    )


class FakeLauncher:
    """Stands in for `start_worker`: the test process holds each job's lock."""

    def __init__(self) -> None:
        self.fds: dict[str, int] = {}
        self.started: list[LocalJob] = []

    def __call__(self, local: LocalJob, **_: Any) -> int:
        fd = os.open(local.lock_path, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.fds[local.record.key] = fd
        self.started.append(local)
        return 4242

    def progress(self, local: LocalJob, phase: str, done: int, total: int) -> None:
        state = {"status": "running", "phase": phase, "bytes-done": done,
                 "bytes-estimated": total, "started-at": "2026-11-22T07:15:02+00:00"}  # fmt: skip
        local.state_path.write_text(json.dumps(state))

    def finish(self, local: LocalJob, status: str = "success", **state: Any) -> None:
        """What the worker does at the end: state, finished record, lock released."""
        document = {"status": status, "phase": "done" if status == "success" else "backup",
                    "started-at": "2026-11-22T07:15:02+00:00",
                    "finished-at": "2026-11-22T07:16:40+00:00", **state}  # fmt: skip
        local.state_path.write_text(json.dumps(document))
        local.finish(status, state.get("message"))
        self.release(local)

    def die(self, local: LocalJob) -> None:
        """Every process of the job is gone, nothing recorded."""
        self.release(local)

    def release(self, local: LocalJob) -> None:
        os.close(self.fds.pop(local.record.key))

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


def job(job_id: str = "backup-1", job_type: str = "backup", **extra: Any) -> JobRequest:
    """A job credentialed by `CREDENTIALS`."""
    storage = StorageConfig(
        bucket="db-backups", endpoint="http://127.0.0.1:1", path="prod",
        credentials_secret_id=CREDENTIALS.id,
    )  # fmt: skip
    if job_type == "restore":
        extra.setdefault("backup_id", "20261122T071500Z-3fa9")
    return JobRequest(job_id, JobType(job_type), storage, **extra)


def relation(*jobs: JobRequest, **app_data: str) -> testing.Relation:
    """The database-backup relation holding `jobs`."""
    return testing.Relation(
        "database-backup",
        interface="database_backup",
        remote_app_name="backup-manager",
        remote_app_data={**requests_databag(jobs), **app_data},
    )


@pytest.fixture(autouse=True)
def fake_apt(monkeypatch: pytest.MonkeyPatch) -> FakeApt:
    """No unit test reaches the machine's apt: the charmlibs-apt module is swapped."""
    FAKE_APT.reset()
    monkeypatch.setattr(packages, "apt", FAKE_APT)
    return FAKE_APT


@pytest.fixture
def server(tmp_path: Path) -> FakeServer:
    return FakeServer("mysql", tmp_path / "root")


@pytest.fixture
def launcher(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLauncher]:
    fake = FakeLauncher()
    monkeypatch.setattr(runner, "start_worker", fake)
    yield fake
    fake.close()


@pytest.fixture
def ctx(server: FakeServer) -> testing.Context[Any]:
    """A Context for the charm (unit 0), with the fake server and no juju-exec."""
    return make_ctx(server)


def make_ctx(server: FakeServer, unit_id: int = 0) -> testing.Context[Any]:
    """A Context for unit `unit_id` of the charm, with the fake server and no juju-exec."""
    base = mysql_charm_module().MySQLServerCharm

    class Charm(base):
        server_factory: Callable[[str], Server] = staticmethod(
            lambda flavour: _reflavour(server, flavour)
        )
        notify_command = staticmethod(lambda unit, charm_dir: None)

    return testing.Context(
        Charm,
        meta=yaml.safe_load((MYSQL / "metadata.yaml").read_text()),
        actions=yaml.safe_load((MYSQL / "actions.yaml").read_text()),
        config=yaml.safe_load((MYSQL / "config.yaml").read_text()),
        unit_id=unit_id,
    )


def _reflavour(server: FakeServer, flavour: str) -> FakeServer:
    from mysql_provider.workload import FLAVOURS

    server.flavour = FLAVOURS[flavour]
    return server


def state(*relations: testing.RelationBase, leader: bool = True, **kwargs: Any) -> testing.State:
    """A state with the peer relation, the credentials and the backup user's password.

    The flavour is `mysql` unless the test says otherwise: these tests cover the MySQL
    command lines, which cannot run for real here (the default flavour is `mariadb`).
    """
    peers = [r for r in relations if isinstance(r, testing.PeerRelation)]
    others = [r for r in relations if not isinstance(r, testing.PeerRelation)]
    peer = peers or [testing.PeerRelation("mysql-peers")]
    secrets = kwargs.pop("secrets", [CREDENTIALS, PASSWORD])
    config = {"flavour": "mysql", **kwargs.pop("config", {})}
    return testing.State(
        leader=leader, relations=[*others, *peer], secrets=secrets, config=config, **kwargs
    )


def relation_in(out: testing.State, relation_id: int) -> testing.Relation:
    """The regular relation `relation_id` of `out`."""
    found = out.get_relation(relation_id)
    assert isinstance(found, testing.Relation)
    return found


def statuses(out: testing.State, rel: testing.Relation) -> dict[str, dict[str, Any]]:
    """The statuses the unit published on `rel`, by job id."""
    items = json.loads(out.get_relation(rel.id).local_unit_data.get("jobs", "[]"))
    return {item["job-id"]: item for item in items}
