"""Table sums: the document, its place in backup.json, compare, and the binlog window."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pytest

from database_backup.catalog import BackupMetadata, MetadataError
from database_backup.mysql.flavour import for_name
from database_backup.mysql.tablesums import (
    MAX_MISMATCHES,
    Limits,
    TableSum,
    TableSums,
    compare,
    compared_tables,
)
from database_backup.mysql.tablesums.measure import (
    list_tables,
    measure_tables,
    record_in_session,
)
from database_backup.mysql.tablesums.session import Reply, SessionTimeoutError
from database_backup.mysql.tablesums.window import MAX_EVENTS, PAGE, Position, read_changes
from tests.unit.catalog.factories import backup

AT = datetime(2026, 11, 29, 4, 0, 0, 123000, tzinfo=timezone.utc)
VERSION = "10.11.19-MariaDB-0+deb12u1"
#: how the rows are counted when the checksum's scan cannot say (never a stored count)
COUNT = "SELECT IFNULL(SUM(1), 0)"


def sums(**tables: tuple[int, int | None]) -> TableSums:
    return TableSums(
        tables={name.replace("__", "."): TableSum(*value) for name, value in tables.items()},
        measured_at=AT,
        server_version=VERSION,
    )


# -- the document --------------------------------------------------------------------


def test_document_round_trips_through_json() -> None:
    recorded = sums(shop__orders=(2500, 3735928559), shop__empty=(0, 0))
    recorded.skipped["shop.events"] = "changed after the backup's consistent point"
    recorded.unlisted = 3

    again = TableSums.from_dict(json.loads(json.dumps(recorded.to_dict())))

    assert again == recorded
    assert recorded.to_dict()["tables"]["shop.orders"] == {"rows": 2500, "checksum": 3735928559}
    assert recorded.to_dict()["measured-at"] == "2026-11-29T04:00:00.123000Z"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tables": []}, "tables must be an object"),
        ({"tables": {"orders": {"rows": 1, "checksum": 1}}}, "under db.table"),
        ({"tables": {"shop.orders": {"rows": -1, "checksum": 1}}}, "non-negative integer"),
        ({"tables": {"shop.orders": {"rows": True, "checksum": 1}}}, "non-negative integer"),
        ({"tables": {"shop.orders": {"rows": 1, "checksum": "x"}}}, "non-negative integer"),
        ({"skipped": {"shop.orders": 5}}, "must be a reason"),
        ({"measured-at": "yesterday"}, "measured-at"),
        ({"measured-at": None}, "measured-at"),
        ({"server-version": 10}, "server-version must be a string"),
        ({"unlisted": "many"}, "unlisted must be a non-negative integer"),
    ],
)
def test_bad_documents_are_refused_with_what_is_wrong(
    change: dict[str, Any], message: str
) -> None:
    document = {**sums(shop__orders=(1, 1)).to_dict(), **change}

    with pytest.raises(ValueError, match=re.escape(message)):
        TableSums.from_dict(document)


def test_a_document_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError, match="must be a JSON object"):
        TableSums.from_dict(["shop.orders"])


# -- backup.json carries it ------------------------------------------------------------


def test_backup_json_keeps_table_sums_under_its_key() -> None:
    document = sums(shop__orders=(2500, 17)).to_dict()
    meta = replace(backup("b1", 1), table_sums=document)

    written = meta.to_dict()
    again = BackupMetadata.from_dict(json.loads(json.dumps(written)))

    assert written["table-sums"] == document
    assert again.table_sums == document
    assert again.extra == {}
    assert TableSums.from_dict(again.table_sums) == sums(shop__orders=(2500, 17))


def test_backup_json_without_table_sums_reads_as_none() -> None:
    document = backup("b1", 1).to_dict()
    document.pop("table-sums", None)

    assert BackupMetadata.from_dict(document).table_sums is None


def test_backup_json_with_table_sums_not_an_object_is_refused() -> None:
    document = {**backup("b1", 1).to_dict(), "table-sums": ["shop.orders"]}

    with pytest.raises(MetadataError, match="table-sums must be an object or null"):
        BackupMetadata.from_dict(document)


# -- compare ---------------------------------------------------------------------------


def test_equal_sums_have_no_mismatch() -> None:
    recorded = sums(shop__orders=(2500, 99), shop__items=(10, 5))

    assert compare(recorded, sums(shop__orders=(2500, 99), shop__items=(10, 5))) == []
    assert compared_tables(recorded, recorded) == ["shop.items", "shop.orders"]


def test_row_count_checksum_and_missing_tables_are_mismatches() -> None:
    recorded = sums(shop__orders=(2500, 99), shop__items=(10, 5), shop__gone=(3, 1))
    measured = sums(shop__orders=(2499, 98), shop__items=(10, 6), shop__new=(1, 1))

    assert compare(recorded, measured) == [
        "shop.gone: 3 rows recorded, the table is missing",
        "shop.items: checksum 5 recorded, 6 found (same 10 rows, different contents)",
        "shop.orders: 2500 rows recorded, 2499 found",
    ]


def test_skipped_tables_are_not_compared() -> None:
    recorded = sums(shop__orders=(2500, 99))
    recorded.skipped["shop.events"] = "changed after the backup's consistent point"
    measured = sums(shop__events=(1, 1))
    measured.skipped["shop.orders"] = "the time budget ran out before it was measured"

    assert compare(recorded, measured) == []
    assert compared_tables(recorded, measured) == []


def test_checksums_of_another_server_release_are_not_compared_but_rows_are() -> None:
    recorded = sums(shop__orders=(2500, 99), shop__items=(10, 5))
    measured = replace(
        sums(shop__orders=(2500, 1), shop__items=(11, 5)), server_version="11.4.2-MariaDB"
    )

    assert compare(recorded, measured) == ["shop.items: 10 rows recorded, 11 found"]


def test_mismatches_are_bounded_and_counted() -> None:
    recorded = sums(**{f"db__t{i:03}": (i, i) for i in range(50)})

    lines = compare(recorded, sums())

    assert len(lines) == MAX_MISMATCHES + 1
    assert lines[0] == "db.t000: 0 rows recorded, the table is missing"
    assert lines[-1] == f"... and {50 - MAX_MISMATCHES} more mismatching tables"


# -- the binlog window -----------------------------------------------------------------


class ScriptedSession:
    """Answers SHOW BINARY LOGS and SHOW BINLOG EVENTS from a list of events."""

    connection_id: int | None = None

    def __init__(self, files: dict[str, list[tuple[str, str, str]]]) -> None:
        self.files = files  # file -> [(event type, info, ...)]
        self.statements: list[str] = []

    def run(self, sql: str, *, deadline: float) -> Reply:
        self.statements.append(sql)
        if sql.startswith("SHOW BINARY LOGS"):
            return Reply(rows=[(name, "1000") for name in self.files], errors=[])
        found = re.match(r"SHOW BINLOG EVENTS IN '(.+)' FROM (\d+) LIMIT (\d+);", sql)
        assert found, sql
        name, start, limit = found.group(1), int(found.group(2)), int(found.group(3))
        rows = [row for row in self._rows(name) if int(row[1]) >= start]
        return Reply(rows=rows[:limit], errors=[])

    def _rows(self, name: str) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        position = 4
        for kind, info, *_ in self.files[name]:
            rows.append((name, str(position), kind, "1", str(position + 10), info))
            position += 10
        return rows


def event(kind: str, info: str) -> tuple[str, str, str]:
    return (kind, info, "")


def test_row_events_and_statements_mark_their_tables_changed() -> None:
    session = ScriptedSession(
        {
            "bin.000001": [
                event("Gtid", "BEGIN GTID 0-1-1"),  # 4: before the backup point
                event("Table_map", "table_id: 1 (shop.before)"),  # 14
                event("Gtid", "BEGIN GTID 0-1-2"),  # 24: the backup point
                event("Annotate_rows", "UPDATE shop.orders SET x = 1"),
                event("Table_map", "table_id: 2 (shop.orders)"),
                event("Update_rows_v1", "table_id: 2 flags: STMT_END_F"),
                event("Xid", "COMMIT /* xid=3 */"),
                event("Rotate", "bin.000002;pos=4"),
            ],
            "bin.000002": [
                event("Query", "BEGIN"),
                event("Query", "use `crm`; ALTER TABLE contacts ADD c INT"),
                event("Query", "COMMIT"),
                event("Table_map", "table_id: 9 (shop.after_snapshot)"),  # 34: snapshot
            ],
        }
    )

    changes = read_changes(
        session, Position("bin.000001", 24), Position("bin.000002", 34), deadline=1e12
    )

    assert changes.everything is None
    assert changes.tables == {"shop.orders"}
    assert changes.reason("shop.orders") == "the binlog has row events for it"
    assert changes.reason("shop.before") is None
    assert changes.reason("shop.after_snapshot") is None
    assert changes.reason("crm.contacts") is not None
    assert changes.reason("crm.other") is None
    assert changes.reason("shop.contacts") is None  # another database's table of that name


@pytest.mark.parametrize(
    ("statement", "changed", "unchanged"),
    [
        ("use `crm`; ALTER TABLE contacts ADD c INT", ["crm.contacts"], ["crm.contacts_old"]),
        ("use `shop`; ALTER TABLE crm.contacts ADD c INT", ["crm.contacts"], ["shop.contacts"]),
        ("RENAME TABLE `crm`.`a` TO `crm`.`b`", ["crm.a", "crm.b"], ["crm.c"]),
        ("use `x`; DROP DATABASE crm", ["crm.a", "crm.b"], ["x.crm", "shop.a"]),
        ("use `crm`; TRUNCATE TABLE a", ["crm.a"], ["crm.b"]),
        ("use `crm`; DROP TABLE `we``ird`", ["crm.we`ird"], ["crm.we"]),
        ("ALTER TABLE `c``rm`.`t` ADD c INT", ["c`rm.t"], ["crm.t"]),
        ("use `d`; ALTER TABLE t COMMENT 'it`s', RENAME TO `u`", ["d.t", "d.u"], ["d.s"]),
        ("use `d`; ALTER TABLE T1 ADD c INT", ["d.t1"], ["d.t2"]),
    ],
)
def test_ddl_statements_mark_the_tables_they_name(
    statement: str, changed: list[str], unchanged: list[str]
) -> None:
    session = ScriptedSession({"bin.000001": [event("Query", statement)]})

    changes = read_changes(
        session, Position("bin.000001", 4), Position("bin.000001", 100), deadline=1e12
    )

    assert changes.everything is None
    assert [name for name in changed if changes.reason(name) is None] == []
    assert [name for name in unchanged if changes.reason(name) is not None] == []


@pytest.mark.parametrize(
    "statement",
    [
        "use `shop`; UPDATE order_view SET amount = 0",  # a view: its tables are not named
        "use `shop`; INSERT INTO audit VALUES (1)",  # a trigger may write other tables
        "use `shop`; CALL refill()",
    ],
)
def test_statement_format_changes_mark_everything_changed(statement: str) -> None:
    session = ScriptedSession({"bin.000001": [event("Query", statement)]})

    changes = read_changes(
        session, Position("bin.000001", 4), Position("bin.000001", 100), deadline=1e12
    )

    assert changes.everything is not None
    assert "binlog_format" in changes.everything


def test_a_purged_binlog_marks_everything_changed() -> None:
    session = ScriptedSession({"bin.000007": []})

    changes = read_changes(
        session, Position("bin.000003", 4), Position("bin.000007", 4), deadline=1e12
    )

    assert changes.everything is not None
    assert "bin.000003" in changes.everything
    assert changes.reason("shop.orders") == changes.everything


def test_an_unknown_event_type_marks_everything_changed() -> None:
    session = ScriptedSession({"bin.000001": [event("Incident", "LOST_EVENTS")]})

    changes = read_changes(
        session, Position("bin.000001", 4), Position("bin.000001", 100), deadline=1e12
    )

    assert changes.everything == "a Incident event may change data without naming the table"


def test_the_window_is_read_in_pages_and_bounded() -> None:
    many = [event("Table_map", f"table_id: {i} (db.t{i % 7})") for i in range(3 * PAGE + 5)]
    session = ScriptedSession({"bin.000001": many})

    changes = read_changes(
        session, Position("bin.000001", 4), Position("bin.000001", 10**9), deadline=1e12
    )

    assert changes.tables == {f"db.t{i}" for i in range(7)}
    assert sum(s.startswith("SHOW BINLOG EVENTS") for s in session.statements) == 4
    assert MAX_EVENTS > PAGE


# -- what is measured and skipped (a scripted server) ----------------------------------


class ScriptedServer(ScriptedSession):
    """Also answers the snapshot, the table listing and the measurements (5 rows a table).

    ``kinds`` gives a table's type and create options (default: a plain base table);
    ``frozen_counter``: a server whose row-read counter does not move with CHECKSUM TABLE;
    ``slave_updates`` and ``applied`` (``@@gtid_slave_pos``): its replication settings.
    """

    def __init__(
        self,
        tables: dict[str, str],
        *,
        snapshot: tuple[str, str] | None = ("bin.000001", "4"),
        slow: str | None = None,
        kinds: dict[str, tuple[str, str]] | None = None,
        frozen_counter: bool = False,
        slave_updates: bool = True,
        applied: str = "",
    ) -> None:
        super().__init__({"bin.000001": []})
        self.slave_updates = slave_updates
        self.applied = applied
        self.tables = tables  # db.table -> engine
        self.snapshot = snapshot
        self.slow = slow
        self.kinds = kinds or {}
        self.frozen_counter = frozen_counter
        self.counter = 1000
        self.measures: list[str] = []

    def run(self, sql: str, *, deadline: float) -> Reply:
        if sql == "SELECT @@log_slave_updates, @@gtid_slave_pos;":
            return Reply(rows=[(str(int(self.slave_updates)), self.applied)], errors=[])
        if "CONSISTENT SNAPSHOT" in sql:
            if self.snapshot is None:  # MySQL
                return Reply(rows=[], errors=[])
            file, position = self.snapshot
            rows = [("Binlog_snapshot_file", file), ("Binlog_snapshot_position", position)]
            return Reply(rows=rows, errors=[])
        if sql.startswith("SELECT HEX("):
            rows = [
                (
                    *(part.encode().hex() for part in name.split(".", 1)),
                    engine,
                    "1000",
                    *self.kinds.get(name, ("BASE TABLE", "")),
                )
                for name, engine in sorted(self.tables.items())
            ]
            return Reply(rows=rows, errors=[])
        if "CHECKSUM TABLE" in sql or sql.startswith(f"{COUNT} FROM `"):
            return self._measure(sql)
        return super().run(sql, deadline=deadline)

    def _measure(self, sql: str) -> Reply:
        self.measures.append(sql)
        name = ".".join(re.findall(r"`([^`]+)`", sql)[:2])
        if name == self.slow:
            raise SessionTimeoutError("the statement did not finish within its time budget")
        if sql.startswith(COUNT):
            return Reply(rows=[("5",)], errors=[])
        if not sql.startswith("SHOW SESSION STATUS"):
            return Reply(rows=[(name, "77"), ("5",)], errors=[])
        before = self.counter
        if not self.frozen_counter:
            self.counter += 5 + 1  # each row read, and the read that finds the end
        counter = "Handler_read_rnd_next"
        rows = [(counter, str(before)), (name, "77"), (counter, str(self.counter))]
        return Reply(rows=rows, errors=[])


def record(server: ScriptedServer, meta: BackupMetadata | None = None) -> TableSums:
    sums = TableSums()
    record_in_session(
        server,
        for_name("mariadb", VERSION),
        meta or replace(backup("b1", 1), binlog_file="bin.000001", binlog_position=4),
        sums,
        Limits(),
        1e12,
    )
    return sums


def test_tables_are_measured_in_the_snapshot_and_other_engines_skipped() -> None:
    server = ScriptedServer({"shop.orders": "InnoDB", "shop.cache": "MEMORY"})

    sums = record(server)

    assert sums.tables == {"shop.orders": TableSum(rows=5, checksum=77)}
    assert sums.skipped == {"shop.cache": "the MEMORY engine is not measured"}


def test_a_server_without_snapshot_coordinates_records_no_sum() -> None:
    sums = record(ScriptedServer({"shop.orders": "InnoDB"}, snapshot=None))

    assert sums.tables == {}
    assert sums.skipped["shop.orders"].startswith(
        "mariadb does not report the binlog position of a consistent snapshot"
    )


def test_a_backup_without_binlog_position_records_no_sum() -> None:
    sums = record(ScriptedServer({"shop.orders": "InnoDB"}), meta=backup("b1", 1))

    assert sums.tables == {}
    assert "recorded no binlog position" in sums.skipped["shop.orders"]


def test_tables_not_reached_in_the_budget_are_skipped_with_the_reason() -> None:
    server = ScriptedServer(
        {"a.first": "InnoDB", "b.slow": "InnoDB", "c.never": "InnoDB"}, slow="b.slow"
    )

    sums = record(server)

    assert set(sums.tables) == {"a.first"}
    assert sums.skipped == {
        "b.slow": "the time budget ran out before it was measured",
        "c.never": "the time budget ran out before it was measured",
    }


def test_a_plain_innodb_table_is_read_once_its_rows_counted_by_the_checksum_scan() -> None:
    server = ScriptedServer({"shop.orders": "InnoDB"})

    sums = record(server)

    assert sums.tables == {"shop.orders": TableSum(rows=5, checksum=77)}
    assert [m for m in server.measures if COUNT in m] == []
    assert server.measures == [
        "SHOW SESSION STATUS LIKE 'Handler_read_rnd_next'; CHECKSUM TABLE `shop`.`orders`"
        " EXTENDED; SHOW SESSION STATUS LIKE 'Handler_read_rnd_next';"
    ]


@pytest.mark.parametrize(
    ("engine", "kind"),
    [
        ("InnoDB", ("BASE TABLE", "partitioned")),  # one end of scan per partition
        ("InnoDB", ("SYSTEM VERSIONED", "")),  # the checksum reads history rows too
        ("MyISAM", ("BASE TABLE", "")),  # the counter counts deleted rows too
        ("Aria", ("BASE TABLE", "")),
    ],
)
def test_tables_whose_scan_does_not_give_the_count_are_counted_by_reading_them(
    engine: str, kind: tuple[str, str]
) -> None:
    server = ScriptedServer({"shop.t": engine}, kinds={"shop.t": kind})

    sums = record(server)

    assert sums.tables == {"shop.t": TableSum(rows=5, checksum=77)}
    assert server.measures == [f"CHECKSUM TABLE `shop`.`t` EXTENDED; {COUNT} FROM `shop`.`t`;"]


def test_a_counter_that_does_not_move_is_not_trusted_the_rows_are_counted() -> None:
    server = ScriptedServer({"shop.orders": "InnoDB"}, frozen_counter=True)

    sums = record(server)

    assert sums.tables == {"shop.orders": TableSum(rows=5, checksum=77)}
    assert server.measures[-1] == f"{COUNT} FROM `shop`.`orders`;"


def test_without_count_by_scan_every_table_is_counted_by_a_read_of_its_own() -> None:
    server = ScriptedServer({"shop.orders": "InnoDB"})
    sums = TableSums()
    listed = list_tables(server, sums, Limits(), 1e12, wanted=None)

    measure_tables(server, listed, sums, 1e12)

    assert sums.tables == {"shop.orders": TableSum(rows=5, checksum=77)}
    assert all(COUNT in m for m in server.measures)


def test_a_reason_names_the_statement_kind_and_place_never_its_text() -> None:
    grant = "use `shop`; GRANT SELECT ON shop.orders TO 'u'@'%' IDENTIFIED BY 'sekrit-pw'"
    session = ScriptedSession({"bin.000001": [event("Query", "BEGIN"), event("Query", grant)]})

    changes = read_changes(
        session, Position("bin.000001", 4), Position("bin.000001", 100), deadline=1e12
    )

    assert changes.reason("shop.orders") == (
        "the binlog has a statement (GRANT, at bin.000001:14) naming it"
    )


def test_many_statements_against_many_tables_are_matched_quickly() -> None:
    statements = [
        event("Query", f"use `db{i % 50}`; CREATE TABLE IF NOT EXISTS tmp_{i} (id INT, note TEXT)")
        for i in range(5000)
    ]
    session = ScriptedSession({"bin.000001": statements})
    changes = read_changes(
        session, Position("bin.000001", 4), Position("bin.000001", 10**9), deadline=1e12
    )
    started = time.monotonic()

    changed = [name for i in range(2000) if changes.reason(name := f"db{i % 50}.t{i}")]

    assert changed == []
    assert changes.reason("db7.tmp_7") is not None
    assert time.monotonic() - started < 2


def test_the_job_log_line_says_what_was_measured_and_skipped() -> None:
    measured = sums(shop__orders=(1, 1))
    measured.skipped = {"shop.b": "reason b", "shop.a": "reason a"}
    failed = TableSums(error="recording the table sums failed: no client")

    assert measured.summary() == (
        "table sums: 1 tables measured, 2 skipped (first: shop.a: reason a)"
    )
    assert (
        failed.summary() == "table sums not recorded: recording the table sums failed: no client"
    )
