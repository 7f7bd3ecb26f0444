"""Helpers shared by the engine's workload tests (backup, restore, faults, command line)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from database_backup.mysql import ConnectionSpec, ProgressEvent
from tests.infra.mariadb import MariaDBServer

#: a string that appears in the table data; found in plain artefacts, never in encrypted ones
NEEDLE = "needle-7f3a9c-in-the-haystack"


def connection(server: MariaDBServer) -> ConnectionSpec:
    """How the engine reaches `server` (TCP, password auth: like a charm would)."""
    return ConnectionSpec(
        user=server.user, password=server.password, host=server.host, port=server.port
    )


def fill(server: MariaDBServer, database: str, rows: int = 20_000) -> None:
    """Create `database` with InnoDB, Aria and MyISAM tables holding `rows` rows each."""
    server.execute(
        f"DROP DATABASE IF EXISTS `{database}`;"  # noqa: S608 - test data
        f"CREATE DATABASE `{database}`;"
        f"USE `{database}`;"
        "CREATE TABLE orders (id INT PRIMARY KEY, customer VARCHAR(40), amount DECIMAL(12,2),"
        " note TEXT) ENGINE=InnoDB;"
        "INSERT INTO orders SELECT seq, CONCAT('customer-', seq % 97), seq * 1.25,"
        f" CONCAT('{NEEDLE}-', REPEAT(MD5(seq), 3)) FROM seq_1_to_{rows};"
        "CREATE TABLE events (id INT PRIMARY KEY, kind VARCHAR(20), at DATETIME) ENGINE=Aria;"
        "INSERT INTO events SELECT seq, ELT(1 + seq % 3, 'open', 'pay', 'ship'),"
        f" '2026-01-01' + INTERVAL seq MINUTE FROM seq_1_to_{rows};"
        "CREATE TABLE legacy (id INT PRIMARY KEY, v BIGINT) ENGINE=MyISAM;"
        f"INSERT INTO legacy SELECT seq, seq * seq FROM seq_1_to_{rows};"
    )


def change(server: MariaDBServer, database: str) -> None:
    """Change data after a backup: updates, deletes, a dropped table, a new database."""
    server.execute(
        f"UPDATE `{database}`.orders SET amount = amount + 1 WHERE id % 3 = 0;"  # noqa: S608 - test data
        f"DELETE FROM `{database}`.events WHERE id > 100;"
        f"DROP TABLE `{database}`.legacy;"
        f"CREATE TABLE `{database}`.added (id INT PRIMARY KEY);"
        f"INSERT INTO `{database}`.added VALUES (1), (2);"
        "CREATE DATABASE IF NOT EXISTS after_backup;"
    )


def databases(server: MariaDBServer) -> set[str]:
    """User databases on the server."""
    system = {"information_schema", "mysql", "performance_schema", "sys"}
    return {row[0] for row in server.query("SHOW DATABASES")} - system


def sha256_of(data: bytes) -> str:
    """Hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def siblings(datadir: Path) -> list[str]:
    """Names beside the datadir that a restore could have left behind."""
    return sorted(
        path.name for path in datadir.parent.iterdir() if path.name.startswith(datadir.name + ".")
    )


class Recorder:
    """Progress callback that keeps every event."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def phases(self) -> list[str]:
        """Distinct phases in the order first seen."""
        seen: list[str] = []
        for event in self.events:
            if event.phase not in seen:
                seen.append(event.phase)
        return seen


class FaultyServer:
    """ServerControl over a test server with injectable faults.

    Attributes:
        fail_starts: how many of the next `start()` calls fail without starting.
        before_stop: called just before the server is stopped (the staged data is ready
            then: a test can damage it to make the real server refuse to start).
    """

    def __init__(self, server: MariaDBServer) -> None:
        self.server = server
        self.fail_starts = 0
        self.before_stop: Callable[[], None] | None = None
        self.calls: list[str] = []

    @property
    def datadir(self) -> Path:
        """The server's data directory."""
        return self.server.datadir

    def stop(self) -> None:
        """Stop the server (after the `before_stop` hook)."""
        self.calls.append("stop")
        if self.before_stop is not None:
            hook, self.before_stop = self.before_stop, None
            hook()
        self.server.stop()

    def start(self) -> None:
        """Start the server, unless a failure is pending."""
        self.calls.append("start")
        if self.fail_starts > 0:
            self.fail_starts -= 1
            raise RuntimeError("injected fault: the server refused to start")
        self.server.start()

    def is_running(self) -> bool:
        """Whether the server runs."""
        return self.server.is_running()
