"""One mysql-server deployment (one leader unit) in the end-to-end harness.

The charm's real code runs through Scenario; its jobs run as real detached workers against
a fixture `mariadbd` (the `FixtureServer` seam of the workload tests: no apt, no systemd).
Binlog shipping is the charm's real `Shipper`, with `systemctl` answered by a small
stand-in that remembers whether the timer is enabled; the harness fires the timer by
running exactly the command its service unit would run (`Shipper.command()`, clean env).
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

from mysql_provider.shipping import UNIT, Shipper
from ops import testing

from database_backup.jobs import JobStore, clean_env, hook_python_path
from tests.infra.mariadb import MariaDBServer
from tests.workload.provider_helpers import FixtureServer, provider_context

APP = "mysql-server"
ENDPOINT = "database-backup"
PEER = "mysql-peers"


class FakeSystemd:
    """Answers `systemctl` for the shipping timer: remembers enable/disable in a file."""

    def __init__(self, directory: Path) -> None:
        self.flag = directory / f"{UNIT}.timer.enabled"

    def __call__(self, argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        """Run one `systemctl ...` command line."""
        args = argv[1:]
        code = 0
        if args[:1] == ["is-active"]:
            code = 0 if self.flag.exists() else 3
        elif args[:1] == ["enable"]:
            self.flag.parent.mkdir(parents=True, exist_ok=True)
            self.flag.touch()
        elif args[:1] == ["disable"]:
            self.flag.unlink(missing_ok=True)
        return subprocess.CompletedProcess(argv, code, "", "")

    @property
    def enabled(self) -> bool:
        """Whether the timer is enabled now."""
        return self.flag.exists()


class E2EServer(FixtureServer):
    """The fixture server, with a shipping timer that the harness can fire."""

    def __init__(self, db: MariaDBServer, root: Path) -> None:
        super().__init__(db, root)
        self.systemd = FakeSystemd(self.state_dir / "systemd")

    def shipper(self) -> Shipper:
        return Shipper(
            self.state_dir / "shipping",
            systemd_dir=self.state_dir / "systemd",
            run=self.systemd,
            python_path=hook_python_path(),
            binlog_dir=self.db.binlog_dir,
        )


@dataclasses.dataclass
class Deployment:
    """A mysql-server application with one (leader) unit on its own MariaDB."""

    name: str
    db: MariaDBServer
    root: Path
    model: testing.Model
    app: str = APP  # the application's name (`juju deploy mysql-server <app>`)

    def __post_init__(self) -> None:
        self.marker = self.root / "job-finished.log"
        self.handled = 0
        self.server = E2EServer(self.db, self.root / "host")
        self.ctx = provider_context(self.server, self.marker, app_name=self.app)
        self.state: testing.State = testing.State(
            leader=True,
            config={"flavour": "mariadb"},
            relations=[testing.PeerRelation(PEER)],
            model=self.model,
        )

    @property
    def unit(self) -> str:
        """The unit's name."""
        return f"{self.app}/0"

    @property
    def jobs(self) -> JobStore:
        """The unit's local job store (what the workers run)."""
        return JobStore(self.server.state_dir / "jobs")

    def running(self) -> bool:
        """Whether a worker still runs a job on this unit."""
        return bool(self.jobs.running())

    def hand_backs(self) -> tuple[int, bool]:
        """(hand-backs not handled yet, whether a worker is still to finish or hand back).

        Read in this order (marker, then running jobs, then ended jobs) so that a worker
        ending in between is never missed: it ends before it hands back. Workers that ran
        to their end (an exit code is recorded) hand back once each; a worker that
        `update-status` found dead never does.
        """
        lines = len(self.marker.read_text().splitlines()) if self.marker.exists() else 0
        if self.jobs.running():
            return lines - self.handled, True
        ended = 0
        for job in self.jobs.jobs():
            finished = job.finished_record()
            if finished is not None and "exit_code" in finished and job.record.notify:
                ended += 1
        return lines - self.handled, ended > lines

    def relation(self) -> testing.Relation | None:
        """The `database-backup` relation as this unit sees it, if related."""
        for relation in self.state.relations:
            if relation.endpoint == ENDPOINT and isinstance(relation, testing.Relation):
                return relation
        return None

    def unit_databag(self) -> dict[str, str]:
        """This unit's databag on the `database-backup` relation."""
        relation = self.relation()
        return dict(relation.local_unit_data) if relation is not None else {}

    def fire_shipping_timer(self) -> subprocess.CompletedProcess[str] | None:
        """Run what the timer's service runs, if the charm enabled the timer; else None."""
        shipper = self.server.shipper()
        if not self.server.systemd.enabled or not shipper.spec_path.exists():
            return None
        return subprocess.run(
            shipper.command(),
            env=clean_env(hook_python_path()),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def worker_logs(self) -> str:
        """The tail of every worker log of this unit (for assertion messages)."""
        logs = sorted(self.server.state_dir.rglob("worker.log"))
        return "\n".join(f"{p}:\n{p.read_text()[-1500:]}" for p in logs)
