"""Logical backups on a real MariaDB and a real RGW, restored whole and in part.

Data is compared with CHECKSUM TABLE; routines, triggers, views, events, users and grants
are compared with what the server shows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from database_backup.catalog import Catalog
from database_backup.mysql.logical.dump import backup_logical
from database_backup.mysql.logical.restore import LogicalRestoreError, restore_logical
from database_backup.storage import S3Storage
from database_backup.stream import generate_key
from tests.infra.mariadb import MariaDBError, MariaDBServer
from tests.workload.engine_helpers import connection, fill, new_id

CLUSTER = "model-0123/logical"


@pytest.fixture(scope="module")
def source(make_mariadb: Callable[..., MariaDBServer]) -> Iterator[MariaDBServer]:
    db = make_mariadb("logical-src")
    yield db
    db.stop()


@pytest.fixture(scope="module")
def other(make_mariadb: Callable[..., MariaDBServer]) -> Iterator[MariaDBServer]:
    """A second, fresh server: whole-server dumps restore into it."""
    db = make_mariadb("logical-dst")
    yield db
    db.stop()


def _objects(server: MariaDBServer, db: str) -> dict[str, list[tuple[str, ...]]]:
    return {
        "routines": server.query(
            "SELECT routine_name, routine_type, routine_definition FROM "  # noqa: S608
            f"information_schema.routines WHERE routine_schema = '{db}' ORDER BY 1"
        ),
        "triggers": server.query(
            "SELECT trigger_name, action_statement FROM information_schema.triggers "  # noqa: S608
            f"WHERE trigger_schema = '{db}' ORDER BY 1"
        ),
        "views": server.query(
            "SELECT table_name FROM information_schema.views "  # noqa: S608
            f"WHERE table_schema = '{db}' ORDER BY 1"
        ),
        "events": server.query(
            f"SELECT event_name, event_definition FROM information_schema.events "  # noqa: S608
            f"WHERE event_schema = '{db}' ORDER BY 1"
        ),
    }


def _populate(server: MariaDBServer) -> None:
    fill(server, "shop", rows=3_000)
    fill(server, "crm", rows=1_000)
    server.execute(
        "CREATE VIEW shop.big_orders AS SELECT id, amount FROM shop.orders WHERE amount > 100;"
        "CREATE TRIGGER shop.stamp BEFORE INSERT ON shop.events FOR EACH ROW"
        " SET NEW.kind = LOWER(NEW.kind);"
        "CREATE FUNCTION shop.double_it(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;"
        "CREATE EVENT shop.nightly ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM shop.events"
        " WHERE id < 0;"
        "CREATE USER IF NOT EXISTS 'reporting'@'%' IDENTIFIED BY 'report-pw';"
        "GRANT SELECT ON shop.* TO 'reporting'@'%';"
        "GRANT SELECT, INSERT ON crm.orders TO 'reporting'@'%';"
    )


def test_whole_server_dump_restores_into_a_fresh_server(
    source: MariaDBServer, other: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    _populate(source)
    key = generate_key()
    meta = backup_logical(connection(source), catalog, backup_id=new_id(), key=key,
                          workdir=tmp_path / "b")  # fmt: skip
    assert meta.kind == "logical"
    assert meta.databases is not None
    assert {"shop", "crm"} <= set(meta.databases)
    assert "mysql" not in meta.databases
    assert meta.binlog_file is not None
    assert meta.gtid_set

    restore_logical(connection(other), catalog, meta.backup_id, key=key, workdir=tmp_path / "r")

    for db in ("shop", "crm"):
        assert other.checksum_tables(db) == source.checksum_tables(db)
        assert _objects(other, db) == _objects(source, db)
    assert _objects(other, "shop")["views"] == [("big_orders",)]
    grants = sorted(row[0] for row in other.query("SHOW GRANTS FOR 'reporting'@'%'"))
    assert grants == sorted(row[0] for row in source.query("SHOW GRANTS FOR 'reporting'@'%'"))


def test_one_database_and_one_table_from_a_whole_server_dump(
    source: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    _populate(source)
    conn = connection(source)
    meta = backup_logical(conn, catalog, backup_id=new_id(), workdir=tmp_path / "b")
    shop, crm = source.checksum_tables("shop"), source.checksum_tables("crm")

    # one database: crm is dropped and comes back; shop's later change stays
    source.execute("DROP DATABASE crm; UPDATE shop.orders SET amount = 0 WHERE id < 50;")
    shop_changed = source.checksum_tables("shop")
    restore_logical(conn, catalog, meta.backup_id, databases=["crm"], workdir=tmp_path / "r1")
    assert source.checksum_tables("crm") == crm
    assert source.checksum_tables("shop") == shop_changed != shop

    # one table: shop.orders comes back; the change to shop.legacy stays
    source.execute("UPDATE shop.legacy SET v = 0;")
    legacy_changed = source.checksum_tables("shop")["legacy"]
    restore_logical(conn, catalog, meta.backup_id, tables=["shop.orders"], workdir=tmp_path / "r2")
    after = source.checksum_tables("shop")
    assert after["orders"] == shop["orders"]
    assert after["legacy"] == legacy_changed != shop["legacy"]
    assert after["events"] == shop["events"]

    with pytest.raises(LogicalRestoreError, match="does not hold database"):
        restore_logical(conn, catalog, meta.backup_id, databases=["nope"], workdir=tmp_path)


def test_table_backup_and_snapshot_taken_while_writes_continue(
    source: MariaDBServer, other: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    fill(source, "live", rows=20_000)
    source.execute("CREATE TABLE live.ticks (id INT PRIMARY KEY) ENGINE=InnoDB;")
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            source.execute(f"INSERT INTO live.ticks VALUES ({n})")  # noqa: S608 - test data
            written.append(n)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 5:
            threading.Event().wait(0.05)
        at_start = len(written)
        meta = backup_logical(connection(source), catalog, backup_id=new_id(), databases=["live"],
                              workdir=tmp_path / "b")  # fmt: skip
        during = len(written) - at_start
    finally:
        stop.set()
        thread.join()
    assert during > 0  # the writes were not blocked by the dump
    assert meta.databases == ["live"]

    other.execute("DROP DATABASE IF EXISTS live")
    restore_logical(connection(other), catalog, meta.backup_id, workdir=tmp_path / "r")
    ticks = [int(row[0]) for row in other.query("SELECT id FROM live.ticks ORDER BY id")]
    # a consistent snapshot: a prefix of the inserts, no holes
    assert ticks == list(range(1, len(ticks) + 1))
    assert at_start <= len(ticks) <= len(written)
    assert other.checksum_tables("live")["orders"] == source.checksum_tables("live")["orders"]

    tables = backup_logical(connection(source), catalog, backup_id=new_id(),
                            tables=["live.orders"], workdir=tmp_path / "t")  # fmt: skip
    assert tables.tables == ["live.orders"]
    other.execute("DROP DATABASE live")
    restore_logical(connection(other), catalog, tables.backup_id, workdir=tmp_path / "rt")
    assert other.checksum_tables("live") == {"orders": source.checksum_tables("live")["orders"]}


def test_corrupt_dump_is_refused_before_anything_is_applied(
    source: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    fill(source, "fragile", rows=500)
    conn = connection(source)
    meta = backup_logical(conn, catalog, backup_id=new_id(), databases=["fragile"],
                          compression_level=None, workdir=tmp_path)  # fmt: skip
    key = catalog.artefact_key(meta.backup_id, meta.artefacts[0])
    data = bytearray(storage.get_bytes(key))
    data[len(data) // 2] ^= 0x55
    storage.put_bytes(key, bytes(data))
    source.execute("DROP DATABASE fragile; CREATE DATABASE fragile;")

    with pytest.raises(LogicalRestoreError, match="failed verification") as caught:
        restore_logical(conn, catalog, meta.backup_id, workdir=tmp_path / "r")
    assert caught.value.data_changed is False
    assert source.checksum_tables("fragile") == {}
    with pytest.raises(MariaDBError):
        source.query("SELECT 1 FROM fragile.orders")
