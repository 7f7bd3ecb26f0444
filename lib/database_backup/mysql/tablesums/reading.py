"""One table's measure: ``CHECKSUM TABLE ... EXTENDED`` and its row count, in one scan.

``CHECKSUM TABLE ... EXTENDED`` reads every row through the storage engine's handler,
and the session counter ``Handler_read_rnd_next`` counts each read plus the one that finds
the end. So on MariaDB, for a plain InnoDB table, the counter's growth over the statement
minus one is the number of rows it checksummed, in the same snapshot: the table is read
once, where ``SELECT COUNT(*)`` read it a second time (a 252 MiB table: CHECKSUM TABLE
0.5-0.7 s, COUNT(*) 0.2-0.4 s more). Where the counter says something else, the rows are
counted by a second read (`count_sql`), as before:

- partitioned tables (one end per partition), system-versioned tables (the checksum reads
  the history rows too, ``COUNT(*)`` the current ones);
- MyISAM and Aria (the counter also counts deleted rows there);
- MySQL (not verified here: MySQL cannot run on this project's test machines);
- a counter that did not grow (a server that checksums another way).

That second read is ``SUM(1)``, not ``COUNT(*)``: for MyISAM and Aria ``COUNT(*)`` returns
the count the table stores, and that can be wrong. On a MariaDB 10.11 replica, an Aria
table filled by replication (2,000 rows, row-based) answered ``COUNT(*)`` 557 for over 50 s
while reading it gave 2,000 (`tests/workload/test_table_sums_replica.py`): recorded, that
count is not the number of rows the backup holds.
"""

from __future__ import annotations

from .model import TableSum

#: the session counter of rows read by a table scan (SHOW STATUS itself does not move it)
_COUNTER = "SHOW SESSION STATUS LIKE 'Handler_read_rnd_next';"
_COUNTER_NAME = "handler_read_rnd_next"


def by_scan_sql(quoted: str) -> str:
    """The statements measuring table ``quoted``: the counter around its checksum."""
    return f"{_COUNTER} CHECKSUM TABLE {quoted} EXTENDED; {_COUNTER}"


def with_count_sql(quoted: str) -> str:
    """The statements measuring table ``quoted`` with a row count of its own (`count_sql`)."""
    return f"CHECKSUM TABLE {quoted} EXTENDED; {count_sql(quoted)}"


def count_sql(quoted: str) -> str:
    """The statement counting ``quoted``'s rows by reading them (never a stored count)."""
    return f"SELECT IFNULL(SUM(1), 0) FROM {quoted};"  # noqa: S608


def from_scan(rows: list[tuple[str, ...]]) -> tuple[int | None, int | None] | None:
    """``(checksum, rows)`` read from `by_scan_sql`'s output; ``rows`` None: count it.

    None when the output is not understood (no checksum value).
    """
    if len(rows) != 3 or len(rows[1]) < 2:
        return None
    checksum = _number(rows[1][-1])
    if checksum is None:
        return None
    before, after = _counter(rows[0]), _counter(rows[2])
    if before is None or after is None or after - before < 1:
        return checksum, None
    return checksum, after - before - 1


def with_count(rows: list[tuple[str, ...]]) -> TableSum | None:
    """The measure read from `with_count_sql`'s output (None: not understood)."""
    if len(rows) != 2 or len(rows[1]) != 1:
        return None
    checksum, count = _number(rows[0][-1]), _number(rows[1][0])
    if checksum is None or count is None:
        return None
    return TableSum(rows=count, checksum=checksum)


def counted(rows: list[tuple[str, ...]]) -> int | None:
    """The row count read from `count_sql`'s output (None: not understood)."""
    if len(rows) != 1 or len(rows[0]) != 1:
        return None
    return _number(rows[0][0])


def _counter(row: tuple[str, ...]) -> int | None:
    if len(row) != 2 or row[0].lower() != _COUNTER_NAME:
        return None
    return _number(row[1])


def _number(value: str) -> int | None:
    return int(value) if value.isdigit() else None
