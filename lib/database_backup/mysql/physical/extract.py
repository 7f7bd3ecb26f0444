"""Download, verify, unpack and prepare a physical backup (or a chain) into staging.

The step shared by `restore` (one full backup) and incremental chains: stream the
artefact from storage through `stream.decode` (sha256, size, authentication checked at
EOF) into `mbstream -x` / `xbstream -x`, then `--prepare` it; an incremental chain is its
full ancestor prepared with `--apply-log-only`, then each incremental applied in order.
Every failure raises `RestoreError` with the server's data untouched.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path
from typing import BinaryIO

from database_backup.catalog import BackupMetadata, Catalog

from ..errors import RestoreError
from ..flavour import Flavour
from ..objects import check_key, decode_artefact
from ..progress import ProgressCallback, emit
from ..toolrun import ToolLog, pump, tail
from . import commands
from .incremental import ChainError, resolve_chain
from .unpack import UnpackError, XbstreamUnpacker

#: Whole decompressed frames (4 MiB, see stream.parallel) handed to the unpack tool, two
#: queued: no re-slicing copy of every byte, and the same 8 MiB as 8 chunks of 1 MiB.
_CHUNK = 4 << 20
_DEPTH = 2


class _Counter:
    """Pass-through reader that counts bytes and reports download progress."""

    def __init__(self, source: BinaryIO, progress: ProgressCallback | None, total: int) -> None:
        self._source = source
        self._progress = progress
        self._total = total
        self.count = 0
        self._last = 0.0

    def read(self, n: int = -1) -> bytes:
        data = self._source.read(n)
        self.count += len(data)
        now = time.monotonic()
        if self._progress is not None and (now - self._last >= 0.5 or not data):
            self._last = now
            emit(self._progress, "download", self.count, self._total)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._source.close()


def fetch_and_extract(
    catalog: Catalog,
    meta: BackupMetadata,
    flavour: Flavour,
    staging: Path,
    key: bytes | None,
    progress: ProgressCallback | None,
    log: ToolLog,
    parallel: int,
) -> int:
    """Download, verify and unpack the artefact; return the raw stream size."""
    artefact = catalog.artefact_key(meta.backup_id, meta.artefacts[0])
    emit(progress, "download", 0, meta.stored_size)
    opened = catalog.storage.open_stream(artefact)
    source = _Counter(opened, progress, meta.stored_size)
    reader: BinaryIO | None = None
    try:
        reader = decode_artefact(source, meta, key)
        if unpacks_itself(flavour):
            return _unpack(reader, meta, staging, log)
        return _extract_with_tool(reader, meta, flavour, staging, log, parallel)
    finally:
        if reader is not None:
            reader.close()  # stops the decoder's threads (frames decoded in parallel)
        source.close()


def unpacks_itself(flavour: Flavour) -> bool:
    """Whether the stream is unpacked here (MariaDB's) rather than by the flavour's tool.

    xtrabackup 8 streams may carry sparse chunks `unpack` does not write: the MySQL
    flavour keeps `xbstream -x`.
    """
    return flavour.stream_tool == "mbstream"


def _unpack(reader: BinaryIO, meta: BackupMetadata, staging: Path, log: ToolLog) -> int:
    """Unpack with direct I/O (see `unpack`); return the raw stream size."""
    from database_backup.stream import IntegrityError

    try:
        raw = XbstreamUnpacker(staging).unpack(reader)
    except IntegrityError as exc:
        raise _failed_verification(meta, exc) from exc
    except UnpackError as exc:
        log.note(f"unpacking backup {meta.backup_id} failed: {exc}")
        raise RestoreError(
            f"backup {meta.backup_id} cannot be unpacked ({exc}); the current data was not touched"
        ) from exc
    log.note(f"backup {meta.backup_id}: unpacked {raw} bytes into {staging.name}")
    return raw


def _failed_verification(meta: BackupMetadata, exc: Exception) -> RestoreError:
    """The error of an artefact whose digest, size, frames or authentication failed."""
    return RestoreError(
        f"backup {meta.backup_id} failed verification ({exc}); the current data was not touched"
    )


def _extract_with_tool(
    reader: BinaryIO,
    meta: BackupMetadata,
    flavour: Flavour,
    staging: Path,
    log: ToolLog,
    parallel: int,
) -> int:
    """Pipe the raw stream into `xbstream -x` / `mbstream -x`; return its size."""
    from database_backup.stream import IntegrityError

    argv = commands.extract_command(flavour, staging, parallel=parallel)
    with log.open() as err:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
    if proc.stdin is None:
        raise RuntimeError("the unpack tool has no stdin")
    try:
        raw = pump(reader, proc.stdin, chunk=_CHUNK, depth=_DEPTH)
        proc.stdin.close()
        rc = proc.wait()
    except IntegrityError as exc:
        _kill(proc)
        raise _failed_verification(meta, exc) from exc
    except BrokenPipeError as exc:
        _kill(proc)
        raise RestoreError(
            f"{argv[0]} rejected the stream of backup {meta.backup_id} (damaged "
            f"artefact?): {tail(log.text())}; the current data was not touched"
        ) from exc
    except BaseException:
        _kill(proc)
        raise
    if rc != 0:
        raise RestoreError(
            f"{argv[0]} failed to unpack backup {meta.backup_id}: {tail(log.text())}; "
            "the current data was not touched"
        )
    return raw


def prepare(flavour: Flavour, staging: Path, log: ToolLog) -> None:
    """Prepare the unpacked full backup in `staging` (apply its redo log)."""
    _run_prepare(commands.prepare_command(flavour, staging), log)


def stage_chain(
    catalog: Catalog,
    meta: BackupMetadata,
    flavour: Flavour,
    staging: Path,
    key: bytes | None,
    progress: ProgressCallback | None,
    log: ToolLog,
    parallel: int,
) -> int:
    """Unpack and prepare the chain ending at `meta` into `staging`; return raw bytes.

    Raises:
        RestoreError: a link is broken or missing, a key is missing, or a tool failed;
            the server's data was not touched.
    """
    try:
        chain = resolve_chain(catalog, meta.backup_id)
    except ChainError as exc:
        raise RestoreError(f"{exc}; the current data was not touched") from exc
    for item in chain:
        if item.encrypted and key is None:
            raise RestoreError(
                f"backup {item.backup_id} of the chain is encrypted: provide its key"
            )
        _check_chain_key(item, key)
    base, incrementals = chain[0], chain[1:]
    raw = fetch_and_extract(catalog, base, flavour, staging, key, progress, log, parallel)
    emit(progress, "prepare")
    _run_prepare(commands.prepare_command(flavour, staging, apply_log_only=True), log)
    for number, item in enumerate(incrementals, start=1):
        delta = staging.with_name(f"{staging.name}.inc{number}")
        delta.mkdir(mode=0o700)
        try:
            raw += fetch_and_extract(catalog, item, flavour, delta, key, progress, log, parallel)
            emit(progress, "prepare")
            last = number == len(incrementals)
            argv = commands.prepare_command(
                flavour, staging, incremental_dir=delta, apply_log_only=not last
            )
            _run_prepare(argv, log)
        finally:
            shutil.rmtree(delta, ignore_errors=True)
    return raw


def _run_prepare(argv: list[str], log: ToolLog) -> None:
    with log.open() as err:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err, check=False)
    if proc.returncode != 0:
        raise RestoreError(
            f"{argv[0]} --prepare failed: {tail(log.text())}; the current data was not touched"
        )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _check_chain_key(item: BackupMetadata, key: bytes | None) -> None:
    """Refuse a key whose fingerprint is not the one `item` recorded (nothing touched yet)."""
    from database_backup.stream import IntegrityError

    try:
        check_key(item, key)
    except IntegrityError as exc:
        raise RestoreError(str(exc)) from None
