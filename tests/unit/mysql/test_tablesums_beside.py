"""Which early table sums hold for the backup (`tablesums.beside`), decided from the binlog."""

from __future__ import annotations

import pytest

from database_backup.mysql.tablesums.beside import binlog_order, early_sum_holds
from database_backup.mysql.tablesums.measure import Table
from database_backup.mysql.tablesums.window import Changes, Position, Statement

ORDERS = Table("shop.orders", "`shop`.`orders`", "InnoDB", 1)
LEGACY = Table("shop.legacy", "`shop`.`legacy`", "MyISAM", 1)


def rows_for(*names: str) -> Changes:
    return Changes(tables=set(names))


def ddl(text: str, database: str = "shop") -> Changes:
    changes = Changes()
    changes.add(Statement.parse(database, text, text.split()[0].upper(), "bin.000002:400"))
    return changes


@pytest.mark.parametrize(
    ("table", "between", "since", "holds"),
    [
        (ORDERS, Changes(), Changes(), True),
        # InnoDB is read in the snapshot: rows written after both points do not matter
        (ORDERS, Changes(), rows_for("shop.orders"), True),
        (ORDERS, rows_for("shop.orders"), Changes(), False),
        (ORDERS, ddl("ALTER TABLE orders ADD c INT"), Changes(), False),
        # DDL after both points changes what CHECKSUM TABLE computes in the snapshot
        (ORDERS, Changes(), ddl("ALTER TABLE orders ADD c INT"), False),
        (ORDERS, Changes(), ddl("ALTER TABLE other ADD c INT"), True),
        # MyISAM ignores the snapshot: any change from the first point on matters
        (LEGACY, Changes(), rows_for("shop.legacy"), False),
        (LEGACY, rows_for("shop.legacy"), Changes(), False),
        (LEGACY, rows_for("shop.orders"), rows_for("shop.orders"), True),
    ],
)
def test_an_early_sum_holds_only_when_the_binlog_shows_no_change_that_matters(
    table: Table, between: Changes, since: Changes, holds: bool
) -> None:
    assert early_sum_holds(table, between, since) is holds


def test_a_window_that_cannot_be_read_holds_nothing() -> None:
    unreadable = Changes(everything="the binlog bin.000001 is no longer on the server")

    assert not early_sum_holds(ORDERS, unreadable, Changes())
    assert not early_sum_holds(ORDERS, Changes(), unreadable)
    assert not early_sum_holds(LEGACY, Changes(), unreadable)


def test_binlog_positions_order_by_file_number_then_offset() -> None:
    positions = [
        Position("bin.1000000", 4),
        Position("bin.000010", 4),
        Position("bin.000009", 900),
        Position("bin.000010", 120),
        Position("bin.999999", 4),
    ]

    assert sorted(positions, key=binlog_order) == [
        Position("bin.000009", 900),
        Position("bin.000010", 4),
        Position("bin.000010", 120),
        Position("bin.999999", 4),
        Position("bin.1000000", 4),
    ]


def test_ddl_in_a_window_is_seen_even_when_no_listed_table_is_named() -> None:
    assert ddl("CREATE TABLE added (id INT)").has_statements
    assert not rows_for("shop.orders").has_statements
