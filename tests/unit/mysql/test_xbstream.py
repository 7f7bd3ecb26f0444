"""XbstreamTap on synthetic streams that the real `mbstream` accepts."""

from __future__ import annotations

import io
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from database_backup.mysql.physical.xbstream import XbstreamTap

from .xbstream_data import Dribble, eof_chunk, payload_chunk

BINLOG_INFO = b"bin.000007\t4242\t0-1-99\n"
CHECKPOINTS = b"backup_type = full-backuped\nfrom_lsn = 0\nto_lsn = 44404\nlast_lsn = 44420\n"


def _chunk(path: str, payload: bytes | None, offset: int = 0) -> bytes:
    return eof_chunk(path) if payload is None else payload_chunk(path, payload, offset)


def _stream() -> bytes:
    big = random.Random(7).randbytes(300_000)  # noqa: S311 - reproducible test data
    parts = [
        _chunk("ibdata1", big[:200_000]),
        _chunk("ibdata1", big[200_000:], offset=200_000),
        _chunk("ibdata1", None),
        _chunk("xtrabackup_binlog_info", BINLOG_INFO),
        _chunk("xtrabackup_binlog_info", None),
        _chunk("shop/orders.ibd", b"o" * 5000),
        _chunk("shop/orders.ibd", None),
        _chunk("xtrabackup_checkpoints", CHECKPOINTS),
        _chunk("xtrabackup_checkpoints", None),
    ]
    return b"".join(parts)


def test_synthetic_stream_is_valid_for_mbstream(tmp_path: Path):
    tool = shutil.which("mbstream") or shutil.which("xbstream")
    assert tool, "mbstream comes with mariadb-backup (scripts/install-system-deps.sh)"
    subprocess.run([tool, "-x", "-C", str(tmp_path)], input=_stream(), check=True)
    assert (tmp_path / "xtrabackup_binlog_info").read_bytes() == BINLOG_INFO
    assert (tmp_path / "ibdata1").stat().st_size == 300_000


@pytest.mark.parametrize("seed", range(8))
def test_tap_captures_files_whatever_the_read_sizes(seed: int):
    data = _stream()
    tap = XbstreamTap(Dribble(data, seed), ["xtrabackup_binlog_info", "xtrabackup_checkpoints"])
    out = bytearray()
    while chunk := tap.read(1 << 20):
        out += chunk
    assert bytes(out) == data
    assert tap.broken is None
    assert tap.files == {
        "xtrabackup_binlog_info": BINLOG_INFO,
        "xtrabackup_checkpoints": CHECKPOINTS,
    }


def test_tap_gives_up_quietly_on_garbage():
    data = b"not an xbstream at all" * 100
    tap = XbstreamTap(io.BytesIO(data), ["xtrabackup_binlog_info"])
    assert tap.read(len(data)) == data
    assert tap.broken is not None
    assert tap.files == {}
