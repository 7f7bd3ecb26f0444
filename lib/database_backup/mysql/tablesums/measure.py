"""Measure tables: at backup time inside a consistent snapshot, or on an idle scratch server.

At backup time, after the backup stream is complete (`record_for_backup`: the tables
`beside` could not measure while the stream ran, or all of them on MySQL):

1. one session starts ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` and reads where the
   snapshot sits in the binlog (MariaDB's ``binlog_snapshot_file/position``);
2. the binlog between the backup's consistent point and the snapshot says which tables
   changed meanwhile: those are skipped, every other InnoDB table reads the same in the
   snapshot as in the backup, so its ``COUNT(*)`` and ``CHECKSUM TABLE`` are the backup's;
3. afterwards a second session reads the binlog from the snapshot to its end: DDL on an
   InnoDB table measured meanwhile (an instant ``ADD COLUMN`` changes what ``CHECKSUM
   TABLE`` computes inside the snapshot) drops its sum; non-transactional tables (MyISAM,
   Aria) ignore the snapshot, so they are kept only when the binlog names them nowhere
   from the backup's point to after the measurement (then they did not change).

Everything runs under one time budget (the last fifth, at most 10 s, kept for step 3)
and caps (`Limits`); what is left out is named in ``skipped`` with the reason; a
statement that outlives the budget ends its connection. Recording never fails a backup:
an error skips every table and says why in ``error``. A budget of 0 turns measuring off
(config/CLI ``table-sums-budget 0``): the tables are only listed, each skipped with
`TURNED_OFF`, which ``error`` repeats so that a drill says why it compared nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from database_backup.catalog import BackupMetadata

from ..connection import ConnectionSpec, QueryError, run_query
from ..flavour import MARIADB, Flavour, any_client
from . import reading, replication
from .model import TableSum, TableSums
from .session import SessionTimeoutError, Statements, open_session
from .window import Position, read_changes

logger = logging.getLogger(__name__)

SYSTEM_SCHEMAS = ("mysql", "sys", "performance_schema", "information_schema")
#: engines whose data a backup holds and CHECKSUM TABLE reads (transactional: InnoDB)
TRANSACTIONAL = frozenset({"InnoDB"})
NON_TRANSACTIONAL = frozenset({"MyISAM", "Aria"})
_AFTER_BACKUP = "after the backup's consistent point"
#: seconds of the budget kept to read the binlog written while the tables were measured
_CHECK_RESERVE = 10.0
#: why nothing was measured when the budget is 0 (the CLI/config option's name in it)
TURNED_OFF = "table sums turned off (table-sums-budget 0)"
#: seconds to list the tables when measuring is turned off
_LISTING_SECONDS = 10.0
_NO_BACKUP_POINT = (
    "the backup recorded no binlog position (binary logging is off?): whether the table "
    "changed after the backup cannot be told"
)
_NO_SNAPSHOT_POINT = (
    "does not report the binlog position of a consistent snapshot: the table cannot be "
    "measured as the backup holds it"
)
_COUNT_SQL = "SELECT COUNT(*) FROM information_schema.tables t WHERE {where};"
_BASE_TABLES = "t.table_type IN ('BASE TABLE', 'SYSTEM VERSIONED')"
_LIST_SQL = (
    "SELECT HEX(t.table_schema), HEX(t.table_name), IFNULL(t.engine, ''),"
    " IFNULL(t.data_length, 0) + IFNULL(t.index_length, 0), t.table_type,"
    " IFNULL(t.create_options, '')"
    " FROM information_schema.tables t WHERE {where}"
    " ORDER BY t.table_schema, t.table_name LIMIT {limit};"
)


@dataclass(frozen=True)
class Limits:
    """Bounds of one measurement.

    Attributes:
        budget_seconds: total time (listing, binlog reading and measuring); 0 (or less)
            measures nothing: the tables are listed and skipped with `TURNED_OFF`.
        max_table_bytes: tables with more data (information_schema) are skipped.
        max_tables: tables measured at most (by name order); later ones are skipped.
        max_listed_skips: tables named in ``skipped`` beyond those (the rest counted).
    """

    budget_seconds: float = 60.0
    max_table_bytes: int = 2**30
    max_tables: int = 2000
    max_listed_skips: int = 1000


@dataclass(frozen=True)
class Table:
    """A user table listed for measuring."""

    name: str  # db.table
    quoted: str  # `db`.`table`
    engine: str
    size: int
    #: neither partitioned nor system-versioned (see `reading`)
    plain: bool = True

    @property
    def counted_by_its_checksum(self) -> bool:
        """Whether the checksum's own scan gives the row count (`reading`; on MariaDB)."""
        return self.plain and self.engine in TRANSACTIONAL


