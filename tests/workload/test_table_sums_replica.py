"""Table sums on a real MariaDB replica with ``log_slave_updates`` OFF (MariaDB's default).

What replication applies there is not in the replica's binlog: the binlog window that ties
a sum to the backup's point cannot see it. A sum is recorded only when replication applied
nothing during the backup; otherwise every table is skipped and ``error`` says why and what
to set, never a sum of data the backup does not hold.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from database_backup.catalog import BackupMetadata, Catalog, new_backup_id
from database_backup.mysql import backup_full, detect
from database_backup.mysql.logical.dump import backup_logical
from database_backup.mysql.tablesums import TableSums, record_for_backup
from database_backup.mysql.tablesums.replication import HIDDEN_CHANGES
from tests.infra.mariadb import MariaDBServer
from tests.unit.catalog.factories import backup
from tests.workload.engine_helpers import connection, fill, shutdown

CLUSTER = "model-0123/table-sums-replica"


@pytest.fixture(scope="module")
def pair(
    make_mariadb: Callable[..., MariaDBServer],
) -> Iterator[tuple[MariaDBServer, MariaDBServer]]:
    """A primary and its replica (binlog on, ``log_slave_updates`` OFF), replicating by GTID."""
    primary = make_mariadb("sums-primary", server_id=11)
    replica = make_mariadb("sums-replica", server_id=12)
    primary.execute(
        "SET SESSION sql_log_bin = 0;"
        "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-password';"
        "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';"
        "SET SESSION sql_log_bin = 1;"
        "RESET MASTER;"
    )
    replica.execute(
        "RESET MASTER;"
        f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary.port},"
        " MASTER_USER='repl', MASTER_PASSWORD='repl-password', MASTER_USE_GTID=slave_pos;"
        "START SLAVE;"
    )
    assert replica.scalar("SELECT @@log_slave_updates") == "0"
    fill(primary, "rep", rows=2000)
    caught_up(primary, replica)
    yield primary, replica
    shutdown(replica)
    shutdown(primary)


def caught_up(primary: MariaDBServer, replica: MariaDBServer, timeout: float = 60) -> None:
    """Wait until the replica has applied everything the primary wrote."""
    target = primary.scalar("SELECT @@gtid_binlog_pos")
    give_up = time.monotonic() + timeout
    while replica.scalar("SELECT @@gtid_slave_pos") != target:
        assert time.monotonic() < give_up, replica.scalar("SELECT @@gtid_slave_pos")
        time.sleep(0.05)


@contextlib.contextmanager
def writing(primary: MariaDBServer) -> Iterator[None]:
    """The primary changes a row every 20 ms (replicated) while the block runs."""
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            row = n % 2000 + 1
            primary.execute(f"UPDATE rep.orders SET amount = amount + 1 WHERE id = {row};")  # noqa: S608
            time.sleep(0.02)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        time.sleep(0.2)
        yield
    finally:
        stop.set()
        writer.join()


def take(kind: str, replica: MariaDBServer, catalog: Catalog, workdir: Path) -> BackupMetadata:
    """A real backup of the replica: ``physical`` (full) or ``logical`` (database rep)."""
    backup_id = new_backup_id(datetime.now(timezone.utc))
    if kind == "physical":
        return backup_full(connection(replica), catalog, backup_id=backup_id, workdir=workdir)
    return backup_logical(
        connection(replica), catalog, backup_id=backup_id, databases=["rep"], workdir=workdir
    )


def sums_of(meta: BackupMetadata) -> TableSums:
    assert meta.table_sums is not None
    return TableSums.from_dict(meta.table_sums)


def recorded(sums: TableSums) -> dict[str, tuple[int, int | None]]:
    return {name: (item.rows, item.checksum) for name, item in sums.tables.items()}


def live(server: MariaDBServer) -> dict[str, tuple[int, int | None]]:
    measured: dict[str, tuple[int, int | None]] = {}
    for table in ("orders", "events", "legacy"):
        # read, not the count the table stores: an Aria table filled by replication can
        # store a wrong one (see test_an_aria_table_filled_by_replication_is_counted_by_reading)
        rows = int(server.scalar(f"SELECT SUM(1) FROM rep.{table}"))  # noqa: S608
        checksum = server.query(f"CHECKSUM TABLE rep.{table} EXTENDED")[0][1]
        measured[f"rep.{table}"] = (rows, int(checksum))
    return measured


def test_an_aria_table_filled_by_replication_is_counted_by_reading(
    pair: tuple[MariaDBServer, MariaDBServer], tmp_path: Path
):
    """First in the module: the backups below flush the tables, which mends the count."""
    primary, replica = pair
    # on MariaDB 10.11.19 the replica's Aria table stores 557 here: not its rows
    stored = int(replica.scalar("SELECT COUNT(*) FROM rep.events"))
    read = int(replica.scalar("SELECT SUM(1) FROM rep.events"))
    assert read == int(primary.scalar("SELECT COUNT(*) FROM rep.events")) == 2000
    file, position = replica.query("SHOW MASTER STATUS")[0][:2]
    meta = replace(backup("r0", 1), binlog_file=file, binlog_position=int(position))
    applied = replica.scalar("SELECT @@gtid_slave_pos")

    sums = record_for_backup(
        connection(replica), detect(connection(replica)), meta, workdir=tmp_path, since=applied
    )

    assert sums.error is None
    assert sums.tables["rep.events"].rows == read, f"the table stores {stored}"


def test_a_table_replication_changed_after_the_backup_point_is_not_recorded(
    pair: tuple[MariaDBServer, MariaDBServer], tmp_path: Path
):
    primary, replica = pair
    file, position = replica.query("SHOW MASTER STATUS")[0][:2]
    meta = replace(backup("r1", 1), binlog_file=file, binlog_position=int(position))
    at_backup = live(replica)
    # replicated after the backup's point: the replica's own binlog does not move
    primary.execute("UPDATE rep.orders SET amount = amount + 1 WHERE id < 10;")
    caught_up(primary, replica)
    assert replica.query("SHOW MASTER STATUS")[0][:2] == (file, position)
    assert live(replica)["rep.orders"] != at_backup["rep.orders"]

    sums = record_for_backup(
        connection(replica), detect(connection(replica)), meta, workdir=tmp_path
    )

    assert recorded(sums) == {}
    assert sums.error == HIDDEN_CHANGES
    assert sums.skipped["rep.orders"] == HIDDEN_CHANGES
    assert "set log_slave_updates=ON" in sums.summary()


@pytest.mark.parametrize("kind", ["physical", "logical"])
def test_a_backup_of_a_quiet_replica_records_every_table(
    pair: tuple[MariaDBServer, MariaDBServer], catalog: Catalog, tmp_path: Path, kind: str
):
    # a logical dump's point is where it starts: what replication applied is read before it
    _, replica = pair
    expected = live(replica)

    sums = sums_of(take(kind, replica, catalog, tmp_path))

    assert sums.error is None
    assert recorded(sums) == expected


@pytest.mark.parametrize("kind", ["physical", "logical"])
def test_a_backup_while_replication_applies_records_no_sum(
    pair: tuple[MariaDBServer, MariaDBServer], catalog: Catalog, tmp_path: Path, kind: str
):
    primary, replica = pair

    with writing(primary):
        meta = take(kind, replica, catalog, tmp_path)
    caught_up(primary, replica)

    sums = sums_of(meta)
    assert (recorded(sums), sums.error) == ({}, HIDDEN_CHANGES)
