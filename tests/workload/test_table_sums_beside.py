"""Table sums measured beside the backup stream (`tablesums.Beside`), on a real MariaDB.

The server's general log shows when each statement ran: the sums of a quiet server are
measured while the backup tool copies (before its ``BACKUP STAGE END``), each table once;
a table written during the backup is measured again after it, and what is recorded is
still exactly the backup's data. A failed backup ends the measurement at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from database_backup.catalog import Catalog, new_backup_id
from database_backup.mysql import BackupError, ProgressEvent, backup_full, detect, restore_physical
from database_backup.mysql.logical.dump import backup_logical
from database_backup.mysql.tablesums import Beside, Limits, TableSums, compare, measure_scratch
from database_backup.mysql.tablesums.session import open_session
from database_backup.storage import S3Storage
from tests.infra.mariadb import MariaDBServer
from tests.threads import lingering_threads
from tests.unit.catalog.factories import backup
from tests.workload.engine_helpers import connection, fill
from tests.workload.test_table_sums import live, queued_behind_an_alter, recorded, wait_for

CLUSTER = "model-0123/table-sums-beside"
CHECKSUM = "CHECKSUM TABLE "


@pytest.fixture(scope="module")
def source(make_mariadb: Callable[..., MariaDBServer]) -> Iterator[MariaDBServer]:
    """A server of its own: only this module's tables are measured."""
    db = make_mariadb("table-sums-beside", server_id=5)
    yield db
    db.stop()


@pytest.fixture(scope="module")
def target(make_mariadb: Callable[..., MariaDBServer]) -> Iterator[MariaDBServer]:
    """A fresh server the backups are restored into."""
    db = make_mariadb("table-sums-beside-target", server_id=6)
    yield db
    db.stop()


class GeneralLog:
    """The server's general log, in `mysql.general_log`: what ran, in order."""

    def __init__(self, server: MariaDBServer) -> None:
        self.server = server

    def on(self) -> None:
        """Log every statement from now on (what was logged before is dropped)."""
        self.server.execute(
            "SET GLOBAL general_log = 0; TRUNCATE mysql.general_log;"
            "SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 1;"
        )

    def off(self) -> None:
        self.server.execute("SET GLOBAL general_log = 0; TRUNCATE mysql.general_log;")

    def counts(self) -> list[str]:
        """The row counts logged (by the sums' sessions: their tables quoted)."""
        rows = self.server.query(
            "SELECT argument FROM mysql.general_log WHERE command_type = 'Query'"
            " AND argument LIKE 'SELECT IFNULL(SUM(1), 0) FROM `%'"
        )
        return [row[0] for row in rows]

    def statements(self) -> list[str]:
        """The CHECKSUM TABLE and BACKUP STAGE statements logged, in order."""
        rows = self.server.query(
            "SELECT argument FROM mysql.general_log WHERE command_type = 'Query'"
            " AND (argument LIKE 'CHECKSUM TABLE %' OR argument LIKE 'BACKUP STAGE %')"
        )
        return [row[0] for row in rows]


@pytest.fixture
def general_log(source: MariaDBServer) -> Iterator[GeneralLog]:
    log = GeneralLog(source)
    yield log
    log.off()


def new_id() -> str:
    return new_backup_id(datetime.now(timezone.utc))


def checksums(statements: list[str]) -> tuple[list[str], list[str]]:
    """The tables checksummed before, and after, the backup tool's ``BACKUP STAGE END``."""
    end = statements.index("BACKUP STAGE END")
    before = [s.removeprefix(CHECKSUM) for s in statements[:end] if s.startswith(CHECKSUM)]
    after = [s.removeprefix(CHECKSUM) for s in statements[end:] if s.startswith(CHECKSUM)]
    return before, after


def test_a_quiet_backup_measures_each_table_once_while_the_tool_copies(
    source: MariaDBServer,
    catalog: Catalog,
    storage: S3Storage,
    general_log: GeneralLog,
    tmp_path: Path,
):
    fill(source, "quiet", rows=3000)
    everything = live(source, "quiet")
    general_log.on()

    meta = backup_full(connection(source), catalog, backup_id=new_id(), workdir=tmp_path)

    before, after = checksums(general_log.statements())
    assert after == [], f"the sums were measured after the stream: {after}"
    assert sorted(before) == sorted(
        f"`quiet`.`{t}` EXTENDED" for t in ("events", "legacy", "orders")
    )
    sums = recorded(meta)
    assert {n: (t.rows, t.checksum) for n, t in sums.tables.items()} == everything
    assert len(everything) == 3
    job_log = storage.get_bytes(catalog.backup_prefix(meta.backup_id).rstrip("/") + "/job.log")
    assert (
        b"table sums: 3 tables measured, 0 skipped\ntable sums: 3 measured beside the stream\n"
        in job_log
    )
    assert (sums.skipped, sums.error) == ({}, None)


