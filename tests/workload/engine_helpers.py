"""Helpers shared by the engine's workload tests (backup, restore, faults, command line)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from database_backup.catalog import BackupMetadata, new_backup_id
from database_backup.mysql import ConnectionSpec, ProgressEvent
from database_backup.storage import S3Config
from database_backup.storage.checksum import PartsChecksum
from tests.infra.mariadb import MariaDBServer
from tests.unit.storage.slices import checksum_by_slices

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


def checksum_of(data: bytes, meta: BackupMetadata) -> str:
    """The catalog checksum of `data`, computed here from slices (not the product's hasher).

    A whole-artefact sha256, or the SHA-256 of the SHA-256s of the parts `meta`'s plan cuts.
    """
    check = meta.checksum
    if not isinstance(check, PartsChecksum):
        return sha256_of(data)
    return checksum_by_slices(data, check.plan)


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
        fail_stops: how many of the next `stop()` calls fail without stopping.
        before_stop: called just before the server is stopped (the staged data is ready
            then: a test can damage it to make the real server refuse to start).
    """

    def __init__(self, server: MariaDBServer) -> None:
        self.server = server
        self.fail_starts = 0
        self.fail_stops = 0
        self.before_stop: Callable[[], None] | None = None
        self.calls: list[str] = []

    @property
    def datadir(self) -> Path:
        """The server's data directory."""
        return self.server.datadir

    def stop(self) -> None:
        """Stop the server (after the `before_stop` hook), unless a failure is pending."""
        self.calls.append("stop")
        if self.fail_stops > 0:
            self.fail_stops -= 1
            raise RuntimeError("injected fault: the server refused to stop")
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


def new_id() -> str:
    """A fresh backup id (now)."""
    return new_backup_id(datetime.now(timezone.utc))


def server_pattern(db: MariaDBServer) -> str:
    """An extended regex (`pgrep -f`) for a `mariadbd` on the test server's datadir.

    It matches the server whatever started it, also one still starting (no pid file yet),
    and not a shell whose script merely names the server.
    """
    binary, datadir = db.server_args()[0], f"--datadir={db.datadir}"
    return f"^{_ere(binary)} .*{_ere(datadir)}( |$)"


def _ere(text: str) -> str:
    return re.sub(r"([.\[\]()*+?{}|^$\\])", r"\\\1", text)


def server_pids(db: MariaDBServer) -> list[int]:
    """The pids of every `mariadbd` running on the test server's datadir."""
    found = subprocess.run(
        ["pgrep", "-f", "--", server_pattern(db)], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in found.stdout.split()]


def stop_command(db: MariaDBServer) -> list[str]:
    """A `server.stop` command for the CLI: TERM every server on the datadir, wait for its end.

    Like a systemd unit's stop, it also stops a server still starting, and succeeds when
    none runs.
    """
    pattern = shlex.quote(server_pattern(db))
    return [
        "sh",
        "-c",
        f"i=0; while pgrep -f -- {pattern} >/dev/null; do "
        f"[ $((i % 10)) -eq 0 ] && pkill -TERM -f -- {pattern}; i=$((i+1)); "
        '[ "$i" -gt 1200 ] && exit 1; sleep 0.1; done',
    ]


def shutdown(db: MariaDBServer) -> None:
    """Stop a fixture server, also when a restore started it outside the fixture."""
    db.stop()
    if subprocess.run(stop_command(db), check=False, timeout=150).returncode != 0:
        for pid in server_pids(db):  # one that ignores SIGTERM must not outlive the tests
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def start_command(db: MariaDBServer, after_spawn: str = "") -> list[str]:
    """A `server.start` command for the CLI: start the test server, wait until it answers.

    `after_spawn` is shell run once the server process exists, before the first ping.
    """
    server = " ".join(shlex.quote(arg) for arg in db.server_args())
    ping = f"mariadb-admin --defaults-file={shlex.quote(str(db.defaults_file))} ping"
    return [
        "sh",
        "-c",
        f"setsid {server} >/dev/null 2>&1 < /dev/null & {after_spawn}"
        f"i=0; until {ping} >/dev/null 2>&1; do i=$((i+1)); "
        '[ "$i" -gt 300 ] && exit 1; sleep 0.1; done',
    ]


def cli_server(db: MariaDBServer) -> dict[str, Any]:
    """The spec's `connection` and `server` sections: the test server, by commands."""
    return {
        "connection": {
            "host": db.host,
            "port": db.port,
            "user": db.user,
            "password": db.password,
        },
        "server": {
            "type": "command",
            "datadir": str(db.datadir),
            "start": start_command(db),
            "stop": stop_command(db),
            "status": ["mariadb-admin", f"--defaults-file={db.defaults_file}", "ping"],
        },
    }


def cli_argv(args: list[str], spec: Path, state: Path) -> list[str]:
    """The command line running `python -m database_backup.cli` with `args`."""
    return [
        sys.executable, "-m", "database_backup.cli", *args,
        "--spec", str(spec), "--state-file", str(state),
    ]  # fmt: skip


def cli_env(config: S3Config) -> dict[str, str]:
    """The CLI's environment: ours, plus the S3 keys (never in argv)."""
    env = dict(os.environ)
    env["DATABASE_BACKUP_S3_ACCESS_KEY"] = config.access_key
    env["DATABASE_BACKUP_S3_SECRET_KEY"] = config.secret_key
    return env


def start_cli(
    args: list[str], spec: Path, config: S3Config, state: Path, *, stderr: int = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    """Start the engine's command line in its own session (a detached worker); stdout dropped."""
    return subprocess.Popen(
        cli_argv(args, spec, state),
        env=cli_env(config),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )


def run_cli(
    args: list[str], spec: Path, config: S3Config, state: Path
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to its end, capturing its output."""
    return subprocess.run(
        cli_argv(args, spec, state),
        env=cli_env(config),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_put_back_after_sigterm(worker: subprocess.Popen[bytes], state: Path) -> None:
    """The CLI stopped by SIGTERM mid-restore: exit 1, the stop named, the previous data back."""
    _, stderr = worker.communicate(timeout=240)
    assert worker.returncode == 1, stderr
    document = json.loads(state.read_text())
    assert document["status"] == "error"
    assert "SIGTERM" in document["message"]
    assert "previous data was put back" in document["message"]
    assert document["data-changed"] is False


def wait_state(path: Path, done: Callable[[dict[str, Any]], bool], timeout: float = 60) -> None:
    """Wait until the state file at `path` satisfies `done` (fail the test after `timeout` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if done(json.loads(path.read_text())):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    pytest.fail(f"{path} never reached the expected state")
