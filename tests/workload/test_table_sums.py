"""Table sums recorded at backup time, on a real MariaDB and a real RGW.

What `backup.json` records must be exactly the data the backup holds: a quiet backup
records every user table; a table written after the backup's consistent point is skipped
with the reason, never recorded wrong; and the sums equal a physical restore's, also with
writes during and after the backup.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from mysql_provider.workload import backup_grants

from database_backup.catalog import BackupMetadata, Catalog, new_backup_id
from database_backup.mysql import (
    ProgressEvent,
    backup_full,
    backup_incremental,
    detect,
    restore_physical,
)
from database_backup.mysql.connection import ConnectionSpec
from database_backup.mysql.logical.dump import backup_logical
from database_backup.mysql.logical.restore import restore_logical
from database_backup.mysql.tablesums import (
    Limits,
    TableSums,
    compare,
    compared_tables,
    measure_scratch,
    record_for_backup,
)
from database_backup.mysql.tablesums.session import open_session
from database_backup.storage import S3Storage
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import connection, fill

CLUSTER = "model-0123/table-sums"
SYSTEM = ("mysql", "sys", "performance_schema", "information_schema")


def live(server: MariaDBServer, *databases: str) -> dict[str, tuple[int, int]]:
    """{db.table: (rows, CHECKSUM TABLE ... EXTENDED)} of the base tables of `databases`."""
    names = ", ".join(f"'{db}'" for db in databases)
    tables = server.query(
        "SELECT table_schema, table_name FROM information_schema.tables "  # noqa: S608 - test
        f"WHERE table_schema IN ({names}) AND table_type = 'BASE TABLE'"
    )
    found: dict[str, tuple[int, int]] = {}
    for db, table in tables:
        quoted = f"`{db}`.`{table}`"
        checksum = server.query(f"CHECKSUM TABLE {quoted} EXTENDED")[0][1]
        rows = server.scalar(f"SELECT COUNT(*) FROM {quoted}")  # noqa: S608 - test
        found[f"{db}.{table}"] = (int(rows), int(checksum))
    return found


def user_databases(server: MariaDBServer) -> list[str]:
    return [row[0] for row in server.query("SHOW DATABASES") if row[0] not in SYSTEM]


def recorded(meta: BackupMetadata) -> TableSums:
    assert meta.table_sums is not None, "backup.json records no table-sums"
    return TableSums.from_dict(meta.table_sums)


def values(sums: TableSums, database: str) -> dict[str, tuple[int, int | None]]:
    return {
        name: (item.rows, item.checksum)
        for name, item in sums.tables.items()
        if name.startswith(f"{database}.")
    }


def new_id(tag: str) -> str:
    return f"{new_backup_id(datetime.now(timezone.utc))}-{tag}"


def test_a_quiet_backup_records_every_user_table(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    fill(server, "quiet", rows=3000)
    server.execute(
        "CREATE TABLE quiet.`odd name` (id INT PRIMARY KEY) ENGINE=InnoDB;"
        "INSERT INTO quiet.`odd name` SELECT seq FROM quiet.seq_1_to_7;"
    )
    everything = live(server, *user_databases(server))

    meta = backup_full(connection(server), catalog, backup_id=new_id("q"), workdir=tmp_path)

    sums = recorded(meta)
    assert {n: (t.rows, t.checksum) for n, t in sums.tables.items()} == everything
    assert values(sums, "quiet")["quiet.orders"] == (3000, everything["quiet.orders"][1])
    assert {"quiet.events", "quiet.legacy", "quiet.odd name"} <= sums.tables.keys()
    assert (sums.skipped, sums.error, sums.unlisted) == ({}, None, 0)
    assert not [name for name in sums.tables if name.split(".")[0] in SYSTEM]
    assert sums.server_version == server.scalar("SELECT VERSION()")
    assert catalog.read_metadata(meta.backup_id).table_sums == meta.table_sums
    job_log = storage.get_bytes(catalog.backup_prefix(meta.backup_id).rstrip("/") + "/job.log")
    assert f"table sums: {len(everything)} tables measured, 0 skipped\n".encode() in job_log


def test_tables_written_after_the_backup_point_are_skipped_not_recorded_wrong(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    fill(server, "late", rows=1000)
    server.execute(
        "CREATE TABLE late.other (id INT PRIMARY KEY) ENGINE=InnoDB;"
        "INSERT INTO late.other SELECT seq FROM late.seq_1_to_50;"
    )
    meta = backup_full(connection(server), catalog, backup_id=new_id("l"), workdir=tmp_path)
    at_backup = live(server, "late")
    # after the backup's consistent point: InnoDB rows, a MyISAM row, and a DDL
    server.execute(
        "UPDATE late.orders SET amount = amount + 1 WHERE id < 10;"
        "INSERT INTO late.legacy VALUES (1000001, 1);"
        "ALTER TABLE late.other ADD COLUMN c INT;"
    )

    sums = record_for_backup(
        connection(server), detect(connection(server)), meta, workdir=tmp_path / "again"
    )

    assert sums.error is None
    late = {name: reason for name, reason in sums.skipped.items() if name.startswith("late.")}
    assert set(late) == {"late.orders", "late.legacy", "late.other"}
    assert late["late.orders"] == (
        "changed after the backup's consistent point: the binlog has row events for it"
    )
    assert late["late.legacy"].startswith("changed after the backup's consistent point")
    assert "the binlog has a statement (ALTER, at bin." in late["late.other"]
    # what is recorded is the backup's data: the Aria table nothing touched
    assert values(sums, "late") == {"late.events": at_backup["late.events"]}


def test_a_ddl_statement_over_several_lines_skips_only_its_table(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    fill(server, "lines", rows=300)
    meta = backup_full(connection(server), catalog, backup_id=new_id("n"), workdir=tmp_path)
    at_backup = live(server, "lines")
    server.execute("ALTER TABLE lines.orders\n  ADD COLUMN c INT,\n\tADD COLUMN d INT;")

    sums = record_for_backup(
        connection(server), detect(connection(server)), meta, workdir=tmp_path / "again"
    )

    assert sums.skipped["lines.orders"].startswith("changed after the backup's consistent point")
    assert values(sums, "lines") == {
        "lines.events": at_backup["lines.events"],
        "lines.legacy": at_backup["lines.legacy"],
    }


def test_a_myisam_table_changed_after_the_backup_is_skipped_an_unchanged_one_kept(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    fill(server, "loose", rows=500)
    meta = backup_full(connection(server), catalog, backup_id=new_id("m"), workdir=tmp_path)
    at_backup = live(server, "loose")
    server.execute("DELETE FROM loose.legacy WHERE id = 7;")

    sums = record_for_backup(
        connection(server), detect(connection(server)), meta, workdir=tmp_path / "again"
    )

    assert "changed after the backup's consistent point" in sums.skipped["loose.legacy"]
    assert values(sums, "loose") == {
        "loose.orders": at_backup["loose.orders"],
        "loose.events": at_backup["loose.events"],  # Aria, unchanged: kept
    }


def test_a_table_altered_while_the_sums_are_measured_is_skipped(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    """An instant ALTER after the snapshot changes what CHECKSUM TABLE reads in it."""
    server.execute(
        "DROP DATABASE IF EXISTS ddl; CREATE DATABASE ddl;"
        "CREATE TABLE ddl.aaa (id INT PRIMARY KEY) ENGINE=InnoDB;"
        "CREATE TABLE ddl.zzz (id INT PRIMARY KEY, v INT) ENGINE=InnoDB;"
        "INSERT INTO ddl.aaa SELECT seq FROM ddl.seq_1_to_10;"
        "INSERT INTO ddl.zzz SELECT seq, seq FROM ddl.seq_1_to_100;"
    )
    spec = connection(server)
    meta = backup_full(spec, catalog, backup_id=new_id("a"), workdir=tmp_path)
    at_backup = live(server, "ddl")
    result: list[TableSums] = []
    with open_session(
        spec, client="mariadb", workdir=tmp_path, deadline=time.monotonic() + 60
    ) as holder:
        holder.run("LOCK TABLES ddl.aaa WRITE;", deadline=time.monotonic() + 10)
        recorder = threading.Thread(
            target=lambda: result.append(
                record_for_backup(spec, detect(spec), meta, workdir=tmp_path / "r")
            )
        )
        recorder.start()
        # the recorder's snapshot is open and it waits for ddl.aaa: alter ddl.zzz meanwhile
        wait_for(
            lambda: bool(
                server.query(
                    "SELECT id FROM information_schema.processlist WHERE state LIKE "
                    "'%metadata lock%' AND info LIKE 'CHECKSUM TABLE `ddl`.`aaa`%'"
                )
            )
        )
        server.execute("ALTER TABLE ddl.zzz ADD COLUMN c INT DEFAULT 5, ALGORITHM=INSTANT;")
        holder.run("UNLOCK TABLES;", deadline=time.monotonic() + 10)
        recorder.join(60)

    sums = result[0]
    assert values(sums, "ddl") == {"ddl.aaa": at_backup["ddl.aaa"]}
    assert sums.skipped["ddl.zzz"].startswith(
        "its definition changed while it was measured: the binlog has a statement (ALTER, at"
    )


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@contextlib.contextmanager
def queued_behind_an_alter(server: MariaDBServer, table: str, workdir: Path) -> Iterator[None]:
    """While inside, a statement that opens `table` (CHECKSUM TABLE) waits on its lock.

    A reader keeps the table open in a transaction and an ALTER waits for it: any later
    statement on the table queues behind the ALTER for as long as the reader stays,
    however fast the machine is (a backup tool, which opens no table, does not).
    """
    with open_session(
        connection(server), client="mariadb", workdir=workdir, deadline=time.monotonic() + 120
    ) as reader:
        reader.run(f"BEGIN; SELECT COUNT(*) FROM {table};", deadline=time.monotonic() + 10)  # noqa: S608 - test
        alter = threading.Thread(
            target=server.execute, args=(f"ALTER TABLE {table} ADD COLUMN z INT;",)
        )
        alter.start()
        try:
            yield
        finally:
            reader.run("COMMIT;", deadline=time.monotonic() + 10)
            alter.join(30)


@pytest.fixture(scope="module")
def target(make_mariadb: Callable[..., MariaDBServer]) -> Iterator[MariaDBServer]:
    """A fresh server the backups are restored into."""
    db = make_mariadb("table-sums-target", server_id=2)
    yield db
    db.stop()


class Writer(threading.Thread):
    """Keeps updating `busy.stream` (InnoDB) and `busy.legacy` (MyISAM) until stopped."""

    def __init__(self, server: MariaDBServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.stop = threading.Event()
        self.writes = 0

    def run(self) -> None:
        while not self.stop.is_set():
            self.server.execute(
                "INSERT INTO busy.stream (v) VALUES (RAND());"
                "UPDATE busy.legacy SET v = v + 1 WHERE id = 1;"
            )
            self.writes += 1


def test_sums_equal_a_physical_restore_with_writes_during_and_after_the_backup(
    server: MariaDBServer, target: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    fill(server, "busy", rows=5000)
    server.execute(
        "CREATE TABLE busy.stream (id INT AUTO_INCREMENT PRIMARY KEY, v DOUBLE);"
        "CREATE TABLE busy.during (id INT PRIMARY KEY, v INT) ENGINE=InnoDB;"
    )
    writer = Writer(server)
    during: list[int] = []

    def write_during(event: ProgressEvent) -> None:
        if event.phase == "backup" and event.bytes_done > 0 and not during:
            # the tool is copying: these rows are in the backup (its point is at the end)
            server.execute(
                "INSERT INTO busy.during SELECT seq, seq FROM busy.seq_1_to_300;"
                "UPDATE busy.orders SET amount = 0 WHERE id <= 100;"
            )
            during.append(event.bytes_done)

    writer.start()
    try:
        meta = backup_full(
            connection(server),
            catalog,
            backup_id=new_id("w"),
            progress=write_during,
            workdir=tmp_path / "backup",
        )
    finally:
        writer.stop.set()
        writer.join()
    assert during, "rows were written while the tool copied"
    assert writer.writes > 0
    sums = recorded(meta)
    assert sums.tables["busy.during"].rows == 300
    assert {"busy.orders", "busy.events"} <= sums.tables.keys()

    restore_physical(
        connection(target), target, catalog, meta.backup_id, key=None, workdir=tmp_path / "r"
    )
    measured = measure_scratch(connection(target), tables=sums.tables, workdir=tmp_path)

    assert compare(sums, measured) == []
    assert compared_tables(sums, measured) == sorted(sums.tables)
    assert measured.skipped == {}
    # a busy table is either skipped with the reason or recorded as the backup holds it
    for name in ("busy.stream", "busy.legacy"):
        assert name in sums.skipped or name in compared_tables(sums, measured)


def test_a_changed_table_after_restore_is_a_mismatch(
    server: MariaDBServer, target: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    fill(server, "drift", rows=800)
    meta = backup_full(connection(server), catalog, backup_id=new_id("d"), workdir=tmp_path)
    restore_physical(
        connection(target), target, catalog, meta.backup_id, key=None, workdir=tmp_path / "r"
    )
    sums = recorded(meta)
    target.execute(
        "DELETE FROM drift.orders WHERE id = 1; UPDATE drift.events SET kind = 'x'"
        " WHERE id = 2; DROP TABLE drift.legacy;"
    )

    problems = compare(sums, measure_scratch(connection(target), tables=sums.tables))

    assert problems == [
        "drift.events: checksum {} recorded, {} found (same 800 rows, different contents)".format(
            sums.tables["drift.events"].checksum,
            target.query("CHECKSUM TABLE drift.events EXTENDED")[0][1],
        ),
        "drift.legacy: 800 rows recorded, the table is missing",
        "drift.orders: 800 rows recorded, 799 found",
    ]


def test_an_incremental_backup_records_its_own_point(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    fill(server, "incr", rows=600)
    backup_full(connection(server), catalog, backup_id=new_id("f"), workdir=tmp_path / "f")
    server.execute(
        "UPDATE incr.orders SET amount = 1 WHERE id < 50; DELETE FROM incr.events WHERE id > 500;"
    )
    expected = live(server, "incr")

    meta = backup_incremental(
        connection(server), catalog, backup_id=new_id("i"), workdir=tmp_path / "i"
    )

    assert meta.kind == "incremental"
    assert values(recorded(meta), "incr") == expected


def test_a_logical_backup_records_only_its_selection(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    fill(server, "pick", rows=400)
    fill(server, "notpicked", rows=10)
    expected = live(server, "pick")

    tables = backup_logical(
        connection(server),
        catalog,
        backup_id=new_id("t"),
        tables=["pick.orders", "pick.legacy"],
        workdir=tmp_path / "t",
    )
    databases = backup_logical(
        connection(server),
        catalog,
        backup_id=new_id("d"),
        databases=["pick"],
        workdir=tmp_path / "d",
    )

    assert {n: (t.rows, t.checksum) for n, t in recorded(tables).tables.items()} == {
        "pick.orders": expected["pick.orders"],
        "pick.legacy": expected["pick.legacy"],
    }
    assert recorded(tables).skipped == {}
    assert {n: (t.rows, t.checksum) for n, t in recorded(databases).tables.items()} == expected


def test_sums_of_a_logical_backup_equal_its_restore_into_another_server(
    server: MariaDBServer, target: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    fill(server, "dumped", rows=700)
    meta = backup_logical(
        connection(server),
        catalog,
        backup_id=new_id("x"),
        databases=["dumped"],
        workdir=tmp_path / "b",
    )
    sums = recorded(meta)
    assert set(sums.tables) == {"dumped.orders", "dumped.events", "dumped.legacy"}

    restore_logical(connection(target), catalog, meta.backup_id, workdir=tmp_path / "r")
    measured = measure_scratch(connection(target), tables=sums.tables, workdir=tmp_path)

    assert compare(sums, measured) == []
    assert compared_tables(sums, measured) == sorted(sums.tables)


def test_the_backup_account_of_the_provider_charm_can_record_them(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    fill(server, "grants", rows=100)
    server.execute(
        "CREATE USER IF NOT EXISTS 'sums'@'127.0.0.1' IDENTIFIED BY 'sums-password';"
        f"GRANT {backup_grants('mariadb')} ON *.* TO 'sums'@'127.0.0.1';"
    )
    account = ConnectionSpec(
        user="sums", password="sums-password", host=server.host, port=server.port
    )
    expected = live(server, "grants")

    meta = backup_full(account, catalog, backup_id=new_id("g"), workdir=tmp_path)

    sums = recorded(meta)
    assert sums.error is None
    assert values(sums, "grants") == expected


def test_caps_skip_with_the_reason(server: MariaDBServer, catalog: Catalog, tmp_path: Path):
    fill(server, "caps", rows=2000)
    server.execute("ANALYZE TABLE caps.orders")  # the cap reads InnoDB's statistics
    meta = backup_full(connection(server), catalog, backup_id=new_id("c"), workdir=tmp_path)
    spec = connection(server)

    few = record_for_backup(
        spec, detect(spec), meta, workdir=tmp_path, limits=Limits(max_tables=2)
    )
    small = record_for_backup(
        spec, detect(spec), meta, workdir=tmp_path, limits=Limits(max_table_bytes=70_000)
    )

    assert len(few.tables) == 2
    assert set(few.skipped.values()) == {"beyond the first 2 tables measured"}
    assert small.skipped["caps.orders"].endswith("over the 70000-byte cap per table")
    assert "caps.legacy" in small.tables  # 2000 rows of two numbers fit under the cap


def test_recording_never_fails_a_backup_and_hides_the_password(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    meta = backup_full(connection(server), catalog, backup_id=new_id("e"), workdir=tmp_path)
    good = connection(server)
    wrong = ConnectionSpec(
        user=good.user, password="not-the-pw-1234", host=good.host, port=good.port
    )

    sums = record_for_backup(wrong, detect(good), meta, workdir=tmp_path)

    assert sums.tables == {}
    assert sums.error is not None
    assert "Access denied" in sums.error
    assert "not-the-pw-1234" not in str(sums.to_dict())


def test_the_time_budget_bounds_recording_and_stops_the_running_checksum(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    server.execute(
        "DROP DATABASE IF EXISTS budget; CREATE DATABASE budget;"
        "CREATE TABLE budget.a_small (id INT PRIMARY KEY) ENGINE=InnoDB;"
        "CREATE TABLE budget.b_big (id INT PRIMARY KEY, v CHAR(200)) ENGINE=InnoDB;"
        "INSERT INTO budget.a_small SELECT seq FROM budget.seq_1_to_10;"
        "INSERT INTO budget.b_big SELECT seq, MD5(seq) FROM budget.seq_1_to_1000;"
    )
    spec = connection(server)
    meta = backup_full(spec, catalog, backup_id=new_id("b"), workdir=tmp_path)
    with queued_behind_an_alter(server, "budget.b_big", tmp_path):
        started = time.monotonic()
        sums = record_for_backup(
            spec, detect(spec), meta, workdir=tmp_path / "r", limits=Limits(budget_seconds=1.5)
        )
        took = time.monotonic() - started
        checksums = (
            "SELECT id FROM information_schema.processlist"
            " WHERE info LIKE 'CHECKSUM TABLE `budget`%'"
        )
        wait_for(lambda: not server.query(checksums), timeout=5)

    assert took < 4, f"recording took {took:.1f} s for a 1.5 s budget"
    assert sums.skipped["budget.b_big"] == "the time budget ran out before it was measured"
    assert "budget.a_small" in sums.tables
    later = [name for name in sums.skipped if name > "budget.b_big"]
    assert all(sums.skipped[n] == sums.skipped["budget.b_big"] for n in later)


def test_chosen_tables_are_measured_however_many_others_their_database_has(
    server: MariaDBServer, tmp_path: Path
):
    server.execute(
        "DROP DATABASE IF EXISTS sel; CREATE DATABASE sel;"
        "CREATE TABLE sel.aa (id INT PRIMARY KEY); CREATE TABLE sel.bb (id INT PRIMARY KEY);"
        "CREATE TABLE sel.cc (id INT PRIMARY KEY); CREATE TABLE sel.zz (id INT PRIMARY KEY);"
        "INSERT INTO sel.zz VALUES (1), (2);"
    )

    sums = measure_scratch(
        connection(server),
        tables={"sel.zz"},
        workdir=tmp_path,
        limits=Limits(max_tables=1, max_listed_skips=1),
    )

    assert sums.tables.keys() == {"sel.zz"}
    assert sums.tables["sel.zz"].rows == 2
    assert (sums.skipped, sums.unlisted) == ({}, 0)


def test_a_budget_of_zero_records_every_table_skipped_and_why_quickly(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    fill(server, "off", rows=20_000)
    tables = set(live(server, *user_databases(server)))
    off = Limits(budget_seconds=0)
    checksums = int(server.query("SHOW GLOBAL STATUS LIKE 'Com_checksum'")[0][1])

    meta = backup_full(
        connection(server), catalog, backup_id=new_id("o"), workdir=tmp_path, table_sums_limits=off
    )
    logical = backup_logical(
        connection(server), catalog, backup_id=new_id("ol"), workdir=tmp_path,
        databases=["off"], table_sums_limits=off,
    )  # fmt: skip
    started = time.monotonic()
    again = record_for_backup(connection(server), detect(connection(server)), meta,
                              workdir=tmp_path, limits=off)  # fmt: skip
    took = time.monotonic() - started

    reason = "table sums turned off (table-sums-budget 0)"
    sums = recorded(meta)
    assert sums.tables == {}
    assert sums.skipped == dict.fromkeys(tables, reason)
    assert sums.error == reason  # a drill says why it compared nothing
    assert recorded(logical).skipped == dict.fromkeys(
        [name for name in tables if name.startswith("off.")], reason
    )
    job_log = storage.get_bytes(catalog.backup_prefix(meta.backup_id).rstrip("/") + "/job.log")
    assert f"table sums not recorded: {reason}\n".encode() in job_log
    assert int(server.query("SHOW GLOBAL STATUS LIKE 'Com_checksum'")[0][1]) == checksums
    assert again.skipped == sums.skipped
    assert took < 2, f"listing the tables without measuring them took {took:.1f} s"
