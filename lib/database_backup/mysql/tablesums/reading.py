"""One table's measure: ``CHECKSUM TABLE ... EXTENDED`` and its row count, in one scan.

``CHECKSUM TABLE ... EXTENDED`` reads every row through the storage engine's handler,
and the session counter ``Handler_read_rnd_next`` counts each read plus the one that finds
the end. So on MariaDB, for a plain InnoDB table, the counter's growth over the statement
minus one is the number of rows it checksummed, in the same snapshot: the table is read
once, where ``SELECT COUNT(*)`` read it a second time (a 252 MiB table: CHECKSUM TABLE
0.5-0.7 s, COUNT(*) 0.2-0.4 s more). Where the counter says something else, the count is
``COUNT(*)``, as before:

- partitioned tables (one end per partition), system-versioned tables (the checksum reads
  the history rows too, ``COUNT(*)`` the current ones);
- MyISAM and Aria (their count is stored: ``COUNT(*)`` costs nothing);
- MySQL (not verified here: MySQL cannot run on this project's test machines);
- a counter that did not grow (a server that checksums another way).
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
    """The statements measuring table ``quoted`` with a ``COUNT(*)`` of its own."""
    return f"CHECKSUM TABLE {quoted} EXTENDED; SELECT COUNT(*) FROM {quoted};"  # noqa: S608


def count_sql(quoted: str) -> str:
    """The statement counting ``quoted``'s rows (when the scan's count cannot be used)."""
    return f"SELECT COUNT(*) FROM {quoted};"  # noqa: S608


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
