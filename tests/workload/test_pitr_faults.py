"""A point-in-time recovery that fails anywhere puts the previous data back (real MariaDB, RGW).

The CLI runs as a separate process (as the charm's worker does) and is killed during the
binlog replay (SIGKILL, then `recover`; SIGTERM, which rolls back by itself) and during
the physical step (SIGKILL after the swap). Each time the data afterwards is the data
from before the recovery (CHECKSUM TABLE equal), the server answers, and what the engine
says (journal, state file, `recover`'s output) names the restore's kind and phase.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from database_backup.storage import S3Config
from database_backup.stream import generate_key
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import (
    assert_put_back_after_sigterm,
    cli_argv,
    cli_env,
    cli_server,
    databases,
    fill,
    run_cli,
    siblings,
    stop_command,
)

#: rows written after the backup: enough binlog that the replay takes a while
_BULK_ROWS = 300_000


@pytest.fixture(scope="module")
def server(make_mariadb: Callable[..., MariaDBServer]) -> Iterator[MariaDBServer]:
    # log_slave_updates as the charm configures it, so a replay may take the server's
    # applier route (binlog/applier.py) as in production (test_replay_applier.py proves
    # that route under faults); either way nothing may be left behind
    db = make_mariadb("pitr-faults", extra_args=("--log-slave-updates",))
    yield db
    if not db.is_running() and db.pid_file.exists():
        # restarted by the CLI's start command: stop that process
        subprocess.run(stop_command(db), check=False, timeout=60)
    db.stop()


def _spec(db: MariaDBServer, config: S3Config, tmp_path: Path, key: bytes, **server: Any) -> Path:
    spec: dict[str, Any] = {
        "cluster-id": f"model-pitr-faults/{tmp_path.name}",
        "storage": {"bucket": config.bucket, "endpoint": config.endpoint, "path": "faults"},
        **cli_server(db),
        "encryption-key": base64.b64encode(key).decode(),
        "workdir": str(tmp_path / "work"),
    }
    spec["server"] = {**spec["server"], **server}
    path = tmp_path / ("spec.json" if not server else "slow-spec.json")
    path.write_text(json.dumps(spec))
    path.chmod(0o600)
    return path


def _ok(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _history(db: MariaDBServer, spec: Path, config: S3Config, tmp_path: Path) -> str:
    """Backup, a bulk of binlog after it, a target, then more changes; return the target."""
    state = tmp_path / "setup.json"
    db.execute("DROP DATABASE IF EXISTS after_target;")
    fill(db, "shop", rows=2_000)
    _ok(run_cli(["ship-binlogs", "--flush"], spec, config, state))
    _ok(run_cli(["backup"], spec, config, state))
    # many statements of 20,000 rows: each replayed event stays under max_allowed_packet
    chunks = [
        f"INSERT INTO bulk SELECT seq, MD5(seq) FROM seq_{first}_to_{first + 19_999};"  # noqa: S608 - test data
        f"UPDATE bulk SET v = SHA1(v) WHERE id BETWEEN {first} AND {first + 19_999};"
        for first in range(1, _BULK_ROWS, 20_000)
    ]
    db.execute(
        "USE shop; CREATE TABLE bulk (id INT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB;"
        + "".join(chunks)
    )
    time.sleep(1.1)
    target = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    time.sleep(1.1)
    db.execute("UPDATE shop.orders SET amount = 1 WHERE id < 50; CREATE DATABASE after_target;")
    _ok(run_cli(["ship-binlogs", "--flush"], spec, config, state))
    return target


def _journal(db: MariaDBServer) -> Path:
    return db.datadir.parent / f"{db.datadir.name}.restore-journal.json"


def _start(args: list[str], spec: Path, config: S3Config, state: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cli_argv(args, spec, state),
        env=cli_env(config),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait(check: Callable[[], bool], what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    pytest.fail(f"never reached: {what}")


def _journal_is(db: MariaDBServer, state: str) -> Callable[[], bool]:
    def check() -> bool:
        document = json.loads(_journal(db).read_text())
        return document["state"] == state and document["kind"] == "pitr"

    return check


def _kill(worker: subprocess.Popen[bytes]) -> None:
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


def _previous_data_back(db: MariaDBServer, before: dict[str, str]) -> None:
    assert db.query("SELECT 1")  # the server answers
    assert db.checksum_tables("shop") == before
    assert db.query("SHOW ALL SLAVES STATUS") == []  # no replay connection left behind
    assert "after_target" in databases(db)
    assert not _journal(db).exists()
    # no staged, previous or failed copy and no journal left (a lock file may stay)
    assert [name for name in siblings(db.datadir) if "restore-" in name] == []


def test_sigkill_during_replay_then_recover_puts_previous_data_back(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    key = generate_key()
    spec = _spec(server, s3_config, tmp_path, key)
    target = _history(server, spec, s3_config, tmp_path)
    before = server.checksum_tables("shop")
    marker = tmp_path / "work" / "binlogs" / "binlog-timeline.json"
    timeline_before = json.loads(marker.read_text())["timeline"]
    worker = _start(["pitr", "--target", target], spec, s3_config, tmp_path / "p.json")
    replaying = _journal_is(server, "replaying")

    def claimed() -> bool:  # replaying, and the recovery claimed its new timeline
        return replaying() and json.loads(marker.read_text())["timeline"] != timeline_before

    try:
        _wait(claimed, "the replaying state with a new timeline claimed")
    finally:
        _kill(worker)
    document = json.loads(_journal(server).read_text())
    assert (document["kind"], document["phase"]) == ("pitr", "replaying")

    recover = run_cli(["recover"], spec, s3_config, tmp_path / "rec.json")

    assert recover.returncode == 0, recover.stderr
    assert "the pitr restore died while replaying" in recover.stdout
    assert "put the previous data back" in recover.stdout
    _previous_data_back(server, before)
    assert json.loads(marker.read_text())["timeline"] == timeline_before  # the marker is back


def test_sigterm_during_replay_puts_previous_data_back(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    key = generate_key()
    spec = _spec(server, s3_config, tmp_path, key)
    target = _history(server, spec, s3_config, tmp_path)
    before = server.checksum_tables("shop")
    state = tmp_path / "p.json"
    worker = _start(["pitr", "--target", target], spec, s3_config, state)
    _wait(_journal_is(server, "replaying"), "the journal's replaying state")

    worker.send_signal(signal.SIGTERM)

    assert_put_back_after_sigterm(worker, state)
    _previous_data_back(server, before)


def test_sigkill_during_physical_step_then_recover_puts_previous_data_back(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    key = generate_key()
    spec = _spec(server, s3_config, tmp_path, key)
    target = _history(server, spec, s3_config, tmp_path)
    before = server.checksum_tables("shop")
    # a server that never starts: the PITR stays between the swap and the replay
    slow = _spec(server, s3_config, tmp_path, key, start=["sh", "-c", "sleep 60"])
    worker = _start(["pitr", "--target", target], slow, s3_config, tmp_path / "p.json")
    try:
        _wait(_journal_is(server, "swapped"), "the journal's swapped state")
    finally:
        _kill(worker)
    document = json.loads(_journal(server).read_text())
    assert (document["kind"], document["phase"]) == ("pitr", "swapped")

    recover = run_cli(["recover"], spec, s3_config, tmp_path / "rec.json")

    assert recover.returncode == 0, recover.stderr
    assert "the pitr restore died while swapped" in recover.stdout
    _previous_data_back(server, before)
