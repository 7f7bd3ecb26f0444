"""Which tables changed between two binlog positions (``SHOW BINLOG EVENTS``, bounded).

A table is *changed* when a row event names it (its ``Table_map`` entry), or when a DDL
statement (a ``Query`` event) names it: qualified anywhere, bare in the statement's
default database, or its database in ``CREATE/ALTER/DROP DATABASE``. Each statement is
lexed once into the names it holds (string literals skipped, keywords kept: generous),
and looked up per table in O(1). When the window cannot be tied to tables (a binlog
purged, too many events or statement bytes, DML logged as a statement: binlog_format
not ROW, so views, triggers and routines hide what it changed; an event type that may
change data without naming the table), every table counts as changed, with that reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..connection import QueryError
from .session import Statements

#: events read per ``SHOW BINLOG EVENTS`` page, and in all (measured on loopback: about
#: 150,000-200,000 events a second, so a busy minute of writes is read in a few seconds)
PAGE = 500
MAX_EVENTS = 1_000_000
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
_USE = re.compile(r"^\s*use\s+`(?P<db>(?:[^`]|``)+)`\s*;\s*", re.IGNORECASE)
_DDL = re.compile(
    r"^\s*(?:/\*.*?\*/\s*)*(CREATE|ALTER|DROP|RENAME|TRUNCATE|OPTIMIZE|REPAIR|ANALYZE|GRANT|"
    r"REVOKE|FLUSH)\b",
    re.IGNORECASE | re.DOTALL,
)
_DATABASE_DDL = re.compile(
    r"^\s*(?:/\*.*?\*/\s*)*(CREATE|ALTER|DROP)\s+(DATABASE|SCHEMA)\b", re.IGNORECASE | re.DOTALL
)
_ROWS = re.compile(r"^(Write|Update|Delete|Partial_update)_rows")


@dataclass(frozen=True)
class Position:
    """A binlog coordinate: file name and byte offset."""

    file: str
    position: int

    def __str__(self) -> str:
        return f"{self.file}:{self.position}"


#: an identifier (quoted with backticks or double quotes, or bare)
_IDENT = r'`(?:[^`]|``)+`|"(?:[^"]|"")+"|[\w$]+'
#: a string literal (skipped: a backtick in it opens no name), or a name, maybe qualified
_LEXEME = re.compile(
    rf"'(?:[^'\\]|\\.|'')*'|(?P<first>{_IDENT})(?:\s*\.\s*(?P<second>{_IDENT}))?", re.DOTALL
)


@dataclass(frozen=True)
class Statement:
    """A DDL statement of the binlog: its verb and place, and the names it holds.

    Attributes:
        verb: ``ALTER``, ``DROP``, ...
        at: ``file:position`` of its event.
        database: its default database (``use``), lower case.
        bare: names it holds unqualified, lower case.
        qualified: ``(database, table)`` pairs it names, lower case.
        on_database: a ``CREATE/ALTER/DROP DATABASE``: it touches every table of the
            databases it names.
    """

    verb: str
    at: str
    database: str | None
    bare: frozenset[str]
    qualified: frozenset[tuple[str, str]]
    on_database: bool

    @classmethod
    def parse(cls, database: str | None, text: str, verb: str, at: str) -> Statement:
        """Lex ``text`` once into the names it holds (generously: keywords count too)."""
        bare: set[str] = set()
        qualified: set[tuple[str, str]] = set()
        for lexeme in _LEXEME.finditer(text):
            first, second = lexeme.group("first"), lexeme.group("second")
            if first is None:
                continue  # a string literal
            if second is None:
                bare.add(_name(first))
            else:
                qualified.add((_name(first), _name(second)))
        return cls(
            verb=verb,
            at=at,
            database=database.lower() if database is not None else None,
            bare=frozenset(bare),
            qualified=frozenset(qualified),
            on_database=_DATABASE_DDL.match(text) is not None,
        )


def _name(token: str) -> str:
    """An identifier as the server knows it: quotes removed, doubled quotes undone."""
    if token[0] in '`"':
        token = token[1:-1].replace(token[0] * 2, token[0])
    return token.lower()


@dataclass
class Changes:
    """What a binlog window says changed.

    Attributes:
        tables: ``db.table`` names of row events.
        everything: set when the window cannot be tied to tables: every table changed.
        statement_bytes: text of the DDL statements read (bounded).
    """

    tables: set[str] = field(default_factory=set[str])
    everything: str | None = None
    statement_bytes: int = 0
    _qualified: dict[tuple[str, str], Statement] = field(
        default_factory=dict[tuple[str, str], Statement]
    )
    _bare: dict[tuple[str | None, str], Statement] = field(
        default_factory=dict[tuple[str | None, str], Statement]
    )
    _databases: dict[str, Statement] = field(default_factory=dict[str, Statement])

    def add(self, statement: Statement) -> None:
        """Index a DDL statement by the names it holds (the first one naming a table wins)."""
        for pair in statement.qualified:
            self._qualified.setdefault(pair, statement)
        for name in statement.bare:
            if statement.on_database:
                self._databases.setdefault(name, statement)
            else:
                self._bare.setdefault((statement.database, name), statement)

    @property
    def has_statements(self) -> bool:
        """Whether the window holds DDL (a table may have been created, renamed, dropped)."""
        return bool(self._qualified or self._bare or self._databases)

    def reason(self, name: str) -> str | None:
        """Why table ``name`` (``db.table``) counts as changed in the window, or None."""
        if name in self.tables and self.everything is None:
            return "the binlog has row events for it"
        return self.definition_reason(name)

    def definition_reason(self, name: str) -> str | None:
        """Why ``name``'s definition or whole contents may have changed (DDL), or None."""
        if self.everything is not None:
            return self.everything
        database, _, table = name.lower().partition(".")
        statement = (
            self._qualified.get((database, table))
            or self._bare.get((database, table))
            or self._databases.get(database)
        )
        if statement is None:
            return None
        return f"the binlog has a statement ({statement.verb}, at {statement.at}) naming it"


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
        _note(changes, kind, info, f"{row[0]}:{position}")
        if changes.everything is not None:
            return -1
        following = end
    return following


