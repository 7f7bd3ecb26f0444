"""Which tables changed between two binlog positions (``SHOW BINLOG EVENTS``, bounded).

A table is *changed* when a row event names it (its ``Table_map`` entry), or when a
statement logged as a ``Query`` event (DDL; DML in statement or mixed format) names it
or its database as a word: an over-approximation, so a sum is only ever recorded for a
table nothing touched. When the window cannot be read in full (a binlog purged, too many
events, an event type that may change data without saying where), every table counts as
changed, with that reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..connection import QueryError
from .session import Statements

#: events read per ``SHOW BINLOG EVENTS`` page, and in all
PAGE = 500
MAX_EVENTS = 200_000
#: text of statement (Query) events kept to look for table names
MAX_STATEMENT_BYTES = 16 * 2**20
_TABLE_MAP = re.compile(r"\((?P<name>.+)\)\s*$")
_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|XA)\b", re.IGNORECASE)
_HARMLESS = frozenset(
    {
        "Format_desc",
        "Gtid",
        "Gtid_list",
        "Binlog_checkpoint",
        "Xid",
        "Rotate",
        "Stop",
        "Annotate_rows",
        "Start_encryption",
        "Intvar",
        "Rand",
        "User var",
        "Heartbeat",
        "Previous_gtids",
        "Anonymous_Gtid",
        "Xa_prepare",
        "XA_prepare",
        "Transaction_payload",
    }
)
_ROWS = re.compile(r"^(Write|Update|Delete|Partial_update)_rows")


@dataclass(frozen=True)
class Position:
    """A binlog coordinate: file name and byte offset."""

    file: str
    position: int

    def __str__(self) -> str:
        return f"{self.file}:{self.position}"


@dataclass
class Changes:
    """What a binlog window says changed.

    Attributes:
        tables: ``db.table`` names of row events.
        statements: texts of data-changing statements (DDL, statement-format DML).
        everything: set when the window could not be read in full: every table changed.
    """

    tables: set[str] = field(default_factory=set[str])
    statements: list[str] = field(default_factory=list[str])
    everything: str | None = None
    statement_bytes: int = 0

    def reason(self, name: str) -> str | None:
        """Why table ``name`` (``db.table``) counts as changed in the window, or None."""
        if self.everything is not None:
            return self.everything
        if name in self.tables:
            return "the binlog has row events for it"
        database, _, table = name.partition(".")
        for text in self.statements:
            if _names_word(text, table) or _names_word(text, database):
                return "the binlog has a statement naming it or its database"
        return None


def _names_word(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w$]){re.escape(word)}(?![\w$])", text, re.IGNORECASE) is not None


def read_changes(
    session: Statements, start: Position, end: Position, *, deadline: float
) -> Changes:
    """The changes logged from ``start`` (inclusive) up to ``end`` (exclusive).

    Never raises for what it cannot read: the result's ``everything`` says why instead.
    """
    changes = Changes()
    try:
        files = _files_between(session, start, end, deadline)
    except QueryError as exc:
        changes.everything = f"the binary log could not be read: {exc}"
        return changes
    if isinstance(files, str):
        changes.everything = files
        return changes
    read = 0
    for name in files:
        position = start.position if name == start.file else 4
        stop = end.position if name == end.file else None
        while stop is None or position < stop:
            try:
                reply = session.run(
                    f"SHOW BINLOG EVENTS IN '{_literal(name)}' FROM {position} LIMIT {PAGE};",
                    deadline=deadline,
                )
            except QueryError as exc:
                changes.everything = f"the binary log could not be read: {exc}"
                return changes
            if reply.errors:
                changes.everything = f"the binary log could not be read: {reply.errors[0]}"
                return changes
            position = _take(changes, reply.rows, stop)
            read += len(reply.rows)
            if changes.everything is not None:
                return changes
            if read > MAX_EVENTS:
                changes.everything = (
                    f"more than {MAX_EVENTS} binlog events to inspect, too many to tell "
                    "which tables changed"
                )
                return changes
            if len(reply.rows) < PAGE or position < 0:
                break
    return changes


def _files_between(
    session: Statements, start: Position, end: Position, deadline: float
) -> list[str] | str:
    """The binlog files from ``start``'s to ``end``'s, or why they cannot be read."""
    reply = session.run("SHOW BINARY LOGS;", deadline=deadline)
    if reply.errors:
        raise QueryError(reply.errors[0])
    names = [row[0] for row in reply.rows if row]
    if start.file not in names:
        return (
            f"the binlog {start.file} of the backup's consistent point is no longer on the server"
        )
    if end.file not in names or names.index(end.file) < names.index(start.file):
        return f"the binlog {end.file} does not follow {start.file}"
    return names[names.index(start.file) : names.index(end.file) + 1]


def _take(changes: Changes, rows: Iterable[tuple[str, ...]], stop: int | None) -> int:
    """Record the events of one page before ``stop``; return where the next page starts.

    Returns -1 when ``stop`` was reached.
    """
    following = -1
    for row in rows:
        if len(row) < 6:
            changes.everything = "the binary log listing was not understood"
            return -1
        position, kind, end, info = int(row[1]), row[2], int(row[4]), "\t".join(row[5:])
        if stop is not None and position >= stop:
            return -1
        _note(changes, kind, info)
        if changes.everything is not None:
            return -1
        following = end
    return following


def _note(changes: Changes, kind: str, info: str) -> None:
    if kind == "Table_map":
        found = _TABLE_MAP.search(info)
        if found is None:
            changes.everything = f"a Table_map event was not understood: {info[:100]}"
        else:
            changes.tables.add(found.group("name"))
    elif kind.startswith(("Query", "Execute_load_query", "Begin_load_query")):
        if not _CONTROL.match(info):
            changes.statements.append(info)
            changes.statement_bytes += len(info)
            if changes.statement_bytes > MAX_STATEMENT_BYTES:
                changes.everything = (
                    f"more than {MAX_STATEMENT_BYTES} bytes of statements to inspect, too "
                    "many to tell which tables changed"
                )
    elif kind not in _HARMLESS and not _ROWS.match(kind):
        changes.everything = f"a {kind} event may change data without naming the table"


def _literal(name: str) -> str:
    return name.replace("\\", "\\\\").replace("'", "\\'")
