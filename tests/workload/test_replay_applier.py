"""Binlog replay through MariaDB's own replication applier (relay logs, parallel workers).

The target server runs like the mysql-server charm configures it (`log_slave_updates` ON)
and with the source's server id, as a server recovering its own history does: the applier
would skip events of its own id unless the replay changes it meanwhile.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import FrameType

import pytest

from database_backup import stopping
from database_backup.catalog import Catalog, new_backup_id
from database_backup.mysql import backup_full
from database_backup.mysql.binlog.applier import CONNECTION
from database_backup.mysql.binlog.replay import APPLIER, CLIENT_PIPE, ReplayError, replay
from database_backup.mysql.binlog.shipping import ship_binlogs
from database_backup.mysql.flavour import for_name
from database_backup.mysql.pitr.recover import RecoveryError, recover_to_point
from database_backup.storage import S3Config
from database_backup.stream import generate_key
from tests.infra.mariadb import MariaDBError, MariaDBServer
from tests.workload.engine_helpers import (
    cli_argv,
    cli_env,
    cli_server,
    connection,
    fill,
    run_cli,
    shutdown,
)

CLUSTER = "model-0123/replay-applier"
SERVER_OPTIONS = {"server_id": 1, "extra_args": ("--log-slave-updates",)}
MARIADB = for_name("mariadb")
SMALL_PACKET = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def source(make_mariadb: Callable[..., MariaDBServer]) -> Iterator[MariaDBServer]:
    """Where the binlogs are written (server id 1)."""
    db = make_mariadb("applier-source", server_id=1)
    yield db
    shutdown(db)


@pytest.fixture(scope="module")
def target(make_mariadb: Callable[..., MariaDBServer]) -> Iterator[MariaDBServer]:
    """Where they are replayed: the same server id, log_slave_updates ON (as the charm).

    Its applier's packet limit is the 16 MiB a user may have set (MariaDB's default: 1 GiB),
    and its parallel mode conservative (the replay's connection is set to optimistic).
    """
    db = make_mariadb(
        "applier-target", server_id=1,
        extra_args=("--log-slave-updates", f"--slave-max-allowed-packet={SMALL_PACKET}",
                    "--slave-parallel-mode=conservative"),
    )  # fmt: skip
    yield db
    shutdown(db)


def _next_second(margin: float = 0.2) -> None:
    time.sleep(1 - (time.time() % 1) + margin)


def _closed_files(db: MariaDBServer, after: set[str]) -> list[Path]:
    """The server's closed binlog files not in `after` (it rotates first)."""
    db.execute("FLUSH BINARY LOGS")
    files = sorted(db.binlog_dir.glob("bin.[0-9]*"))[:-1]
    return [path for path in files if path.name not in after]


def _names(db: MariaDBServer) -> set[str]:
    """The closed files now: what a test writes next goes to the files after them."""
    db.execute("FLUSH BINARY LOGS")
    return {path.name for path in sorted(db.binlog_dir.glob("bin.[0-9]*"))[:-1]}


def _fresh(db: MariaDBServer, database: str) -> None:
    db.execute(f"DROP DATABASE IF EXISTS {database}; RESET MASTER;")


def _left_as_a_plain_primary(db: MariaDBServer, slave_pos: str | None = None) -> None:
    """No replication connection or relay file left, the settings back.

    `gtid_slave_pos` goes back to `slave_pos`; None: it was empty, which strict mode does
    not allow behind a binary log holding the replayed GTIDs: it equals the binlog's then.
    """
    assert db.query("SHOW ALL SLAVES STATUS") == []
    assert db.scalar("SELECT @@server_id") == "1"
    expected = slave_pos if slave_pos is not None else db.scalar("SELECT @@gtid_binlog_pos")
    assert db.scalar("SELECT @@gtid_slave_pos") == expected
    assert db.scalar("SELECT @@slave_parallel_threads") == "0"
    assert not [path.name for path in db.datadir.glob(f"*{CONNECTION}*")]


def test_a_replay_to_a_moment_through_the_applier_equals_the_source_then(
    source: MariaDBServer, target: MariaDBServer, tmp_path: Path
) -> None:
    before = _names(source)
    source.execute(
        "CREATE DATABASE ap; CREATE TABLE ap.t (id INT PRIMARY KEY, n INT, note VARCHAR(64))"
        " ENGINE=InnoDB; CREATE TABLE ap.u (id INT PRIMARY KEY, n INT) ENGINE=InnoDB;"
    )
    for first in range(1, 40_001, 5_000):
        source.execute(
            f"INSERT INTO ap.t SELECT seq, seq % 7, MD5(seq) "  # noqa: S608 - test data
            f"FROM ap.seq_{first}_to_{first + 4_999};"
            f"INSERT INTO ap.u SELECT seq, seq FROM ap.seq_{first}_to_{first + 99};"
        )
        if first == 20_001:
            source.execute("FLUSH BINARY LOGS")  # several files
    source.execute("UPDATE ap.t SET n = n + 1 WHERE id % 3 = 0; DELETE FROM ap.u WHERE id < 50;")
    _next_second()
    moment = datetime.now(timezone.utc)
    at_moment = source.checksum_tables("ap")
    gtid_at_moment = source.scalar("SELECT @@gtid_binlog_pos")
    _next_second()
    source.execute("INSERT INTO ap.u VALUES (99999999, 1)")  # a second after: left out
    files = _closed_files(source, before)
    assert len(files) >= 2
    _fresh(target, "ap")

    stats = replay(
        connection(target), MARIADB, files, workdir=tmp_path,
        stop_datetime=moment.replace(microsecond=0) + timedelta(seconds=1),
    )  # fmt: skip

    assert stats.route == APPLIER
    assert target.checksum_tables("ap") == at_moment
    assert target.query("SELECT id FROM ap.u WHERE id = 99999999") == []
    assert target.scalar("SELECT @@gtid_binlog_pos") == gtid_at_moment  # logged like the pipe
    _left_as_a_plain_primary(target)


def test_a_failing_event_stops_the_replay_with_the_servers_error(
    source: MariaDBServer, target: MariaDBServer, tmp_path: Path
) -> None:
    before = _names(source)
    source.execute(
        "CREATE DATABASE dup; CREATE TABLE dup.t (id INT PRIMARY KEY) ENGINE=InnoDB;"
        "INSERT INTO dup.t VALUES (1), (2);"
    )
    source.execute("FLUSH BINARY LOGS; INSERT INTO dup.t VALUES (3); INSERT INTO dup.t VALUES (4)")
    files = _closed_files(source, before)
    _fresh(target, "dup")
    slave_pos = target.scalar("SELECT @@gtid_slave_pos")  # nothing is logged: it stays
    target.execute(  # the row the third transaction inserts is there already
        "SET SESSION sql_log_bin = 0; CREATE DATABASE dup;"
        "CREATE TABLE dup.t (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO dup.t VALUES (3);"
    )

    with pytest.raises(ReplayError, match="Duplicate entry '3'"):
        replay(connection(target), MARIADB, files[1:], workdir=tmp_path)

    assert target.query("SELECT id FROM dup.t ORDER BY id") == [("3",)]
    _left_as_a_plain_primary(target, slave_pos)


def test_sigterm_mid_replay_stops_the_applier_and_cleans_up(
    source: MariaDBServer, target: MariaDBServer, tmp_path: Path
) -> None:
    before = _names(source)
    source.execute(
        "CREATE DATABASE term; CREATE TABLE term.t (id INT PRIMARY KEY, note VARCHAR(64))"
        " ENGINE=InnoDB;"
    )
    for first in range(1, 600_001, 20_000):
        source.execute(
            f"INSERT INTO term.t SELECT seq, MD5(seq) FROM term.seq_{first}_to_{first + 19_999}"  # noqa: S608
        )
    files = _closed_files(source, before)
    _fresh(target, "term")

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise stopping.request("stopped by signal SIGTERM")

    previous = signal.signal(signal.SIGTERM, terminate)
    applying = threading.Event()
    done = threading.Event()

    def stop_once_applying() -> None:  # the signal lands while the applier runs, on any load
        while not done.is_set():
            try:
                if target.scalar("SELECT COUNT(*) FROM term.t") != "0":
                    applying.set()
                    os.kill(os.getpid(), signal.SIGTERM)
                    return
            except MariaDBError:
                pass
            time.sleep(0.005)

    watcher = threading.Thread(target=stop_once_applying, daemon=True)
    watcher.start()
    try:
        with pytest.raises(stopping.TerminatedError):
            replay(connection(target), MARIADB, files, workdir=tmp_path)
    finally:
        done.set()
        watcher.join(10)
        signal.signal(signal.SIGTERM, previous)
        stopping.clear()
    assert applying.is_set()

    rows = int(target.scalar("SELECT COUNT(*) FROM term.t"))
    assert 0 <= rows < 600_000  # stopped part way
    _left_as_a_plain_primary(target)


def test_a_transaction_larger_than_the_default_packet_limit_goes_through_the_applier(
    source: MariaDBServer, target: MariaDBServer, tmp_path: Path
) -> None:
    before = _names(source)
    source.execute(
        "CREATE DATABASE big; CREATE TABLE big.t (id INT PRIMARY KEY, note VARCHAR(200))"
        " ENGINE=InnoDB;"
        "INSERT INTO big.t SELECT seq, REPEAT(MD5(seq), 3) FROM big.seq_1_to_150000;"
        "UPDATE big.t SET note = REPEAT(SHA1(id), 4);"  # one statement, every row
    )
    source.execute("SET GLOBAL max_allowed_packet = 64 * 1024 * 1024")
    source.execute(  # a new session takes the raised limit: one 20 MiB row, one event
        "CREATE TABLE big.b (id INT PRIMARY KEY, v LONGBLOB) ENGINE=InnoDB;"
        "INSERT INTO big.b VALUES (1, REPEAT('x', 20 * 1024 * 1024));"
    )
    files = _closed_files(source, before)
    assert sum(path.stat().st_size for path in files) > 24 * 1024 * 1024
    _fresh(target, "big")

    stats = replay(connection(target), MARIADB, files, workdir=tmp_path)

    assert stats.route == APPLIER
    assert target.checksum_tables("big") == source.checksum_tables("big")
    assert target.scalar("SELECT @@slave_max_allowed_packet") == str(SMALL_PACKET)  # put back


def test_without_log_slave_updates_the_client_pipe_runs_and_says_why(
    source: MariaDBServer, make_mariadb: Callable[..., MariaDBServer], tmp_path: Path
) -> None:
    plain = make_mariadb("applier-plain", server_id=1)
    try:
        before = _names(source)
        source.execute(
            "CREATE DATABASE fb; CREATE TABLE fb.t (id INT PRIMARY KEY) ENGINE=InnoDB;"
            "INSERT INTO fb.t SELECT seq FROM fb.seq_1_to_1000;"
        )
        files = _closed_files(source, before)
        _fresh(plain, "fb")

        stats = replay(connection(plain), MARIADB, files, workdir=tmp_path)

        assert stats.route == CLIENT_PIPE
        assert "log_slave_updates is OFF" in stats.fallback
        assert plain.checksum_tables("fb") == source.checksum_tables("fb")
        with pytest.raises(ReplayError, match="applier cannot be used: log_slave_updates"):
            replay(connection(plain), MARIADB, files, workdir=tmp_path, route=APPLIER)
    finally:
        shutdown(plain)


# -- through a whole point-in-time recovery (RGW) --------------------------------------


def test_a_recovery_replays_through_the_applier_and_stops_at_the_moment(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
) -> None:
    key, conn, work = generate_key(), connection(server), tmp_path / "work"
    fill(server, "rc", rows=2_000)
    ship_binlogs(conn, catalog, workdir=work, key=key, flush=True)
    backup_full(conn, catalog, backup_id=new_backup_id(datetime.now(timezone.utc)), key=key,
                workdir=tmp_path / "b")  # fmt: skip
    server.execute("UPDATE rc.orders SET amount = amount + 1 WHERE id <= 500; FLUSH BINARY LOGS")
    server.execute("DELETE FROM rc.orders WHERE id > 1900")
    _next_second()
    moment = datetime.now(timezone.utc)
    at_moment = server.checksum_tables("rc")
    gtid_at_moment = server.scalar("SELECT @@gtid_binlog_pos")
    _next_second()
    server.execute("UPDATE rc.orders SET amount = 0")  # the mistake, a second later

    result = recover_to_point(conn, server, catalog, moment, workdir=work, key=key)

    assert result.to_dict()["replay-route"] == APPLIER
    assert server.checksum_tables("rc") == at_moment
    assert server.scalar("SELECT @@gtid_binlog_pos") == gtid_at_moment
    assert result.gtid_after == gtid_at_moment
    _left_as_a_plain_primary(server)


def test_a_recovery_whose_replay_fails_puts_the_previous_data_back(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
) -> None:
    key, conn, work = generate_key(), connection(server), tmp_path / "work"
    fill(server, "rf", rows=1_000)
    ship_binlogs(conn, catalog, workdir=work, key=key, flush=True)
    backup_full(conn, catalog, backup_id=new_backup_id(datetime.now(timezone.utc)), key=key,
                workdir=tmp_path / "b")  # fmt: skip
    server.execute(  # a row the backup does not have, left out of the binlog, then updated
        "SET SESSION sql_log_bin = 0; INSERT INTO rf.orders (id, amount) VALUES (777777, 1);"
        "SET SESSION sql_log_bin = 1; UPDATE rf.orders SET amount = 2 WHERE id = 777777;"
    )
    now = server.checksum_tables("rf")
    slave_pos = server.scalar("SELECT @@gtid_slave_pos")

    with pytest.raises(RecoveryError, match="previous data was put back") as caught:
        recover_to_point(conn, server, catalog, None, workdir=work, key=key)

    assert caught.value.data_changed is False
    assert "applier stopped" in str(caught.value)
    assert server.checksum_tables("rf") == now
    _left_as_a_plain_primary(server, slave_pos)


# -- a worker killed while the applier runs (the CLI, as the charm's worker) -----------


def test_a_worker_killed_while_the_applier_runs_is_undone_by_recover(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "cluster-id": f"{CLUSTER}-{tmp_path.name}",
                "storage": {"bucket": s3_config.bucket, "endpoint": s3_config.endpoint},
                **cli_server(server),
                "encryption-key": base64.b64encode(generate_key()).decode(),
                "workdir": str(tmp_path / "work"),
            }
        )
    )
    spec.chmod(0o600)
    fill(server, "kill", rows=1_000)
    for command in (["ship-binlogs", "--flush"], ["backup"]):
        assert run_cli(command, spec, s3_config, tmp_path / "s.json").returncode == 0
    bulk = "".join(
        f"INSERT INTO bulk SELECT seq, MD5(seq) FROM seq_{first}_to_{first + 19_999};"  # noqa: S608 - test data
        for first in range(1, 400_000, 20_000)
    )
    server.execute(
        "USE kill; CREATE TABLE bulk (id INT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB;" + bulk
    )
    server.execute("FLUSH BINARY LOGS; DROP TABLE kill.orders")  # the mistake
    assert (
        run_cli(["ship-binlogs", "--flush"], spec, s3_config, tmp_path / "s.json").returncode == 0
    )
    before = server.checksum_tables("kill")
    worker = subprocess.Popen(
        cli_argv(["pitr", "--target", "latest"], spec, tmp_path / "p.json"),
        env=cli_env(s3_config), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not any(row[0] == CONNECTION for row in _slaves(server)):
            assert worker.poll() is None, "the recovery ended before the applier was seen"
            assert time.monotonic() < deadline, "no applier seen"
            time.sleep(0.05)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()

    recover = run_cli(["recover"], spec, s3_config, tmp_path / "r.json")

    assert recover.returncode == 0, recover.stderr
    assert "put the previous data back" in recover.stdout
    assert server.checksum_tables("kill") == before
    assert server.query("SHOW ALL SLAVES STATUS") == []
    assert server.scalar("SELECT @@server_id") == "1"
    assert not [path.name for path in server.datadir.glob(f"*{CONNECTION}*")]


def _slaves(db: MariaDBServer) -> list[tuple[str, ...]]:
    try:
        return db.query("SHOW ALL SLAVES STATUS")
    except MariaDBError:  # the server is being restarted by the restore
        return []