def _note(changes: Changes, kind: str, info: str, at: str) -> None:
    if kind == "Table_map":
        found = _TABLE_MAP.search(info)
        if found is None:
            changes.everything = f"a Table_map event was not understood: {info[:100]}"
        else:
            changes.tables.add(found.group("name"))
    elif kind.startswith(("Query", "Execute_load_query", "Begin_load_query")):
        _statement(changes, info, at)
    elif kind not in _HARMLESS and not _ROWS.match(kind):
        changes.everything = f"a {kind} event may change data without naming the table"


def _statement(changes: Changes, info: str, at: str) -> None:
    """Note a statement event: DDL is kept to match names, DML cannot be tied to tables.

    Only the statement's verb and place go into reasons, never its text (a ``GRANT`` or
    ``CREATE USER`` may carry a password).
    """
    use = _USE.match(info)
    text = info[use.end() :] if use else info
    if _CONTROL.match(text):
        return
    ddl = _DDL.match(text)
    if ddl is None:
        word = re.match(r"\s*([A-Za-z_]{1,20})", text)
        verb = word.group(1).upper() if word else "unknown"
        changes.everything = (
            f"a {verb} statement at {at} is logged as a statement (binlog_format is not ROW): "
            "the tables it changed (through views, triggers, routines) cannot be told"
        )
        return
    database = use.group("db").replace("``", "`") if use else None
    changes.add(Statement.parse(database, text, ddl.group(1).upper(), at))
    changes.statement_bytes += len(text)
    if changes.statement_bytes > MAX_STATEMENT_BYTES:
        changes.everything = (
            f"more than {MAX_STATEMENT_BYTES} bytes of statements to inspect, too many to "
            "tell which tables changed"
        )


def _literal(name: str) -> str:
    return name.replace("\\", "\\\\").replace("'", "\\'")
