"""Pick databases or tables out of a dump stream (mariadb-dump / mysqldump output).

The dump tools mark their sections with comment lines::

    -- Current Database: `shop`
    -- Table structure for table `orders`
    -- Dumping data for table `orders`
    -- Temporary table structure for view `v` / -- Final view structure for view `v`
    -- Dumping events for database 'shop' / -- Dumping routines for database 'shop'

`SqlFilter` follows them line by line (bounded memory: one line at a time; data lines
are single extended INSERTs) and keeps the global header and trailer (session settings),
the preamble of each selected database (`CREATE DATABASE IF NOT EXISTS`, `USE`), and the
selected tables' sections (structure, data, triggers). A database selection also keeps its
views, routines and events; a table selection keeps only the tables. The users-and-grants
section that whole-server logical backups end with is kept only without a selection.

`SentTracker` watches the lines a restore has sent, to name what a failed one changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

USERS_BEGIN = b"-- database-backup: users and grants"
USERS_END = b"-- database-backup: end of users and grants"

_DATABASE = re.compile(rb"^-- Current Database: `((?:[^`]|``)+)`")
_TABLE = re.compile(
    rb"^-- (?:Table structure for table|Dumping data for table|Temporary table structure "
    rb"for view|Final view structure for view|Temporary view structure for view) "
    rb"`((?:[^`]|``)+)`"
)
_DB_OBJECTS = re.compile(rb"^-- Dumping (?:events|routines) for database ")
_NO_CHANGE = re.compile(rb"^(?:\s*$|--|USE |DELIMITER |/\*!\d+ SET )")
_TRAILER = re.compile(rb"^/\*!\d+ SET .*@OLD_|^-- Dump completed")


def _unquote(name: bytes) -> str:
    return name.replace(b"``", b"`").decode("utf-8", "replace")


@dataclass
class Selection:
    """What to keep: whole databases and/or `db.table` names (nothing = everything)."""

    databases: set[str] = field(default_factory=set[str])
    tables: dict[str, set[str]] = field(default_factory=dict[str, set[str]])

    @classmethod
    def of(cls, databases: Iterable[str] = (), tables: Iterable[str] = ()) -> Selection:
        """Build from names; tables are "db.table".

        Raises:
            ValueError: a table name without its database.
        """
        selection = cls(databases=set(databases))
        for name in tables:
            db, dot, table = name.partition(".")
            if not dot or not db or not table:
                raise ValueError(f"name tables as database.table, not {name!r}")
            selection.tables.setdefault(db, set()).add(table)
        return selection

    @property
    def everything(self) -> bool:
        """Whether nothing was selected (keep the whole dump)."""
        return not self.databases and not self.tables

    def wants_database(self, db: str) -> bool:
        """Whether anything of `db` is kept."""
        return db in self.databases or db in self.tables

    def wants(self, db: str, table: str | None) -> bool:
        """Whether a section of `db` (table None: database-level objects) is kept."""
        if db in self.databases:
            return True
        return table is not None and table in self.tables.get(db, set())


class SqlFilter:
    """Line-by-line state machine over a dump; `keep(line)` says whether to pass it on."""

    def __init__(self, selection: Selection) -> None:
        self.selection = selection
        self.database: str | None = None
        self.table: str | None = None
        self.preamble = False
        self.in_users = False
        self.trailer = False
        self.seen_databases: set[str] = set()
        self.seen_tables: set[str] = set()

    def keep(self, line: bytes) -> bool:
        """Advance the state with `line` and say whether it belongs to the selection."""
        if self.selection.everything:
            return True
        if self._users(line):
            return False
        match = _DATABASE.match(line)
        if match:
            self.database, self.table, self.preamble = _unquote(match.group(1)), None, True
            self.seen_databases.add(self.database)
            return True
        match = _TABLE.match(line)
        if match and self.database is not None:
            self.table, self.preamble = _unquote(match.group(1)), False
            self.seen_tables.add(f"{self.database}.{self.table}")
            return self.selection.wants(self.database, self.table)
        if _DB_OBJECTS.match(line):
            self.table, self.preamble = None, False
        if self.database is not None and _TRAILER.match(line):
            self.trailer = True
        if self.trailer or self.database is None:
            return True
        if self.preamble:
            return self.selection.wants_database(self.database)
        return self.selection.wants(self.database, self.table)

    def _users(self, line: bytes) -> bool:
        """Whether `line` is in the users-and-grants section (never kept in a selection)."""
        if line.startswith(USERS_BEGIN):
            self.in_users = True
        if self.in_users and line.startswith(USERS_END):
            self.in_users = False
            return True
        return self.in_users

    def lines(self, source: Iterable[bytes]) -> Iterator[bytes]:
        """The kept lines of `source`."""
        for line in source:
            if self.keep(line):
                yield line


class SentTracker:
    """Which databases (and whether the users and grants) a restore has sent statements of.

    A database counts once a statement of its section is sent: its marker comment, `USE`,
    blank lines and session settings (`/*!40101 SET ...*/`) change nothing.
    """

    def __init__(self) -> None:
        self.databases: list[str] = []
        self.users = False
        self._current: str | None = None

    def see(self, line: bytes) -> None:
        """Note a line sent to the server."""
        match = _DATABASE.match(line)
        if match:
            self._current = _unquote(match.group(1))
        elif line.startswith(USERS_BEGIN):
            self.users, self._current = True, None
        elif (
            self._current is not None
            and self._current not in self.databases
            and not _NO_CHANGE.match(line)
        ):
            self.databases.append(self._current)

    @property
    def changed(self) -> bool:
        """Whether any statement that changes data may have run."""
        return bool(self.databases) or self.users

    def report(self) -> str:
        """What was changed, for the error of a restore that failed."""
        if not self.changed:
            return "nothing was applied (no database's statements had been sent)"
        what = f"database(s) {', '.join(self.databases)}" if self.databases else ""
        if self.users:
            what = f"{what} and the users and grants" if what else "the users and grants"
        return (
            f"the data was changed: the statements of {what} were applied up to the "
            "failure; the backup's other databases were not touched; fix the cause and "
            "restore the backup again"
        )
