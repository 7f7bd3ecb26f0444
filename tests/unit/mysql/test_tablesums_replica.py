"""Table sums on a replica whose binlog does not show what replication applies.

With ``log_slave_updates`` OFF, a table replication changed after the backup's point looks
unchanged in the binlog: its sum would be recorded for data the backup does not hold, and a
drill of that backup would fail on a table nothing is wrong with.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from database_backup.mysql.flavour import for_name
from database_backup.mysql.tablesums import Limits, TableSum, TableSums
from database_backup.mysql.tablesums.measure import record_in_session
from database_backup.mysql.tablesums.replication import (
    CANNOT_TELL,
    HIDDEN_CHANGES,
    NOT_READ,
    hidden_changes,
    mark,
)
from database_backup.mysql.tablesums.session import Reply
from tests.unit.catalog.factories import backup
from tests.unit.mysql.test_tablesums import VERSION, ScriptedServer

ORDERS = {"shop.orders": "InnoDB", "shop.legacy": "MyISAM"}


def record(server: ScriptedServer, since: str | None = NOT_READ) -> TableSums:
    sums = TableSums()
    meta = replace(backup("b1", 1), binlog_file="bin.000001", binlog_position=4)
    record_in_session(
        server, for_name("mariadb", VERSION), meta, sums, Limits(), 1e12, since=since
    )
    return sums


def test_a_replica_that_applied_transactions_unseen_by_its_binlog_records_no_sum() -> None:
    server = ScriptedServer(ORDERS, slave_updates=False, applied="0-1-9")

    sums = record(server)

    assert sums.tables == {}
    assert sums.skipped == {"shop.legacy": HIDDEN_CHANGES, "shop.orders": HIDDEN_CHANGES}
    assert sums.error == HIDDEN_CHANGES
    assert server.measures == []  # nothing read for nothing
    assert "set log_slave_updates=ON" in sums.summary()


def test_a_replica_whose_replication_applied_nothing_during_the_backup_is_measured() -> None:
    server = ScriptedServer(ORDERS, slave_updates=False, applied="0-1-9")

    sums = record(server, since="0-1-9")

    assert sums.tables == {
        "shop.orders": TableSum(rows=5, checksum=77),
        "shop.legacy": TableSum(rows=5, checksum=77),
    }
    assert sums.error is None


def test_a_replica_whose_replication_moved_since_the_backup_started_records_no_sum() -> None:
    server = ScriptedServer(ORDERS, slave_updates=False, applied="0-1-10")

    sums = record(server, since="0-1-9")

    assert (sums.tables, sums.error) == ({}, HIDDEN_CHANGES)


@pytest.mark.parametrize(
    ("slave_updates", "applied"),
    [
        (True, "0-1-9"),  # a replica that writes what it applies to its binlog
        (False, ""),  # a server that never replicated: its binlog shows every change
    ],
)
def test_a_server_whose_binlog_shows_every_change_is_measured(
    slave_updates: bool, applied: str
) -> None:
    server = ScriptedServer(ORDERS, slave_updates=slave_updates, applied=applied)

    sums = record(server)

    assert set(sums.tables) == {"shop.orders", "shop.legacy"}
    assert sums.error is None


@pytest.mark.parametrize(
    ("first", "last", "hidden"),
    [
        (None, None, False),
        (NOT_READ, None, False),
        (NOT_READ, "", False),
        (NOT_READ, "0-1-9", True),
        ("", "", False),
        ("", "0-1-1", True),
        ("0-1-9", "0-1-9", False),
        ("0-1-9", "0-1-10", True),
        ("0-1-9,1-2-3", "0-1-9,1-2-4", True),
        (CANNOT_TELL, CANNOT_TELL, True),
        (NOT_READ, CANNOT_TELL, True),
        (None, "0-1-9", True),
    ],
)
def test_hidden_changes_between_two_marks(first: str | None, last: str | None, hidden: bool):
    assert hidden_changes(first, last) is hidden


class Answers:
    """A session answering each statement from a table (an error for the others)."""

    connection_id: int | None = None

    def __init__(self, answers: dict[str, Reply]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def run(self, sql: str, *, deadline: float) -> Reply:
        self.asked.append(sql)
        return self.answers.get(sql, Reply(rows=[], errors=["ERROR 1193: Unknown variable"]))


def test_mysql_marks_only_whether_its_binlog_shows_what_replication_applies() -> None:
    on = Answers({"SELECT @@log_replica_updates;": Reply(rows=[("1",)], errors=[])})
    off = Answers({"SELECT @@log_replica_updates;": Reply(rows=[("0",)], errors=[])})
    older = Answers({"SELECT @@log_slave_updates;": Reply(rows=[("0",)], errors=[])})

    assert mark(on, "mysql", 1e12) is None
    assert mark(off, "mysql", 1e12) == CANNOT_TELL
    assert mark(older, "mysql", 1e12) == CANNOT_TELL
    assert older.asked == ["SELECT @@log_replica_updates;", "SELECT @@log_slave_updates;"]


def test_a_mark_that_cannot_be_read_is_an_error_not_a_clear_window() -> None:
    from database_backup.mysql.connection import QueryError

    with pytest.raises(QueryError, match="cannot read log_replica_updates"):
        mark(Answers({}), "mysql", 1e12)
    with pytest.raises(QueryError, match="cannot read log_slave_updates"):
        mark(Answers({}), "mariadb", 1e12)
