"""Logical backups (SQL dumps) to S3 and their restore, whole or in part.

A logical backup is one consistent dump: `mariadb-dump`/`mysqldump --single-transaction`
(a consistent InnoDB snapshot that does not block writes; MariaDB takes the binlog
position from the snapshot without a global read lock) with routines, triggers, events
and views, streamed through `stream.encode` to S3 like physical backups. Its scope is:

- the whole server: every user database in one dump, followed by the users and their
  grants as portable `CREATE USER IF NOT EXISTS` / `GRANT` statements (system schemas
  are not dumped, so the dump restores into another server version);
- chosen databases;
- chosen tables of one database.

`logical_restore.restore_logical` applies a backup, or only some databases or tables of
it (e.g. one table out of a whole-server backup).
"""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from database_backup.catalog import BackupMetadata, Catalog

from .. import tablesums, toolstream
from ..connection import ConnectionSpec, QueryError, run_query
from ..errors import EngineError
from ..flavour import Flavour, FlavourError, detect
from ..progress import ProgressCallback, emit
from ..toolrun import ToolLog, tail
from ..toolstream import ToolStream
from .sqlfilter import USERS_BEGIN, USERS_END, Selection

logger = logging.getLogger(__name__)

ARTEFACT_BASE = "dump.sql"
SYSTEM_SCHEMAS = frozenset({"mysql", "sys", "information_schema", "performance_schema"})
SYSTEM_USERS = frozenset({"mariadb.sys", "mysql.sys", "mysql.session", "mysql.infoschema"})
_LOG_FILE = re.compile(rb"CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+)")
_GTID = re.compile(rb"SET GLOBAL gtid_(?:slave_pos|purged)\s*=\s*'([^']*)'")
_CHUNK = 1 << 20
_SCAN_LIMIT = 256 * 1024
_TAIL_LIMIT = 8 * 1024


class LogicalBackupError(EngineError):
    """The logical backup failed; nothing complete-looking was left in the catalog."""


def dump_command(
    flavour: Flavour,
    defaults_file: Path,
    *,
    databases: Sequence[str] = (),
    table_database: str | None = None,
    tables: Sequence[str] = (),
) -> list[str]:
    """The dump tool's command line (consistent snapshot, routines, triggers, events).

    Either `databases` (dumped with `--databases`, so the dump says which database each
    part belongs to) or `table_database` and its `tables`.
    """
    argv = [
        flavour.dump_tool,
        f"--defaults-extra-file={defaults_file}",
        "--single-transaction",
        "--quick",
        "--routines",
        "--triggers",
        "--events",
        "--hex-blob",
        *flavour.dump_options,
    ]
    if table_database is not None:
        return [*argv, "--", table_database, *tables]
    return [*argv, "--databases", "--", *databases]


