"""Full physical backups streamed straight to S3 (no local copy of the data).

`xtrabackup`/`mariabackup --backup --stream=xbstream` writes to a pipe; its stdout goes
through `stream.encode` (zstd, encryption, sha256 of the stored bytes) into
`S3Storage.upload_stream` (multipart, bounded memory). The object only exists once the
upload completed and the tool exited with success; the tool's log is stored beside it as
`job.log`, and `backup.json` is written last, so a failed run leaves no complete-looking
backup (and its partial artefact is deleted).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from . import commands
from .connection import ConnectionSpec
from .flavour import Flavour, FlavourError, detect
from .objects import streaming_storage
from .progress import ProgressCallback, emit
from .toolrun import ToolLog, tail
from .xbstream import XbstreamTap

if TYPE_CHECKING:
    from database_backup.catalog import BackupMetadata, Catalog
    from database_backup.stream import DigestReader

logger = logging.getLogger(__name__)

ARTEFACT_BASE = "data.xbstream"
_HINT_ABOVE = 9_000 * 16 * 2**20


class BackupError(Exception):
    """The backup failed; nothing complete-looking was left in the catalog."""


class _ToolOutput:
    """The backup tool's stdout as a reader; at EOF it checks how the tool exited.

    Raising at EOF (instead of returning b"") makes the upload fail, so a stream cut short
    by a failing tool never becomes a complete object.
    """

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        progress: ProgressCallback | None,
        estimate: int,
    ) -> None:
        if proc.stdout is None:
            raise ValueError("the backup tool must be started with stdout=PIPE")
        self._proc = proc
        self._stdout = proc.stdout
        self._progress = progress
        self._estimate = estimate
        self._last = 0.0
        self._lock = threading.Lock()
        self.count = 0
        self.tool_failed = False

    def read(self, n: int = -1) -> bytes:
        data = self._stdout.read(n)
        with self._lock:
            self.count += len(data)
        if not data:
            rc = self._proc.wait()
            if rc != 0:
                self.tool_failed = True
                raise BackupError(f"the backup tool exited with code {rc}")
        now = time.monotonic()
        if self._progress is not None and now - self._last >= 0.5:
            self._last = now
            emit(self._progress, "backup", self.count, self._estimate)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._stdout.close()


def artefact_name(compression_level: int | None, encrypted: bool) -> str:
    """Object name of the artefact: data.xbstream[.zst][.enc]."""
    name = ARTEFACT_BASE
    if compression_level is not None:
        name += ".zst"
    if encrypted:
        name += ".enc"
    return name


def backup_full(
    conn: ConnectionSpec,
    catalog: Catalog,
    *,
    backup_id: str,
    job_id: str | None = None,
    compression_level: int | None = 3,
    key: bytes | None = None,
    progress: ProgressCallback | None = None,
    workdir: str | os.PathLike[str],
    description: str | None = None,
    parallel: int = 1,
    parent: BackupMetadata | None = None,
) -> BackupMetadata:
    """Take a full physical backup of the server behind `conn` into `catalog`.

    Args:
        conn: how to reach the server (the account needs the backup privileges).
        catalog: where the backup goes (its cluster prefix is created or verified).
        backup_id: id of the new backup (see `catalog.new_backup_id`).
        job_id: the job that asked for it, recorded in the metadata.
        compression_level: zstd level, or None for no compression.
        key: 32-byte encryption key, or None for no encryption.
        progress: called with ProgressEvent("backup", raw bytes so far, estimate).
        workdir: private local directory for the tool's log and the defaults file.
        description: free text stored in the metadata.
        parallel: copy threads of the backup tool.
        parent: take an incremental backup on top of this physical backup instead (the
            pages changed since its `to_lsn`); see `incremental.backup_incremental`.

    Returns:
        The metadata written to `backup.json`.

    Raises:
        BackupError: anything failed; the partial artefact was deleted (best effort) and
            no `backup.json` exists for `backup_id`.
    """
    from database_backup.catalog import BackupMetadata  # imported late: keeps boto3 optional

    started_at = datetime.now(timezone.utc)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        flavour = detect(conn, workdir=work)
    except FlavourError as exc:
        raise BackupError(str(exc)) from exc
    estimate = _estimate_size(flavour)
    try:
        catalog.ensure_cluster()
        used = any(True for _ in catalog.storage.list(catalog.backup_prefix(backup_id)))
    except Exception as exc:
        raise BackupError(f"cannot use the backup storage: {exc}") from exc
    if used:  # a failure would delete what is there: never write into a used prefix
        raise BackupError(f"backup id {backup_id} is already used in this catalog: pick another")
    name = artefact_name(compression_level, key is not None)
    object_key = catalog.artefact_key(backup_id, name)
    log = ToolLog(work / f"backup-{backup_id}.log")
    log.note(f"backup {backup_id}: {flavour.name} {flavour.version}, artefact {name}")
    emit(progress, "backup", 0, estimate)
    try:
        output, tap, digest = _stream_to_storage(
            conn,
            catalog,
            flavour,
            object_key,
            compression_level,
            key,
            progress,
            estimate,
            work,
            log,
            parallel,
            parent.to_lsn if parent is not None else None,
        )
        log_text = log.text()
        if not commands.tool_succeeded(log_text):
            raise BackupError(f"{flavour.backup_tool} did not report success: {tail(log_text)}")
        coords = commands.coordinates_from(tap.files, log_text)
        meta = BackupMetadata(
            backup_id=backup_id,
            kind="full" if parent is None else "incremental",
            parent_id=None if parent is None else parent.backup_id,
            status="complete",
            job_id=job_id,
            description=description,
            started_at=started_at,
            finished_at=datetime.now(timezone.utc),
            artefacts=[name],
            stored_size=digest.bytes_read,
            raw_size=output.count,
            sha256=digest.sha256,
            compression="zstd" if compression_level is not None else "none",
            encrypted=key is not None,
            flavour=flavour.name,
            server_version=flavour.version,
            binlog_file=coords.file if coords else None,
            binlog_position=coords.position if coords else None,
            gtid_set=coords.gtid_set if coords else None,
            from_lsn=0 if parent is None else parent.to_lsn,
            to_lsn=commands.to_lsn_from(tap.files, log_text),
        )
        log.note(f"stored {meta.stored_size} bytes (raw {meta.raw_size}), sha256 {meta.sha256}")
        catalog.write_log(backup_id, log.text())
        catalog.write_metadata(meta)
    except Exception as exc:
        _discard(catalog, backup_id)
        if isinstance(exc, BackupError):
            raise
        raise BackupError(f"backup {backup_id} failed: {exc}") from exc
    emit(progress, "done", meta.raw_size or 0, meta.raw_size or 0)
    return meta


def _stream_to_storage(
    conn: ConnectionSpec,
    catalog: Catalog,
    flavour: Flavour,
    object_key: str,
    compression_level: int | None,
    key: bytes | None,
    progress: ProgressCallback | None,
    estimate: int,
    work: Path,
    log: ToolLog,
    parallel: int,
    incremental_lsn: int | None = None,
) -> tuple[_ToolOutput, XbstreamTap, DigestReader]:
    """Run the backup tool and upload its encoded stdout; return (output, tap, digest)."""
    from database_backup.stream import encode

    storage = streaming_storage(catalog)
    with (
        conn.defaults_file(work) as defaults,
        tempfile.TemporaryDirectory(dir=work, prefix="xb-") as scratch,
    ):
        argv = commands.backup_command(
            flavour,
            defaults,
            target_dir=Path(scratch),
            parallel=parallel,
            incremental_lsn=incremental_lsn,
        )
        with log.open() as err:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err
            )
        output = _ToolOutput(proc, progress, estimate)
        tap = XbstreamTap(output, commands.BINLOG_INFO_FILES + commands.CHECKPOINT_FILES)
        try:
            stored, digest = encode(tap, compression_level=compression_level, key=key)
            storage.upload_stream(object_key, stored, size_hint=_hint(estimate))
        except BaseException as exc:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if output.tool_failed or (proc.returncode not in (0, None, -9)):
                raise BackupError(f"{flavour.backup_tool} failed: {tail(log.text())}") from exc
            raise
        finally:
            output.close()
        rc = proc.wait()
        if rc != 0:
            raise BackupError(f"{flavour.backup_tool} failed (exit code {rc}): {tail(log.text())}")
    return output, tap, digest


def _hint(estimate: int) -> int | None:
    """The size hint for the upload's part plan.

    Without a hint the storage starts with 16 MiB parts and grows them after 1,000 parts,
    which fits 5 TB; a hint only helps when the stream is so large that 16 MiB parts would
    not fit in 9,000 parts (about 140 GiB): then parts are sized for it from the start.
    """
    return estimate if estimate > _HINT_ABOVE else None


def _estimate_size(flavour: Flavour) -> int:
    """Bytes of the server's datadir (a progress estimate; 0 if it cannot be read)."""
    if not flavour.datadir:
        return 0
    total = 0
    for root, _dirs, files in os.walk(flavour.datadir):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _discard(catalog: Catalog, backup_id: str) -> None:
    """Best effort: remove whatever a failed backup left under its prefix."""
    try:
        catalog.delete_backup(backup_id, force=True)
    except Exception as exc:
        logger.warning("could not remove the partial backup %s: %s", backup_id, exc)