def record_for_backup(
    conn: ConnectionSpec,
    flavour: Flavour,
    meta: BackupMetadata,
    *,
    workdir: str | os.PathLike[str],
    limits: Limits | None = None,
    exclude: Collection[str] = (),
    since: str | None = replication.NOT_READ,
) -> TableSums:
    """The table sums of the data backup ``meta`` holds (its databases/tables if selected).

    Tables named in ``exclude`` are neither measured nor named (measured already: see
    `beside`). ``since``: the `replication.mark` read before the backup's consistent point
    (not read: only a server that never replicated can be measured when its binlog misses
    what replication applies). Never raises: on any error every listed table is skipped
    with the error as reason.
    """
    limits = limits or Limits()
    if limits.budget_seconds <= 0:
        return _turned_off(conn, flavour, meta, workdir, limits)
    deadline = time.monotonic() + limits.budget_seconds
    measuring = deadline - min(_CHECK_RESERVE, limits.budget_seconds / 5)
    sums = TableSums(server_version=flavour.version)
    client = flavour.client_tool
    try:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        with open_session(conn, client=client, workdir=workdir, deadline=measuring) as session:
            snapshot, measured = record_in_session(
                session, flavour, meta, sums, limits, measuring, exclude=exclude, since=since
            )
        if snapshot is not None and sums.tables:
            with open_session(conn, client=client, workdir=workdir, deadline=deadline) as session:
                _check_after_snapshot(
                    session, snapshot, measured, sums, deadline, flavour=flavour.name, since=since
                )
    except Exception as exc:
        reason = f"recording the table sums failed: {exc}"
        logger.warning("backup %s: %s", meta.backup_id, reason)
        _skip_all(sums, reason)
        sums.error = reason[:500]
    return sums


def _turned_off(
    conn: ConnectionSpec,
    flavour: Flavour,
    meta: BackupMetadata,
    workdir: str | os.PathLike[str],
    limits: Limits,
) -> TableSums:
    """Measuring is off: list the tables only, each skipped with `TURNED_OFF` (never raises)."""
    sums = TableSums(server_version=flavour.version, error=TURNED_OFF)
    deadline = time.monotonic() + _LISTING_SECONDS
    try:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        with open_session(
            conn, client=flavour.client_tool, workdir=workdir, deadline=deadline
        ) as session:
            wanted = _selection(meta)
            listed = list_tables(
                session, sums, limits, deadline, wanted=wanted, databases=meta.databases
            )
            _skip(sums, listed, TURNED_OFF)
    except Exception as exc:
        logger.warning(
            "backup %s: %s; the tables could not be listed: %s", meta.backup_id, TURNED_OFF, exc
        )
    _skip_all(sums, TURNED_OFF)
    return sums


def measure_scratch(
    conn: ConnectionSpec,
    *,
    budget_seconds: float = 60.0,
    tables: Collection[str] | None = None,
    client: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
    limits: Limits | None = None,
) -> TableSums:
    """The table sums of an idle server (a drill's scratch server: nothing writes to it).

    Args:
        conn: the server.
        budget_seconds: total time; tables not reached are skipped with the reason.
        tables: measure only these ``db.table`` names (those a backup recorded); all user
            tables when None.
        client: the command-line client; any installed one when None.
        workdir: where the 0600 defaults file goes.
        limits: caps (their budget is replaced by ``budget_seconds``).

    Raises:
        QueryError: the server cannot be reached or listed (a drill reports that).
    """
    base = limits or Limits()
    limits = dataclasses.replace(base, budget_seconds=budget_seconds)
    deadline = time.monotonic() + budget_seconds
    client = client or any_client()
    version = run_query(conn, "SELECT VERSION();", client=client, workdir=workdir)
    sums = TableSums(server_version=version[0][0] if version else None)
    mariadb = "mariadb" in (sums.server_version or "").lower()
    with open_session(conn, client=client, workdir=workdir, deadline=deadline) as session:
        candidates = list_tables(session, sums, limits, deadline, wanted=tables)
        measure_tables(session, candidates, sums, deadline, count_by_scan=mariadb)
    return sums


