"""Restore of logical backups: the whole dump, or chosen databases or tables of it.

The stored artefact is verified first (its sha256, one streaming read) so nothing of a
damaged backup is applied; then it is streamed through `stream.decode` and, for a
selection, `sqlfilter.SqlFilter`, into the client. The dump replaces the objects it holds
(DROP TABLE IF EXISTS + CREATE) and leaves the others alone.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from database_backup.catalog import BackupMetadata, BackupNotFoundError, Catalog, CatalogError

from ..connection import ConnectionSpec
from ..errors import DataChangeError
from ..flavour import FlavourError, detect
from ..objects import check_key, decode_artefact
from ..progress import ProgressCallback, emit
from ..toolrun import ToolLog, tail
from .sqlfilter import Selection, SqlFilter

_CHUNK = 1 << 20


class LogicalRestoreError(DataChangeError):
    """The logical restore failed (the message says whether anything was applied).

    Attributes:
        data_changed: False when nothing was sent to the server.
    """


@dataclass(frozen=True)
class LogicalRestoreResult:
    """What a logical restore did."""

    backup_id: str
    databases: list[str]
    tables: list[str]
    bytes_applied: int
    seconds: float


def restore_logical(
    conn: ConnectionSpec,
    catalog: Catalog,
    backup_id: str,
    *,
    databases: Sequence[str] = (),
    tables: Sequence[str] = (),
    key: bytes | None = None,
    progress: ProgressCallback | None = None,
    workdir: str | os.PathLike[str],
    verify_first: bool = True,
) -> LogicalRestoreResult:
    """Apply a logical backup (or the chosen databases/tables of it) to the running server.

    Args:
        conn: the server (the account needs the privileges to create what the dump holds).
        catalog: where the backup is.
        backup_id: a logical backup.
        databases: restore only these databases.
        tables: restore only these "database.table" tables.
        key: the encryption key, for an encrypted backup.
        progress: called with ProgressEvent(phase, bytes, total).
        workdir: private local directory.
        verify_first: check the stored artefact's sha256 before applying anything.

    Raises:
        LogicalRestoreError: refused (nothing applied) or failed.
    """
    from database_backup.stream import IntegrityError

    started = time.monotonic()
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    meta = _logical_metadata(catalog, backup_id, key)
    try:
        selection = Selection.of(databases, tables)
    except ValueError as exc:
        raise LogicalRestoreError(str(exc)) from exc
    _check_selection(meta, selection)
    try:
        flavour = detect(conn, workdir=work)
    except FlavourError as exc:
        raise LogicalRestoreError(str(exc)) from exc
    storage = catalog.storage
    object_key = catalog.artefact_key(backup_id, meta.artefacts[0])
    if verify_first:
        emit(progress, "verify", 0, meta.stored_size)
        _verify(storage.open_stream(object_key), meta.sha256, meta.stored_size, backup_id)
    emit(progress, "apply", 0, meta.raw_size or 0)
    sql_filter = SqlFilter(selection)
    log = ToolLog(work / f"logical-restore-{backup_id}.log")
    source = storage.open_stream(object_key)
    applied = 0
    try:
        reader = decode_artefact(source, meta, key)
        with conn.defaults_file(work) as defaults, log.open() as err:
            argv = [flavour.client_tool, f"--defaults-extra-file={defaults}", "--binary-mode",
                    "--batch", "--connect-timeout=10"]  # fmt: skip
            client = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=err, stderr=err)
            if client.stdin is None:
                raise LogicalRestoreError("the client has no stdin")
            try:
                pieces = (
                    iter(lambda: reader.read(_CHUNK), b"")
                    if selection.everything
                    else sql_filter.lines(_lines(reader))
                )
                for piece in pieces:
                    client.stdin.write(piece)
                    applied += len(piece)
                client.stdin.close()
            except (BrokenPipeError, IntegrityError) as exc:
                client.kill()
                client.wait()
                raise LogicalRestoreError(
                    f"restoring {backup_id} stopped: {exc} {tail(log.text())}; what was "
                    "applied before stays applied",
                    data_changed=applied > 0,
                ) from exc
            rc = client.wait()
    finally:
        source.close()
    if rc != 0:
        raise LogicalRestoreError(
            f"{flavour.client_tool} failed applying backup {backup_id}: {tail(log.text())}",
            data_changed=applied > 0,
        )
    emit(progress, "done", applied, applied)
    return LogicalRestoreResult(
        backup_id=backup_id,
        databases=sorted(selection.databases or set(selection.tables) or meta.databases or []),
        tables=sorted(f"{db}.{t}" for db, names in selection.tables.items() for t in names),
        bytes_applied=applied,
        seconds=time.monotonic() - started,
    )


def _logical_metadata(catalog: Catalog, backup_id: str, key: bytes | None) -> BackupMetadata:

    try:
        meta = catalog.read_metadata(backup_id)
    except (BackupNotFoundError, CatalogError) as exc:
        raise LogicalRestoreError(f"backup {backup_id} not found or incomplete: {exc}") from exc
    if meta.kind != "logical":
        raise LogicalRestoreError(
            f"backup {backup_id} is a {meta.kind} (physical) backup: use the physical restore"
        )
    if meta.encrypted and key is None:
        raise LogicalRestoreError(f"backup {backup_id} is encrypted: provide its encryption key")
    from database_backup.stream import IntegrityError  # late, as in restore_logical

    try:
        check_key(meta, key)
    except IntegrityError as exc:
        raise LogicalRestoreError(str(exc)) from None
    return meta


def _check_selection(meta: BackupMetadata, selection: Selection) -> None:
    """Refuse to restore what the backup does not hold (before anything is applied)."""
    held = set(meta.databases or [])
    held_tables = set(meta.tables or [])
    wanted = selection.databases | set(selection.tables)
    missing = sorted(db for db in wanted if held and db not in held)
    if missing:
        raise LogicalRestoreError(
            f"backup {meta.backup_id} does not hold database(s) {', '.join(missing)} "
            f"(it holds {', '.join(sorted(held)) or 'none'})"
        )
    if held_tables:
        for db, names in selection.tables.items():
            absent = sorted(f"{db}.{t}" for t in names if f"{db}.{t}" not in held_tables)
            if absent:
                raise LogicalRestoreError(
                    f"backup {meta.backup_id} does not hold table(s) {', '.join(absent)}"
                )
        if selection.databases:
            raise LogicalRestoreError(
                f"backup {meta.backup_id} holds only some tables: choose tables, not databases"
            )


def _verify(source: BinaryIO, sha256: str, size: int, backup_id: str) -> None:
    digest = hashlib.sha256()
    count = 0
    try:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            count += len(chunk)
    finally:
        source.close()
    if count != size or digest.hexdigest() != sha256:
        raise LogicalRestoreError(
            f"backup {backup_id} failed verification (stored {count} bytes, expected {size}; "
            "sha256 mismatch or truncated); nothing was applied"
        )


def _lines(reader: BinaryIO) -> Iterator[bytes]:
    """Lines of a byte stream (kept with their newline), reading in large chunks."""
    rest = b""
    while True:
        chunk = reader.read(_CHUNK)
        if not chunk:
            break
        rest += chunk
        lines = rest.split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line + b"\n"
    if rest:
        yield rest
