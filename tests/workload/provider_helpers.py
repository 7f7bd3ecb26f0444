"""The mysql-server charm through Scenario on the real fixtures (workload and e2e tests).

`FixtureServer` is the charm's `Server` pointed at a fixture `mariadbd` (no apt, no
systemd: the engine stops and starts the server with commands); the backup user is made
with the charm's own grants. `Unit` keeps one unit's Scenario state between hooks, times
each hook, and receives the worker's hand-back in a file (in production: `juju-exec`).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import secrets
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from mysql_provider.shipping import Shipper
from mysql_provider.workload import BACKUP_USER, Server, backup_user_sql
from ops import testing
from scenario.state import _Event

from database_backup.catalog import Catalog
from database_backup.interface import JobRequest, StorageConfig
from database_backup.interface.testing import requests_databag
from database_backup.storage import S3Config, S3Storage
from tests.charms import mysql_charm_module
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import start_command, stop_command

MYSQL = Path(__file__).resolve().parents[2] / "mysql"
HOOK_BUDGET = 2.0  # seconds: every hook returns quickly, whatever the job


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
                "start": self._start(), "stop": stop_command(self.db),
                "status": status}  # fmt: skip

    def _start(self) -> list[str]:
        flag = shlex.quote(str(self.slow_start_flag))
        real = start_command(self.db)[2]
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


def provider_context(
    server: Server, marker: Path, *, app_name: str | None = None
) -> testing.Context[Any]:
    """A Context for the mysql-server charm on `server`; each finished job appends to `marker`.

    The job's notify command (`juju-exec` on a machine) writes a line to `marker` instead.
    """
    notify = [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('job-finished\\n')"]

    class Charm(mysql_charm_module().MySQLServerCharm):
        server_factory = staticmethod(lambda flavour: server)
        notify_command = staticmethod(lambda unit, charm_dir: notify)

    return testing.Context(
        Charm,
        meta=yaml.safe_load((MYSQL / "metadata.yaml").read_text()),
        actions=yaml.safe_load((MYSQL / "actions.yaml").read_text()),
        config=yaml.safe_load((MYSQL / "config.yaml").read_text()),
        app_name=app_name,
    )


class Unit:
    """One provider unit driven through Scenario, keeping its state between hooks."""

    def __init__(self, db: MariaDBServer, s3: S3Config, root: Path) -> None:
        self.root = root
        self.marker = root / "job-finished.log"
        self.server = FixtureServer(db, root / "host")
        self.ctx = provider_context(self.server, self.marker)
        #: an encryption key secret the manager would own and grant (jobs opt in to it)
        self.key = testing.Secret({"key": base64.b64encode(secrets.token_bytes(32)).decode()})
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
            secrets=[self.credentials, self.key],
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