def record_in_session(
    session: Statements,
    flavour: Flavour,
    meta: BackupMetadata,
    sums: TableSums,
    limits: Limits,
    deadline: float,
    *,
    exclude: Collection[str] = (),
    since: str | None = replication.NOT_READ,
) -> tuple[Position | None, list[Table]]:
    """Measure in a snapshot what the binlog says is as the backup holds it.

    Returns the snapshot's binlog position (None when nothing could be measured) and the
    tables measured; tables in ``exclude`` are left out (not listed, not named). ``since``:
    see `record_for_backup`; when replication applied what the binlog does not show since
    then, every table is skipped and ``sums.error`` says why.
    """
    hidden = replication.hidden_changes(since, replication.mark(session, flavour.name, deadline))
    snapshot = start_snapshot(session, deadline)
    wanted = _selection(meta)
    candidates = list_tables(
        session, sums, limits, deadline, wanted=wanted, databases=meta.databases, exclude=exclude
    )
    if meta.binlog_file is None or meta.binlog_position is None:
        _skip(sums, candidates, _NO_BACKUP_POINT)
        return None, []
    if hidden:
        _skip(sums, candidates, replication.HIDDEN_CHANGES)
        sums.error = replication.HIDDEN_CHANGES
        return None, []
    if snapshot is None:
        _skip(sums, candidates, f"{flavour.name} {_NO_SNAPSHOT_POINT}")
        return None, []
    backup_point = Position(meta.binlog_file, meta.binlog_position)
    changed = read_changes(session, backup_point, snapshot, deadline=deadline)
    kept: list[Table] = []
    for table in candidates:
        reason = changed.reason(table.name)
        if reason is not None:
            sums.skipped[table.name] = f"changed {_AFTER_BACKUP}: {reason}"
        else:
            kept.append(table)
    measure_tables(session, kept, sums, deadline, count_by_scan=flavour.name == MARIADB)
    return snapshot, [table for table in kept if table.name in sums.tables]


def start_snapshot(session: Statements, deadline: float) -> Position | None:
    """Open a consistent snapshot in ``session``; its binlog position (None: not reported).

    Raises:
        QueryError: the snapshot could not be started.
    """
    reply = session.run(
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ;"
        "START TRANSACTION WITH CONSISTENT SNAPSHOT;"
        "SHOW STATUS LIKE 'binlog_snapshot_%';",
        deadline=deadline,
    )
    if reply.errors:
        raise QueryError(reply.errors[0])
    status = {row[0].lower(): row[1] for row in reply.rows if len(row) == 2}
    snapshot_file = status.get("binlog_snapshot_file")
    snapshot_position = status.get("binlog_snapshot_position", "")
    if not snapshot_file or not snapshot_position.isdigit():
        return None
    return Position(snapshot_file, int(snapshot_position))


def _check_after_snapshot(
    session: Statements,
    snapshot: Position,
    measured: list[Table],
    sums: TableSums,
    deadline: float,
    *,
    flavour: str,
    since: str | None,
) -> None:
    """Drop the sums the binlog written since the snapshot makes doubtful.

    A non-transactional table is read as it is, not as the snapshot sees it: any change
    to it until it was read makes its sum doubtful. An InnoDB table is read in the
    snapshot, but DDL after it (an instant ``ALTER TABLE ... ADD COLUMN``) changes what
    ``CHECKSUM TABLE`` computes there. Changes the binlog does not show (a replica's,
    `replication`) since the mark ``since`` drop every sum.
    """
    if replication.hidden_changes(since, replication.mark(session, flavour, deadline)):
        _skip_all(sums, replication.HIDDEN_CHANGES)
        sums.error = replication.HIDDEN_CHANGES
        return
    reply = session.run("SHOW MASTER STATUS;", deadline=deadline)
    if reply.errors or not reply.rows or len(reply.rows[0]) < 2:
        raise QueryError("cannot read where the binlog ends: " + "; ".join(reply.errors))
    end = Position(reply.rows[0][0], int(reply.rows[0][1]))
    changes = read_changes(session, snapshot, end, deadline=deadline)
    for table in measured:
        if table.engine in NON_TRANSACTIONAL:
            reason = changes.reason(table.name)
            why = f"non-transactional ({table.engine}: no snapshot applies), changed since"
        else:
            reason = changes.definition_reason(table.name)
            why = "its definition changed while it was measured"
        if reason is not None:
            del sums.tables[table.name]
            sums.skipped[table.name] = f"{why}: {reason}"


def _selection(meta: BackupMetadata) -> set[str] | None:
    """The ``db.table`` names a table-scoped logical backup holds (None: no such scope)."""
    return set(meta.tables) if meta.tables else None