def test_tables_written_during_the_backup_are_measured_again_after_it(
    source: MariaDBServer,
    target: MariaDBServer,
    catalog: Catalog,
    storage: S3Storage,
    general_log: GeneralLog,
    tmp_path: Path,
):
    fill(source, "during", rows=3000)
    written: list[int] = []
    general_log.on()

    def write_during(event: ProgressEvent) -> None:
        if event.phase == "backup" and event.bytes_done > 0 and not written:
            # the tool is copying: these rows are in the backup (its point is at the end)
            source.execute(
                "UPDATE during.orders SET amount = 0 WHERE id <= 100;"
                "DELETE FROM during.legacy WHERE id = 7;"
            )
            written.append(event.bytes_done)

    meta = backup_full(
        connection(source),
        catalog,
        backup_id=new_id(),
        workdir=tmp_path / "backup",
        progress=write_during,
    )

    assert written, "rows were written while the tool copied"
    _, after = checksums(general_log.statements())
    assert sorted(after) == ["`during`.`legacy` EXTENDED", "`during`.`orders` EXTENDED"]
    job_log = storage.get_bytes(catalog.backup_prefix(meta.backup_id).rstrip("/") + "/job.log")
    assert b"measured beside the stream, the others after it (the binlog shows" in job_log
    sums = recorded(meta)
    during = {n: (t.rows, t.checksum) for n, t in sums.tables.items() if n.startswith("during.")}
    assert during == live(source, "during")
    assert sums.tables["during.legacy"].rows == 2999
    restore_physical(
        connection(target),
        target,
        catalog,
        meta.backup_id,
        key=None,
        workdir=tmp_path / "restore",
    )
    measured = measure_scratch(connection(target), tables=sums.tables, workdir=tmp_path)
    assert compare(sums, measured) == []


def test_a_logical_backup_measures_its_selection_beside_the_dump(
    source: MariaDBServer,
    catalog: Catalog,
    general_log: GeneralLog,
    tmp_path: Path,
):
    fill(source, "dumped", rows=2000)
    fill(source, "other", rows=10)
    general_log.on()

    meta = backup_logical(
        connection(source),
        catalog,
        backup_id=new_id(),
        workdir=tmp_path,
        databases=["dumped"],
    )

    measured = [s for s in general_log.statements() if s.startswith(CHECKSUM)]
    assert sorted(measured) == sorted(
        f"CHECKSUM TABLE `dumped`.`{t}` EXTENDED" for t in ("events", "legacy", "orders")
    )
    sums = TableSums.from_dict(meta.table_sums)
    assert {n: (t.rows, t.checksum) for n, t in sums.tables.items()} == live(source, "dumped")


