"""When a shipping run rotates the open binlog (bounded lag), on synthetic binlog files."""

from __future__ import annotations

from pathlib import Path

from database_backup.mysql.binlog.reader import (
    FORMAT_DESCRIPTION_EVENT,
    MAGIC,
    MARIADB_GTID_EVENT,
    MARIADB_GTID_LIST_EVENT,
)
from database_backup.mysql.binlog.shipping import ServerLogs, note_rotation, rotation_due

from .test_binlog_reader import QUERY_EVENT, event, gtid, gtid_list

BINLOG_CHECKPOINT_EVENT = 161
MYSQL_PREVIOUS_GTIDS_EVENT = 35
NOW = 1_800_000_000


def _open_file(tmp_path: Path, *events: bytes) -> ServerLogs:
    data = MAGIC + b"".join(events)
    (tmp_path / "bin.000002").write_bytes(data)
    return ServerLogs(
        directory=tmp_path,
        files=[("bin.000001", 100), ("bin.000002", len(data))],
        server_id=1,
        hostname="db",
        version="10.11",
        now=NOW,
    )


def _header(created: int) -> list[bytes]:
    return [
        event(FORMAT_DESCRIPTION_EVENT, created, b"\0" * 80),
        event(MARIADB_GTID_LIST_EVENT, created, gtid_list((0, 1, 41))),
        event(BINLOG_CHECKPOINT_EVENT, created, b"\0" * 20),
    ]


def test_an_open_binlog_whose_oldest_write_reached_the_age_is_rotated(tmp_path: Path):
    logs = _open_file(
        tmp_path, *_header(NOW - 500), event(MARIADB_GTID_EVENT, NOW - 40, gtid(42)),
        event(QUERY_EVENT, NOW - 40, b"x" * 30),
    )  # fmt: skip
    reason = rotation_due(tmp_path / "work", tmp_path, logs, 30)
    assert reason == "bin.000002 holds events 40 s old (rotate after 30 s)"


def test_a_younger_write_waits(tmp_path: Path):
    logs = _open_file(tmp_path, *_header(NOW - 500), event(MARIADB_GTID_EVENT, NOW - 20, gtid(42)))
    assert rotation_due(tmp_path / "work", tmp_path, logs, 30) is None


def test_an_idle_servers_old_open_binlog_is_not_rotated(tmp_path: Path):
    logs = _open_file(tmp_path, *_header(NOW - 86_400))
    assert rotation_due(tmp_path / "work", tmp_path, logs, 30) is None


def test_a_file_unchanged_since_our_rotation_is_not_rotated_again(tmp_path: Path):
    # MySQL opens each binlog with a Previous_gtids event, which the reader counts as a write
    logs = _open_file(
        tmp_path, event(FORMAT_DESCRIPTION_EVENT, NOW - 500, b"\0" * 80),
        event(MYSQL_PREVIOUS_GTIDS_EVENT, NOW - 500, b"\0" * 8),
    )  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    assert rotation_due(work, tmp_path, logs, 30) is not None  # not ours: no note
    note_rotation(work, logs)
    assert rotation_due(work, tmp_path, logs, 30) is None