def list_tables(
    session: Statements,
    sums: TableSums,
    limits: Limits,
    deadline: float,
    *,
    wanted: Collection[str] | None,
    databases: Iterable[str] | None = None,
    exclude: Collection[str] = (),
) -> list[Table]:
    """The user tables to measure (selection and caps applied; the others put in skipped).

    Tables in ``exclude`` are dropped before the caps apply (measured elsewhere).
    """
    system = ", ".join(_string(name) for name in SYSTEM_SCHEMAS)
    where = [f"t.table_schema NOT IN ({system})", _BASE_TABLES]
    if databases is not None:
        where.append(f"t.table_schema IN ({', '.join(map(_string, databases)) or 'NULL'})")
    if wanted is not None:  # in the query: the caps must not cut chosen tables off
        names = ", ".join(map(_string, sorted(wanted))) or "NULL"
        where.append(f"CONCAT(t.table_schema, '.', t.table_name) IN ({names})")
    limit = limits.max_tables + limits.max_listed_skips
    sql = _LIST_SQL.format(where=" AND ".join(where), limit=limit + 1)
    reply = session.run(sql, deadline=deadline)
    if reply.errors:
        raise QueryError(f"cannot list the tables: {reply.errors[0]}")
    rows = [row for row in reply.rows if len(row) == 6]
    listed = [
        table
        for table in map(_table, rows)
        if table.name not in exclude and (wanted is None or table.name in wanted)
    ]
    if len(listed) > limit:
        sums.unlisted = _count_more(session, where, limit, deadline)
        listed = listed[:limit]
    candidates: list[Table] = []
    for table in listed:
        engine = table.engine or "no"
        if len(candidates) >= limits.max_tables:
            sums.skipped[table.name] = f"beyond the first {limits.max_tables} tables measured"
        elif table.engine not in TRANSACTIONAL | NON_TRANSACTIONAL:
            sums.skipped[table.name] = f"the {engine} engine is not measured"
        elif table.size > limits.max_table_bytes:
            sums.skipped[table.name] = (
                f"{table.size} bytes, over the {limits.max_table_bytes}-byte cap per table"
            )
        else:
            candidates.append(table)
    return candidates


def _count_more(session: Statements, where: list[str], listed: int, deadline: float) -> int:
    reply = session.run(_COUNT_SQL.format(where=" AND ".join(where)), deadline=deadline)
    try:
        return max(0, int(reply.rows[0][0]) - listed)
    except (IndexError, ValueError):
        return 0


def _table(row: tuple[str, ...]) -> Table:
    schema = bytes.fromhex(row[0]).decode(errors="replace")
    name = bytes.fromhex(row[1]).decode(errors="replace")
    return Table(
        name=f"{schema}.{name}",
        quoted=f"{_ident(schema)}.{_ident(name)}",
        engine=row[2],
        size=int(row[3]) if row[3].isdigit() else 0,
        plain=row[4] == "BASE TABLE" and "partitioned" not in row[5].lower(),
    )


def measure_tables(
    session: Statements,
    tables: list[Table],
    sums: TableSums,
    deadline: float,
    stop: threading.Event | None = None,
    *,
    count_by_scan: bool = False,
) -> bool:
    """Measure ``tables`` in order until the budget runs out (or ``stop`` is set).

    With ``count_by_scan`` (MariaDB), a table's row count comes from its checksum's scan
    where that count is exact (`reading`). Returns whether all were measured; those not
    reached are skipped with the reason.
    """
    for index, table in enumerate(tables):
        if stop is not None and stop.is_set():
            _skip(sums, tables[index:], "not measured: the backup ended first")
            return False
        by_scan = count_by_scan and table.counted_by_its_checksum
        try:
            measured, error = _measure_one(session, table, by_scan, deadline)
        except SessionTimeoutError:  # the session ends its connection on the way out
            _skip(sums, tables[index:], "the time budget ran out before it was measured")
            return False
        if measured is None:
            sums.skipped[table.name] = f"could not be read: {error}"
        else:
            sums.tables[table.name] = measured
    return True


def _measure_one(
    session: Statements, table: Table, by_scan: bool, deadline: float
) -> tuple[TableSum | None, str]:
    """One table's measure, or None and why not."""
    sql = reading.by_scan_sql(table.quoted) if by_scan else reading.with_count_sql(table.quoted)
    reply = session.run(sql, deadline=deadline)
    if reply.errors:
        return None, reply.errors[0]
    if not by_scan:
        return reading.with_count(reply.rows), "CHECKSUM TABLE gave no value"
    scanned = reading.from_scan(reply.rows)
    if scanned is None:
        return None, "CHECKSUM TABLE gave no value"
    checksum, rows = scanned
    if rows is None:  # the scan's count cannot be used: count the rows
        reply = session.run(reading.count_sql(table.quoted), deadline=deadline)
        rows = None if reply.errors else reading.counted(reply.rows)
        if rows is None:
            return None, reply.errors[0] if reply.errors else "the row count gave no value"
    return TableSum(rows=rows, checksum=checksum), ""


def _skip(sums: TableSums, tables: Iterable[Table], reason: str) -> None:
    for table in tables:
        sums.skipped[table.name] = reason


def _skip_all(sums: TableSums, reason: str) -> None:
    """Every table skipped (``reason``): measured ones too; nothing recorded stays."""
    for name in list(sums.tables):
        sums.skipped[name] = reason
    sums.tables.clear()
    for name in list(sums.skipped):
        sums.skipped[name] = reason


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _string(value: str) -> str:
    """A literal of ``value`` that no sql_mode reads otherwise (hex: compared exactly)."""
    return f"X'{value.encode().hex()}'"
