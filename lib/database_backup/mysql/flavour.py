"""MySQL or MariaDB: detect the server's flavour and name the tools that go with it.

MySQL (and Percona Server) use Percona XtraBackup (`xtrabackup`, `xbstream`), `mysqldump`,
`mysqlbinlog` and the `mysql` client; MariaDB uses `mariabackup`/`mariadb-backup`,
`mbstream`, `mariadb-dump`, `mariadb-binlog` and the `mariadb` client.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

from .connection import ConnectionSpec, QueryError, run_query
from .errors import EngineError

MYSQL = "mysql"
MARIADB = "mariadb"

_VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)")


class FlavourError(EngineError):
    """The server's flavour could not be determined or is not supported."""


@dataclass(frozen=True)
class Flavour:
    """A server flavour and the programs that back it up and restore it.

    Attributes:
        name: "mysql" or "mariadb".
        version: the server's version string as reported by `VERSION()`.
        backup_tool: physical backup program (xtrabackup / mariabackup).
        stream_tool: xbstream extractor (xbstream / mbstream).
        dump_tool: logical dump program (mysqldump / mariadb-dump).
        binlog_tool: binary log reader (mysqlbinlog / mariadb-binlog).
        client_tool: command-line client (mysql / mariadb).
        dump_options: the dump tool's options recording the binlog position and GTIDs.
        prepare_apply_log_only: whether a base prepared for more incrementals needs
            `--apply-log-only` (xtrabackup does; mariabackup ignores it).
        user_role_column: the `mysql.user` column (or constant) that says "is a role".
        user_session_sql: SQL run before `SHOW CREATE USER` so the hashes print portably.
        gtid_state_variable: the global variable a restored server's GTID state goes in.
        datadir: the server's `@@datadir` when detected from a running server.
    """

    name: str
    version: str
    backup_tool: str
    stream_tool: str
    dump_tool: str
    binlog_tool: str
    client_tool: str
    dump_options: tuple[str, ...]
    prepare_apply_log_only: bool
    user_role_column: str
    user_session_sql: str
    gtid_state_variable: str
    datadir: str | None = None

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        """Return (major, minor, patch) parsed from the version, (0, 0, 0) if unknown."""
        return parse_version(self.version)

    def show_create_user_sql(self, account: str) -> str:
        """SQL printing the `CREATE USER` statement of `account` (already quoted)."""
        return f"{self.user_session_sql}SHOW CREATE USER {account};"

    def set_gtid_state_sql(self, gtid_set: str) -> str:
        """SQL giving a freshly reset binary log the GTID state `gtid_set` (already clean)."""
        return f"SET GLOBAL {self.gtid_state_variable} = '{gtid_set}';"


def parse_version(version: str) -> tuple[int, int, int]:
    """Return (major, minor, patch) of a server version string.

    MariaDB may be reported with the replication prefix "5.5.5-"; it is skipped.
    """
    text = version.removeprefix("5.5.5-")
    match = _VERSION_RE.search(text)
    if not match:
        return (0, 0, 0)
    major, minor, patch = (int(part) for part in match.groups())
    return (major, minor, patch)


def flavour_name(version: str, version_comment: str = "") -> str:
    """Classify a server from `VERSION()` and `@@version_comment`.

    Raises:
        FlavourError: the version string is empty.
    """
    if not version.strip():
        raise FlavourError("the server reported an empty version")
    if "mariadb" in version.lower() or "mariadb" in version_comment.lower():
        return MARIADB
    return MYSQL


def _pick(candidates: Sequence[str]) -> str:
    """Return the first program in `candidates` found on PATH, else the first name."""
    for name in candidates:
        if shutil.which(name):
            return name
    return candidates[0]


def for_name(name: str, version: str = "") -> Flavour:
    """Build the Flavour for a known flavour name (e.g. read back from backup metadata).

    Raises:
        FlavourError: unknown name.
    """
    if name == MARIADB:
        return Flavour(
            name=MARIADB,
            version=version,
            backup_tool=_pick(["mariabackup", "mariadb-backup"]),
            stream_tool="mbstream",
            dump_tool=_pick(["mariadb-dump", "mysqldump"]),
            binlog_tool=_pick(["mariadb-binlog", "mysqlbinlog"]),
            client_tool=_pick(["mariadb", "mysql"]),
            dump_options=("--master-data=2", "--gtid"),
            prepare_apply_log_only=False,
            user_role_column="is_role",
            user_session_sql="",
            gtid_state_variable="gtid_binlog_state",
        )
    if name == MYSQL:
        return Flavour(
            name=MYSQL,
            version=version,
            backup_tool="xtrabackup",
            stream_tool="xbstream",
            dump_tool="mysqldump",
            binlog_tool="mysqlbinlog",
            client_tool=_pick(["mysql", "mariadb"]),
            dump_options=("--source-data=2", "--set-gtid-purged=COMMENTED"),
            prepare_apply_log_only=True,
            user_role_column="'N'",  # MySQL has no role column: roles are plain accounts
            # MySQL 8 prints binary password hashes raw unless asked for hex
            user_session_sql="SET SESSION print_identified_with_as_hex = ON; ",
            gtid_state_variable="gtid_purged",
        )
    raise FlavourError(f"unsupported database flavour {name!r} (expected mysql or mariadb)")


def any_client() -> str:
    """Return a command-line client present on this machine (mariadb or mysql)."""
    return _pick(["mariadb", "mysql"])


def detect(
    conn: ConnectionSpec,
    *,
    client: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
) -> Flavour:
    """Ask the running server what it is and return the matching Flavour.

    Args:
        conn: where to connect.
        client: the client program to use; any installed client when None.
        workdir: where the temporary defaults file goes.

    Raises:
        FlavourError: the server could not be reached or answered nonsense.
    """
    try:
        rows = run_query(
            conn,
            "SELECT VERSION(), @@version_comment, @@datadir;",
            client=client or any_client(),
            workdir=workdir,
        )
    except QueryError as exc:
        raise FlavourError(f"cannot detect the server flavour: {exc}") from exc
    if not rows or len(rows[0]) < 2:
        raise FlavourError("cannot detect the server flavour: no answer to SELECT VERSION()")
    version, comment = rows[0][0], rows[0][1]
    datadir = rows[0][2] if len(rows[0]) > 2 else None
    return dataclasses.replace(for_name(flavour_name(version, comment), version), datadir=datadir)