def _quote_name(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def users_sql(conn: ConnectionSpec, flavour: Flavour, work: Path) -> tuple[str, list[str]]:
    """Portable SQL recreating the server's accounts and grants, and the skipped accounts.

    System accounts are left out; an account the server cannot describe is skipped with
    a warning (e.g. a host-name account under skip-name-resolve).
    """

    def query(sql: str) -> list[tuple[str, ...]]:
        return run_query(conn, sql, client=flavour.client_tool, workdir=work)

    role_column = flavour.user_role_column
    rows = query(f"SELECT user, host, {role_column} FROM mysql.user ORDER BY user, host;")  # noqa: S608
    lines = [USERS_BEGIN.decode()]
    skipped: list[str] = []
    for user, host, is_role in rows:
        if user in SYSTEM_USERS or not user:
            continue
        account = f"{_sql_string(user)}@{_sql_string(host)}"
        try:
            if is_role == "Y":
                create = f"CREATE ROLE IF NOT EXISTS {_sql_string(user)}"
                grants = query(f"SHOW GRANTS FOR {_sql_string(user)};")
            else:
                shown = query(flavour.show_create_user_sql(account))
                create = shown[0][0].replace("CREATE USER ", "CREATE USER IF NOT EXISTS ", 1)
                grants = query(f"SHOW GRANTS FOR {account};")
        except (QueryError, IndexError) as exc:
            skipped.append(f"{user}@{host}")
            logger.warning("logical backup: skipping account %s@%s: %s", user, host, exc)
            continue
        lines.append(f"{create};")
        lines.extend(f"{row[0]};" for row in grants if row)
    lines.append("FLUSH PRIVILEGES;")
    lines.append(USERS_END.decode())
    return "\n".join(lines) + "\n", skipped


@dataclass(frozen=True)
class Scope:
    """What a logical backup holds."""

    whole_server: bool
    databases: list[str]
    table_database: str | None = None
    tables: tuple[str, ...] = ()


def _scope(
    conn: ConnectionSpec,
    flavour: Flavour,
    work: Path,
    databases: Sequence[str] | None,
    tables: Sequence[str] | None,
) -> Scope:
    if databases and tables:
        raise LogicalBackupError("choose databases or tables, not both")
    if tables:
        selection = Selection.of(tables=tables)
        if len(selection.tables) != 1:
            raise LogicalBackupError(
                "a table backup takes tables of one database (database.table names); "
                "back up several databases with `databases` instead"
            )
        ((db, names),) = selection.tables.items()
        return Scope(False, [db], table_database=db, tables=tuple(sorted(names)))
    try:
        present = [row[0] for row in run_query(
            conn, "SHOW DATABASES;", client=flavour.client_tool, workdir=work
        )]  # fmt: skip
    except QueryError as exc:
        raise LogicalBackupError(f"cannot list the databases: {exc}") from exc
    if databases:
        missing = sorted(set(databases) - set(present))
        if missing:
            raise LogicalBackupError(f"no such database on the server: {', '.join(missing)}")
        return Scope(False, sorted(set(databases)))
    return Scope(True, sorted(name for name in present if name not in SYSTEM_SCHEMAS))


class _DumpOutput(ToolStream):
    """A prefix, the dump tool's stdout, a suffix; checks how the tool exited at its EOF.

    It also keeps the start of the stream to read the binlog coordinates from.
    """

    def __init__(
        self,
        prefix: bytes,
        proc: subprocess.Popen[bytes],
        progress: ProgressCallback | None,
        suffix: bytes = b"",
    ) -> None:
        super().__init__(proc, progress, error=LogicalBackupError, tool="dump tool")
        self._prefix = io.BytesIO(prefix)
        self._suffix = io.BytesIO(suffix)
        self._dumped = False
        self.head = bytearray()
        self.tail = b""

    def read(self, n: int = -1) -> bytes:
        """Read up to `n` bytes: the prefix, then the dump, then the suffix."""
        data = self._prefix.read(n) or (b"" if self._dumped else self._stdout.read(n))
        if not data and not self._dumped:
            self._dumped = True
            self._check_exit()
        if not data:
            data = self._suffix.read(n)
        if not data:
            return b""
        self._count(data)
        if len(self.head) < _SCAN_LIMIT:
            self.head += data[: _SCAN_LIMIT - len(self.head)]
        self.tail = (self.tail + data)[-_TAIL_LIMIT:]  # MariaDB prints the GTID at the end
        self._report()
        return data


def artefact_name(compression_level: int | None, encrypted: bool) -> str:
    """dump.sql[.zst][.enc]."""
    return toolstream.artefact_name(ARTEFACT_BASE, compression_level, encrypted)


def _frame(
    conn: ConnectionSpec, flavour: Flavour, work: Path, scope: Scope
) -> tuple[bytes, bytes, list[str]]:
    """What goes before and after the dump: (prefix, suffix, skipped accounts)."""
    prefix, suffix, skipped = b"", b"", []
    if scope.whole_server:  # after the data: table grants need their tables
        try:
            text, skipped = users_sql(conn, flavour, work)
        except QueryError as exc:
            raise LogicalBackupError(f"cannot read the accounts and grants: {exc}") from exc
        suffix = text.encode()
    if scope.table_database is not None:
        db = _quote_name(scope.table_database)
        prefix = (
            f"-- Current Database: {db}\nCREATE DATABASE IF NOT EXISTS {db};\nUSE {db};\n"
        ).encode()
    return prefix, suffix, skipped


def _check_unused(catalog: Catalog, backup_id: str) -> None:
    """A failure deletes the backup's prefix: never write into a used one."""
    try:
        catalog.ensure_cluster()
        used = any(True for _ in catalog.storage.list(catalog.backup_prefix(backup_id)))
    except Exception as exc:
        raise LogicalBackupError(f"cannot use the backup storage: {exc}") from exc
    if used:
        raise LogicalBackupError(f"backup id {backup_id} is already used: pick another")


def backup_logical(
    conn: ConnectionSpec,
    catalog: Catalog,
    *,
    backup_id: str,
    databases: Sequence[str] | None = None,
    tables: Sequence[str] | None = None,
    job_id: str | None = None,
    compression_level: int | None = 3,
    key: bytes | None = None,
    progress: ProgressCallback | None = None,
    workdir: str | os.PathLike[str],
    description: str | None = None,
    table_sums_limits: tablesums.Limits | None = None,
) -> BackupMetadata:
    """Take a logical backup of the whole server, of `databases`, or of `tables`.

    Args:
        conn: the server (the account needs SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK
            TABLES, RELOAD and BINLOG MONITOR / REPLICATION CLIENT; and read access to
            mysql.user for a whole-server backup).
        catalog: where it goes.
        backup_id: the new backup's id.
        databases: databases to dump (None and no tables: the whole server).
        tables: "database.table" names, all of one database.
        job_id: recorded in the metadata.
        compression_level: zstd level, or None.
        key: encryption key, or None.
        progress: called with ProgressEvent("backup", bytes so far, 0).
        workdir: private local directory.
        description: free text.
        table_sums_limits: bounds of the table sums measured after the dump
            (`tablesums.Limits()` when None; a 0 budget measures nothing).

    Raises:
        LogicalBackupError: anything failed; the partial artefact was removed.
    """
    from database_backup.stream import encode

    started_at = datetime.now(timezone.utc)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        flavour = detect(conn, workdir=work)
    except FlavourError as exc:
        raise LogicalBackupError(str(exc)) from exc
    scope = _scope(conn, flavour, work, databases, tables)
    prefix, suffix, skipped = _frame(conn, flavour, work, scope)
    _check_unused(catalog, backup_id)
    name = artefact_name(compression_level, key is not None)
    log = ToolLog(work / f"logical-{backup_id}.log")
    log.note(f"logical backup {backup_id}: {flavour.name} {flavour.version}, {name}")
    if skipped:
        log.note(f"accounts skipped (the server could not describe them): {', '.join(skipped)}")
    emit(progress, "backup", 0, 0)
    try:
        chosen = [f"{scope.table_database}.{t}" for t in scope.tables] or None
        beside = tablesums.Beside(
            conn,
            flavour,
            workdir=work,
            limits=table_sums_limits,
            databases=scope.databases,
            tables=chosen,
            point_at_start=True,
        )
        with beside as sums:
            with conn.defaults_file(work) as defaults, log.open() as err:
                argv = dump_command(
                    flavour,
                    defaults,
                    databases=scope.databases,
                    table_database=scope.table_database,
                    tables=scope.tables,
                )
                proc = toolstream.spawn(argv, err)
                output = _DumpOutput(prefix, proc, progress, suffix)
                try:
                    encoded, _ = encode(
                        output, compression_level=compression_level, key=key, sha256=False
                    )
                    stored = catalog.storage.upload_stream(
                        catalog.artefact_key(backup_id, name), encoded
                    )
                finally:
                    toolstream.stop(proc)
                    output.close()
            if proc.returncode != 0:
                raise LogicalBackupError(
                    f"{flavour.dump_tool} failed (exit code {proc.returncode}): {tail(log.text())}"
                )
            file, position, gtid = _coordinates(bytes(output.head) + b"\n" + output.tail)
            meta = BackupMetadata(
                backup_id=backup_id,
                kind="logical",
                status="complete",
                job_id=job_id,
                description=description,
                started_at=started_at,
                **toolstream.stored_fields(
                    name, stored, output.count, compression_level, key, flavour
                ),
                binlog_file=file,
                binlog_position=position,
                gtid_set=gtid,
                databases=scope.databases,
                tables=chosen,
                extra={"logical-scope": _scope_name(scope)},
            )
            sums.attach(meta, note=log.note)
        toolstream.record(catalog, meta, log)
    except Exception as exc:
        toolstream.discard(catalog, backup_id)
        if isinstance(exc, LogicalBackupError):
            raise
        raise LogicalBackupError(
            f"logical backup {backup_id} failed: {exc} ({tail(log.text(), 3)})"
        ) from exc
    emit(progress, "done", meta.raw_size or 0, meta.raw_size or 0)
    return meta


def _scope_name(scope: Scope) -> str:
    if scope.whole_server:
        return "server"
    return "tables" if scope.table_database is not None else "databases"


def _coordinates(head: bytes) -> tuple[str | None, int | None, str | None]:
    found = _LOG_FILE.search(head)
    gtid = _GTID.search(head)
    return (
        found.group(1).decode() if found else None,
        int(found.group(2)) if found else None,
        (gtid.group(1).decode() or None) if gtid else None,
    )
