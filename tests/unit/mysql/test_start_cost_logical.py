"""A failed logical apply closes its decoded reader: no zstd-* thread is left behind."""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path

import pytest

from database_backup.catalog import BackupMetadata
from database_backup.mysql.logical.restore import LogicalRestoreError, _apply, _check_decodes
from database_backup.mysql.logical.sqlfilter import Selection
from database_backup.stream import encode
from tests.threads import lingering_threads

_ROWS = 600_000  # about 40 MiB of SQL: ten 4 MiB frames, more than the decoder holds


def _artefact(tmp_path: Path) -> tuple[Path, BackupMetadata]:
    raw = b"".join(
        b"INSERT INTO t VALUES (%d, 'row %d padding padding padding padding');\n" % (i, i)
        for i in range(_ROWS)
    )
    stored, digest = encode(io.BytesIO(raw), compression_level=1, key=None)
    local = tmp_path / "dump.artefact"
    local.write_bytes(stored.read())
    now = datetime.now(timezone.utc)
    meta = BackupMetadata(
        backup_id="20260101T000000Z",
        kind="logical",
        started_at=now,
        finished_at=now,
        artefacts=["dump.sql.zst"],
        stored_size=digest.bytes_read,
        sha256=digest.sha256,
        compression="zstd",
        encrypted=False,
        flavour="mariadb",
        server_version="10.11.6-MariaDB",
        raw_size=len(raw),
    )
    return local, meta


@pytest.mark.parametrize(
    "client",
    [
        "head -c 1000 >/dev/null; exit 3",  # stops reading mid-stream: a broken pipe
        "cat >/dev/null; exit 1",  # reads everything, then fails
    ],
)
def test_a_failed_apply_leaves_no_decoder_thread(tmp_path: Path, client: str):
    assert lingering_threads("zstd-") == []
    local, meta = _artefact(tmp_path)

    with (tmp_path / "err").open("wb") as err, pytest.raises(LogicalRestoreError) as failure:
        _apply(["sh", "-c", client], local, meta, None, Selection.of((), ()), err, lambda: "")

    # the error is still held (as the CLI holds it while it reports): its traceback keeps
    # the reader alive, so only an explicit close stops the decoder's threads
    assert failure.value.__traceback__ is not None
    assert lingering_threads("zstd-") == []


def test_a_successful_apply_leaves_no_decoder_thread(tmp_path: Path):
    local, meta = _artefact(tmp_path)

    with (tmp_path / "err").open("wb") as err:
        applied = _apply(
            ["sh", "-c", "cat >/dev/null"], local, meta, None, Selection.of((), ()), err, str
        )

    assert applied == meta.raw_size
    assert lingering_threads("zstd-") == []


def test_a_failed_check_leaves_no_decoder_thread(tmp_path: Path):
    local, meta = _artefact(tmp_path)
    stored = bytearray(local.read_bytes())
    stored[len(stored) // 2] ^= 0x20  # a corrupted frame in the middle
    local.write_bytes(bytes(stored))

    with pytest.raises(LogicalRestoreError) as failure:
        _check_decodes(local, meta, None, None)

    assert "nothing was applied" in str(failure.value)
    assert failure.value.__traceback__ is not None
    assert lingering_threads("zstd-") == []