def test_a_failed_backup_ends_the_measurement_and_its_statement_at_once(
    source: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    fill(source, "locked", rows=100)
    waiting = (
        "SELECT id FROM information_schema.processlist"
        " WHERE info LIKE 'CHECKSUM TABLE `locked`%' AND state LIKE '%metadata lock%'"
    )

    def fail_once_the_sums_wait(event: ProgressEvent) -> None:
        if event.phase == "backup" and event.bytes_done > 0:
            wait_for(lambda: bool(source.query(waiting)))
            raise RuntimeError("the storage went away")

    with queued_behind_an_alter(source, "locked.orders", tmp_path):
        started = time.monotonic()
        with pytest.raises(BackupError, match="the storage went away"):
            backup_full(
                connection(source),
                catalog,
                backup_id=new_id(),
                workdir=tmp_path / "backup",
                progress=fail_once_the_sums_wait,
            )
        took = time.monotonic() - started
        assert lingering_threads("table-sums") == []
        wait_for(lambda: not source.query(waiting), timeout=5)
    assert took < 20, f"the failure took {took:.1f} s to report"


def test_row_counts_come_from_the_checksum_scan_where_exact_and_equal_count(
    source: MariaDBServer, general_log: GeneralLog, catalog: Catalog, tmp_path: Path
):
    source.execute(
        "DROP DATABASE IF EXISTS kinds; CREATE DATABASE kinds; USE kinds;"
        "CREATE TABLE plain (id INT PRIMARY KEY, v INT) ENGINE=InnoDB;"
        "INSERT INTO plain SELECT seq, seq FROM seq_1_to_1000;"
        "DELETE FROM plain WHERE id % 7 = 0;"
        "CREATE TABLE nopk (v INT) ENGINE=InnoDB; INSERT INTO nopk SELECT seq FROM seq_1_to_50;"
        "CREATE TABLE empty (id INT PRIMARY KEY) ENGINE=InnoDB;"
        "CREATE TABLE parts (id INT PRIMARY KEY, v INT) ENGINE=InnoDB"
        " PARTITION BY HASH(id) PARTITIONS 4;"
        "INSERT INTO parts SELECT seq, seq FROM seq_1_to_1000;"
        "CREATE TABLE versioned (id INT PRIMARY KEY, v INT) ENGINE=InnoDB WITH SYSTEM VERSIONING;"
        "INSERT INTO versioned SELECT seq, seq FROM seq_1_to_100;"
        "UPDATE versioned SET v = v + 1 WHERE id <= 10; DELETE FROM versioned WHERE id > 90;"
    )
    everything = live(source, "kinds")  # base tables; and the system-versioned one:
    everything["kinds.versioned"] = (
        int(source.scalar("SELECT COUNT(*) FROM kinds.versioned")),
        int(source.query("CHECKSUM TABLE kinds.versioned EXTENDED")[0][1]),
    )
    general_log.on()

    meta = backup_full(connection(source), catalog, backup_id=new_id(), workdir=tmp_path)

    sums = recorded(meta)
    kinds = {n: (t.rows, t.checksum) for n, t in sums.tables.items() if n.startswith("kinds.")}
    assert kinds == everything
    assert kinds["kinds.plain"][0] == 858
    assert kinds["kinds.parts"][0] == 1000  # not 1003: each partition ends its scan
    assert kinds["kinds.versioned"][0] == 90  # not 110: the checksum reads history too
    assert kinds["kinds.empty"][0] == 0
    counted = sorted(c for c in general_log.counts() if "`kinds`" in c)
    assert counted == [
        "SELECT IFNULL(SUM(1), 0) FROM `kinds`.`parts`",
        "SELECT IFNULL(SUM(1), 0) FROM `kinds`.`versioned`",
    ]
    scratch = measure_scratch(connection(source), tables=sums.tables, workdir=tmp_path)
    assert compare(sums, scratch) == []


def test_tables_the_early_budget_did_not_reach_are_measured_after_the_stream(
    source: MariaDBServer, tmp_path: Path
):
    source.execute(
        "DROP DATABASE IF EXISTS late; CREATE DATABASE late; USE late;"
        "CREATE TABLE a_first (id INT PRIMARY KEY) ENGINE=InnoDB;"
        "CREATE TABLE b_blocked (id INT PRIMARY KEY) ENGINE=InnoDB;"
        "INSERT INTO a_first SELECT seq FROM seq_1_to_30;"
        "INSERT INTO b_blocked SELECT seq FROM seq_1_to_40;"
    )
    spec = connection(source)
    flavour = detect(spec)
    early_stuck = (
        "SELECT id FROM information_schema.processlist"
        " WHERE info LIKE 'CHECKSUM TABLE `late`.`b_blocked`%' AND state LIKE '%metadata lock%'"
    )
    beside = Beside(
        spec, flavour, workdir=tmp_path, limits=Limits(budget_seconds=2), databases=["late"]
    )
    # LOCK TABLES (not in the binlog: it shows no change) holds b_blocked away from the
    # early session until its budget runs out; no backup tool is involved here
    with open_session(
        spec, client="mariadb", workdir=tmp_path, deadline=time.monotonic() + 60
    ) as holder:
        holder.run("LOCK TABLES late.b_blocked WRITE;", deadline=time.monotonic() + 10)
        with beside:
            wait_for(lambda: bool(source.query(early_stuck)))
            time.sleep(2.5)  # the early budget runs out while b_blocked waits
            assert not source.query(early_stuck), "the early statement outlived its budget"
            holder.run("UNLOCK TABLES;", deadline=time.monotonic() + 10)
            file, position = source.query("SHOW MASTER STATUS")[0][:2]
            meta = replace(
                backup("b1", 1),
                binlog_file=file,
                binlog_position=int(position),
                databases=["late"],
            )
            sums = beside.finish(meta)

    assert {n: t.rows for n, t in sums.tables.items()} == {
        "late.a_first": 30,
        "late.b_blocked": 40,
    }
    assert sums.skipped == {}
    assert beside.how is not None
    assert beside.how.startswith("1 measured beside the stream, the others after it")
