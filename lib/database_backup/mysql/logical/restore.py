"""Restore of logical backups: the whole dump, or chosen databases or tables of it.

Nothing is applied before the whole artefact is local and checked: it is downloaded to
the work directory (after a free-space check) while its size and checksum are compared with
`backup.json`, then decrypted and decompressed to the end once. Only then is it streamed
from the local file through `stream.decode` and, for a selection, `sqlfilter.SqlFilter`,
into the client, so a lost network or a damaged object can no longer cut a restore
midway. The dump replaces the objects it holds (DROP TABLE IF EXISTS + CREATE) and leaves
the others alone. If the client still fails (a statement the server refuses, the server
going away), the error says the data was changed and names the databases whose
statements had been sent (`sqlfilter.SentTracker`); the others were not touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from database_backup.catalog import BackupMetadata, BackupNotFoundError, Catalog, CatalogError
from database_backup.storage.errors import StorageError

from ..connection import ConnectionSpec
from ..errors import DataChangeError
from ..flavour import Flavour, FlavourError, detect
from ..objects import check_key, decode_artefact
from ..progress import ProgressCallback, emit
from ..toolrun import ToolLog, tail
from .sqlfilter import Selection, SentTracker, SqlFilter

_CHUNK = 1 << 20
#: room kept free beside the downloaded artefact (the client's log, the filesystem)
_HEADROOM = 64 << 20


def _mib(size: int) -> int:
    return -(-size // 2**20)


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
    meta: BackupMetadata | None = None,
    flavour: Flavour | None = None,
) -> LogicalRestoreResult:
    """Apply a logical backup (or the chosen databases/tables of it) to the running server.

    The artefact is downloaded into `workdir` and checked in full (size and checksum against
    `backup.json`, then decrypted and decompressed to the end) before the first statement
    is sent; the downloaded file is removed afterwards.

    Args:
        conn: the server (the account needs the privileges to create what the dump holds).
        catalog: where the backup is.
        backup_id: a logical backup.
        databases: restore only these databases.
        tables: restore only these "database.table" tables.
        key: the encryption key, for an encrypted backup.
        progress: called with ProgressEvent(phase, bytes, total): download, check, apply.
        workdir: private local directory (needs room for the stored artefact).
        meta: the backup's metadata when the caller already read it (not read again).
        flavour: the running server's flavour when the caller already detected it.

    Raises:
        LogicalRestoreError: refused (nothing applied) or failed (its message names the
            databases whose statements were applied, and `data_changed` is True).
    """
    started = time.monotonic()
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    meta = _logical_metadata(catalog, backup_id, key, meta)
    try:
        selection = Selection.of(databases, tables)
    except ValueError as exc:
        raise LogicalRestoreError(str(exc)) from exc
    _check_selection(meta, selection)
    try:
        flavour = flavour or detect(conn, workdir=work)
    except FlavourError as exc:
        raise LogicalRestoreError(str(exc)) from exc
    local = work / f"{backup_id}.artefact"
    try:
        _download(catalog, meta, local, progress)
        _check_decodes(local, meta, key, progress)
        emit(progress, "apply", 0, meta.raw_size or 0)
        log = ToolLog(work / f"logical-restore-{backup_id}.log")
        with conn.defaults_file(work) as defaults, log.open() as err:
            argv = [flavour.client_tool, f"--defaults-extra-file={defaults}", "--binary-mode",
                    "--batch", "--connect-timeout=10"]  # fmt: skip
            applied = _apply(argv, local, meta, key, selection, err, lambda: tail(log.text()))
    finally:
        local.unlink(missing_ok=True)
    emit(progress, "done", applied, applied)
    return LogicalRestoreResult(
        backup_id=backup_id,
        databases=sorted(selection.databases or set(selection.tables) or meta.databases or []),
        tables=sorted(f"{db}.{t}" for db, names in selection.tables.items() for t in names),
        bytes_applied=applied,
        seconds=time.monotonic() - started,
    )


def _download(
    catalog: Catalog, meta: BackupMetadata, local: Path, progress: ProgressCallback | None
) -> None:
    """Copy the stored artefact to `local`, checking room, size and checksum (nothing applied).

    Raises:
        LogicalRestoreError: not enough room, the download failed, or the bytes differ
            from the record.
    """
    free = shutil.disk_usage(local.parent).free
    if free < meta.stored_size + _HEADROOM:
        raise LogicalRestoreError(
            f"not enough free space in {local.parent} to download backup {meta.backup_id}: "
            f"it needs {_mib(meta.stored_size + _HEADROOM)} MiB, {_mib(free)} MiB are free; "
            "free some space and retry; nothing was applied"
        )
    emit(progress, "download", 0, meta.stored_size)
    checksum = meta.checksum
    digest = checksum.hasher()
    count = 0
    object_key = catalog.artefact_key(meta.backup_id, meta.artefacts[0])
    try:
        with catalog.storage.open_stream(object_key) as source, local.open("wb") as out:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                count += len(chunk)
                out.write(chunk)
                emit(progress, "download", count, meta.stored_size)
    except (StorageError, OSError) as exc:
        raise LogicalRestoreError(
            f"downloading backup {meta.backup_id} failed after {count} bytes: {exc}; "
            "nothing was applied"
        ) from exc
    if count != meta.stored_size or digest.hexdigest() != checksum.sha256:
        raise LogicalRestoreError(
            f"backup {meta.backup_id} failed verification (stored {count} bytes, expected "
            f"{meta.stored_size}; {checksum.describe()} mismatch or truncated); nothing was "
            "applied"
        )


def _check_decodes(
    local: Path, meta: BackupMetadata, key: bytes | None, progress: ProgressCallback | None
) -> None:
    """Decrypt and decompress the downloaded artefact to its end, keeping nothing.

    Raises:
        LogicalRestoreError: it does not decode completely (nothing was applied).
    """
    from database_backup.stream import IntegrityError

    emit(progress, "check", 0, meta.raw_size or 0)
    raw = 0
    try:
        with (
            local.open("rb") as source,
            contextlib.closing(decode_artefact(source, meta, key)) as reader,
        ):
            while chunk := reader.read(_CHUNK):
                raw += len(chunk)
    except (IntegrityError, OSError) as exc:
        raise LogicalRestoreError(
            f"backup {meta.backup_id} does not decrypt or decompress completely ({exc}); "
            "nothing was applied"
        ) from exc
    if meta.raw_size is not None and raw != meta.raw_size:
        raise LogicalRestoreError(
            f"backup {meta.backup_id} decodes to {raw} bytes, {meta.raw_size} were recorded; "
            "nothing was applied"
        )
    emit(progress, "check", raw, meta.raw_size or raw)


def _apply(
    argv: list[str],
    local: Path,
    meta: BackupMetadata,
    key: bytes | None,
    selection: Selection,
    err: BinaryIO,
    log_tail: Callable[[], str],
) -> int:
    """Stream the checked dump (or the selected part) into the client; the bytes sent.

    Raises:
        LogicalRestoreError: the client failed; the message names the databases whose
            statements were sent (`data_changed` when any were).
    """
    from database_backup.stream import IntegrityError

    sent = SentTracker()
    sql_filter = SqlFilter(selection)
    applied = 0
    # the decoded reader is closed on every exit: a parallel decoder's threads (and the
    # frames they hold) would otherwise outlive a failed apply as long as its error lives
    with (
        local.open("rb") as source,
        contextlib.closing(decode_artefact(source, meta, key)) as reader,
    ):
        client = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=err, stderr=err)
        if client.stdin is None:
            raise LogicalRestoreError("the client has no stdin")
        try:
            lines = _lines(reader)
            for line in lines if selection.everything else sql_filter.lines(lines):
                sent.see(line)
                client.stdin.write(line)
                applied += len(line)
            client.stdin.close()
        except (BrokenPipeError, IntegrityError, OSError) as exc:
            client.kill()
            client.wait()
            raise LogicalRestoreError(
                f"restoring {meta.backup_id} stopped: {exc} {log_tail()}; {sent.report()}",
                data_changed=sent.changed,
            ) from exc
        rc = client.wait()
    if rc != 0:
        raise LogicalRestoreError(
            f"the client failed applying backup {meta.backup_id}: {log_tail()}; {sent.report()}",
            data_changed=sent.changed,
        )
    return applied


def _logical_metadata(
    catalog: Catalog, backup_id: str, key: bytes | None, given: BackupMetadata | None
) -> BackupMetadata:
    """The backup's metadata (`given`, or read now), refusing what cannot be restored."""
    try:
        meta = given or catalog.read_metadata(backup_id)
    except (BackupNotFoundError, CatalogError) as exc:
        raise LogicalRestoreError(f"backup {backup_id} not found or incomplete: {exc}") from exc
    if meta.backup_id != backup_id:
        raise LogicalRestoreError(
            f"the metadata given is of backup {meta.backup_id}, not {backup_id}"
        )
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
