"""Where a replay to a moment stops in a binlog file, and when the applier route is not used.

The files are built event by event (v4 headers) so each case is exact: the stop offset is
the start of the first transaction holding an event at or after the stop moment.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from database_backup.mysql.binlog import applier
from database_backup.mysql.binlog.reader import HEADER, MAGIC, BinlogFormatError
from database_backup.mysql.binlog.stop_point import find_stop
from database_backup.mysql.connection import ConnectionSpec
from database_backup.mysql.flavour import for_name

FORMAT_DESCRIPTION, ROTATE, GTID, QUERY, TABLE_MAP, WRITE_ROWS, XID = 15, 4, 162, 2, 19, 23, 16


class _Binlog:
    def __init__(self) -> None:
        self.data = bytearray(MAGIC)

    def event(self, kind: int, at: int, body: bytes = b"\0" * 20, server_id: int = 1) -> int:
        """Append an event; return its offset."""
        offset = len(self.data)
        size = HEADER.size + len(body)
        self.data += HEADER.pack(at, kind, server_id, size, offset + size, 0) + body
        return offset

    def transaction(
        self, at: int, seq: int, *, commit_at: int | None = None, domain: int = 0
    ) -> int:
        """A row transaction (GTID, table map, rows, XID); return where it starts."""
        start = self.event(GTID, at, struct.pack("<QIB", seq, domain, 0) + b"\0" * 6)
        self.event(TABLE_MAP, at)
        self.event(WRITE_ROWS, at, b"\1" * 200)
        self.event(XID, commit_at if commit_at is not None else at)
        return start

    def write(self, path: Path) -> Path:
        path.write_bytes(bytes(self.data))
        return path


def test_the_stop_is_the_start_of_the_first_transaction_at_the_moment(tmp_path: Path) -> None:
    log = _Binlog()
    log.event(FORMAT_DESCRIPTION, 100)
    log.transaction(100, 1)
    log.transaction(101, 2)
    third = log.transaction(105, 3)
    log.transaction(106, 4)
    log.event(ROTATE, 107)
    path = log.write(tmp_path / "bin.000001")

    point = find_stop(path, stop_epoch=105)

    assert (point.end, point.reached, point.transactions) == (third, True, 2)
    assert point.last_gtids == {0: "0-1-2"}


def test_a_transaction_that_ends_after_the_moment_is_left_out_whole(tmp_path: Path) -> None:
    log = _Binlog()
    log.event(FORMAT_DESCRIPTION, 100)
    log.transaction(100, 1)
    second = log.transaction(104, 2, commit_at=105)  # began before, committed at the moment
    path = log.write(tmp_path / "bin.000001")

    point = find_stop(path, stop_epoch=105)

    assert (point.end, point.last_gtids) == (second, {0: "0-1-1"})


def test_no_moment_or_a_later_one_replays_the_whole_file_from_the_start_offset(
    tmp_path: Path,
) -> None:
    log = _Binlog()
    log.event(FORMAT_DESCRIPTION, 100)
    log.transaction(100, 1, domain=0)
    second = log.transaction(101, 7, domain=2)
    log.transaction(102, 2, domain=0)
    log.event(ROTATE, 500)  # outside any transaction: its time never stops the replay
    path = log.write(tmp_path / "bin.000001")
    size = path.stat().st_size

    whole = find_stop(path)
    later = find_stop(path, start=second, stop_epoch=200)

    assert (whole.end, whole.reached, whole.transactions) == (size, False, 3)
    assert (later.end, later.reached, later.transactions) == (size, False, 2)
    assert later.last_gtids == {2: "2-1-7", 0: "0-1-2"}


def test_a_partial_event_at_the_end_is_not_replayed_and_a_bad_header_is_refused(
    tmp_path: Path,
) -> None:
    log = _Binlog()
    log.event(FORMAT_DESCRIPTION, 100)
    log.transaction(100, 1)
    end = len(log.data)
    log.transaction(101, 2)
    whole = bytes(log.data)
    for cut_at in (end + 30, end + HEADER.size + 19 + 10):  # in the GTID event, in the next
        cut = tmp_path / "cut"
        cut.write_bytes(whole[:cut_at])
        partial = find_stop(cut)
        assert (partial.end, partial.last_gtids) == (end, {0: "0-1-1"})  # the open one: out

    bad = tmp_path / "bad"
    bad.write_bytes(MAGIC + HEADER.pack(100, QUERY, 1, 3, 0, 0))
    with pytest.raises(BinlogFormatError, match="damaged event header"):
        find_stop(bad)
    (tmp_path / "not").write_bytes(b"nope")
    with pytest.raises(BinlogFormatError, match="not a binary log"):
        find_stop(tmp_path / "not")


def test_the_mysql_flavour_never_uses_the_applier(tmp_path: Path) -> None:
    unreachable = ConnectionSpec(user="u", password="p", host="192.0.2.1", port=1)

    with pytest.raises(applier.ApplierUnavailable, match="mysql: only MariaDB's applier"):
        applier.prepare(unreachable, for_name("mysql", "8.0.36"), tmp_path)
