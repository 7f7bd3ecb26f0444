"""Table sums on a real MariaDB replica with ``log_slave_updates`` OFF (MariaDB's default).

What replication applies there is not in the replica's binlog: the binlog window that ties
a sum to the backup's point cannot see it. A sum is recorded only when replication applied
nothing during the backup; otherwise every table is skipped and ``error`` says why and what
to set, never a sum of data the backup does not hold.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from database_backup.catalog import Catalog, new_backup_id
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


def test_a_backup_of_a_quiet_replica_records_every_table(
    pair: tuple[MariaDBServer, MariaDBServer], catalog: Catalog, tmp_path: Path
):
    _, replica = pair
    expected = live(replica)

    meta = backup_full(
        connection(replica),
        catalog,
        backup_id=new_backup_id(datetime.now(timezone.utc)),
        workdir=tmp_path,
    )

    assert meta.table_sums is not None
    sums = TableSums.from_dict(meta.table_sums)
    assert sums.error is None
    assert recorded(sums) == expected


def test_a_backup_while_replication_applies_records_no_sum(
    pair: tuple[MariaDBServer, MariaDBServer], catalog: Catalog, tmp_path: Path
):
    primary, replica = pair
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            primary.execute(
                f"UPDATE rep.orders SET amount = amount + 1 WHERE id = {n % 2000 + 1};"  # noqa: S608 - a number
            )
            time.sleep(0.02)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        time.sleep(0.2)
        meta = backup_full(
            connection(replica),
            catalog,
            backup_id=new_backup_id(datetime.now(timezone.utc)),
            workdir=tmp_path,
        )
    finally:
        stop.set()
        writer.join()
    caught_up(primary, replica)

    assert meta.table_sums is not None
    sums = TableSums.from_dict(meta.table_sums)
    assert recorded(sums) == {}
    assert sums.error == HIDDEN_CHANGES


def test_a_logical_backup_of_a_quiet_replica_records_its_databases(
    pair: tuple[MariaDBServer, MariaDBServer], catalog: Catalog, tmp_path: Path
):
    # its point is where the dump starts: what replication applied is read before that
    _, replica = pair
    expected = live(replica)

    meta = backup_logical(
        connection(replica),
        catalog,
        backup_id=new_backup_id(datetime.now(timezone.utc)),
        databases=["rep"],
        workdir=tmp_path,
    )

    assert meta.table_sums is not None
    sums = TableSums.from_dict(meta.table_sums)
    assert sums.error is None
    assert recorded(sums) == expected


def test_a_logical_backup_while_replication_applies_records_no_sum(
    pair: tuple[MariaDBServer, MariaDBServer], catalog: Catalog, tmp_path: Path
):
    primary, replica = pair
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            primary.execute(f"INSERT INTO rep.legacy VALUES ({100_000 + n}, {n});")  # noqa: S608
            time.sleep(0.02)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        time.sleep(0.2)
        meta = backup_logical(
            connection(replica),
            catalog,
            backup_id=new_backup_id(datetime.now(timezone.utc)),
            databases=["rep"],
            workdir=tmp_path,
        )
    finally:
        stop.set()
        writer.join()
    caught_up(primary, replica)

    assert meta.table_sums is not None
    sums = TableSums.from_dict(meta.table_sums)
    assert (recorded(sums), sums.error) == ({}, HIDDEN_CHANGES)
