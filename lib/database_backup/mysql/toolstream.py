"""What the physical and the logical backup share.

The tool's stdout as a reader, and the artefact's name, record and removal.

The reader counts the bytes, reports progress and, at the tool's EOF, raises if the tool
exited non-zero: the upload then fails, so a stream cut short by a failing tool never
becomes a complete object.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any, BinaryIO, TypedDict

from database_backup.catalog import BackupMetadata, Catalog
from database_backup.storage import StorageError, UploadResult
from database_backup.storage.checksum import PartsChecksum

from .progress import ProgressCallback, emit

if TYPE_CHECKING:
    from .flavour import Flavour
    from .toolrun import ToolLog

logger = logging.getLogger(__name__)

_PROGRESS_EVERY = 0.5


class ToolStream:
    """A backup tool's stdout as a reader; at EOF it checks how the tool exited.

    Attributes:
        count: bytes read so far.
        tool_failed: the tool exited non-zero (the reader raised `error`).
    """

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        progress: ProgressCallback | None,
        *,
        estimate: int = 0,
        error: type[Exception],
        tool: str,
    ) -> None:
        if proc.stdout is None:
            raise ValueError(f"the {tool} must be started with stdout=PIPE")
        self._proc = proc
        self._stdout: IO[bytes] = proc.stdout
        self._progress = progress
        self._estimate = estimate
        self._error = error
        self._tool = tool
        self._last = 0.0
        self._lock = threading.Lock()
        self.count = 0
        self.tool_failed = False

    def read(self, n: int = -1) -> bytes:
        """Read up to `n` bytes of the tool's stdout (b"" once it exited with success)."""
        data = self._stdout.read(n)
        self._count(data)
        if not data:
            self._check_exit()
        self._report()
        return data

    def _count(self, data: bytes) -> None:
        with self._lock:
            self.count += len(data)

    def _check_exit(self) -> None:
        """Wait for the tool; raise `error` if it exited non-zero."""
        rc = self._proc.wait()
        if rc != 0:
            self.tool_failed = True
            raise self._error(f"the {self._tool} exited with code {rc}")

    def _report(self) -> None:
        """Report progress, at most every half second."""
        now = time.monotonic()
        if self._progress is not None and now - self._last >= _PROGRESS_EVERY:
            self._last = now
            emit(self._progress, "backup", self.count, self._estimate)

    def readable(self) -> bool:
        """Always True (a reader)."""
        return True

    def close(self) -> None:
        """Close the tool's stdout."""
        self._stdout.close()


def spawn(argv: list[str], stderr: BinaryIO) -> subprocess.Popen[bytes]:
    """Start a backup tool: no stdin, stdout piped, stderr to its log."""
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill the tool if it still runs, and reap it."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def artefact_name(base: str, compression_level: int | None, encrypted: bool) -> str:
    """`base`[.zst][.enc]."""
    name = base
    if compression_level is not None:
        name += ".zst"
    if encrypted:
        name += ".enc"
    return name


class StoredFields(TypedDict):
    """The metadata fields describing the artefact a backup stored (see `stored_fields`)."""

    finished_at: datetime
    artefacts: list[str]
    stored_size: int
    raw_size: int
    parts_sha256: dict[str, Any]
    compression: str
    encrypted: bool
    key_fingerprint: str | None
    flavour: str
    server_version: str


def stored_fields(
    name: str,
    stored: UploadResult,
    raw_size: int,
    compression_level: int | None,
    key: bytes | None,
    flavour: Flavour,
) -> StoredFields:
    """The metadata fields of the artefact `name` just stored (finished now).

    An encrypted artefact records its key's fingerprint (never the key), so a restore
    given another key is refused before anything is touched. The checksum is the one the
    upload composed from its parts' SHA-256s (the stored bytes are hashed once).

    Raises:
        StorageError: the object store reported no checksum for the upload.
    """
    from database_backup.stream.crypto import fingerprint  # late, as the stream stages

    return StoredFields(
        finished_at=datetime.now(timezone.utc),
        artefacts=[name],
        stored_size=stored.size,
        raw_size=raw_size,
        parts_sha256=_checksum_of(stored).to_json(),
        compression="zstd" if compression_level is not None else "none",
        encrypted=key is not None,
        key_fingerprint=fingerprint(key) if key is not None else None,
        flavour=flavour.name,
        server_version=flavour.version,
    )


def _checksum_of(stored: UploadResult) -> PartsChecksum:
    if stored.checksum is None:
        raise StorageError(
            f"the object store reported no checksum for {stored.key}: use an S3Storage "
            "(or an ObjectStore whose upload_stream returns one)"
        )
    return stored.checksum


def record(catalog: Catalog, meta: BackupMetadata, log: ToolLog) -> None:
    """Store the log, then `backup.json` (last: only then is the backup complete)."""
    check = meta.checksum
    log.note(
        f"stored {meta.stored_size} bytes (raw {meta.raw_size}), {check.describe()} {check.sha256}"
    )
    catalog.write_log(meta.backup_id, log.text())
    catalog.write_metadata(meta)


def discard(catalog: Catalog, backup_id: str) -> None:
    """Best effort: remove whatever a failed backup left under its prefix."""
    try:
        catalog.delete_backup(backup_id, force=True)
    except Exception as exc:
        logger.warning("could not remove the partial backup %s: %s", backup_id, exc)
